"""Engagement conditions: what people did with what they were sent, read from the ledger.

"Opened an email in the last 30 days", "received campaign X but did not open it", "clicked a
link containing /pricing", "last message sent more than 14 days ago". Each compiles to
``Exists`` subqueries over ``Delivery`` (and its receipts), correlated on the recipient, so the
database answers them in the count, the sample and the launch alike; nothing loops in Python.

The words mean what the analytics pages mean (``notifications.ledger.outcomes``, one definition
per figure): *opened* is the funnel stage ``reached_opened`` (a click counts as an open even when
the pixel never loaded; an inbox read is an open), *received* is ``reached_sent`` without the
``failed`` group (a bounce after "sent" was not received). Opens are only known on channels whose
adapter tracks them (``features.tracks_opens``), so "received but did not open" only counts
messages sent on such a channel: an SMS nobody can see being opened is never "not opened".

Indexes the plans use (``python -m bench audience_engagement --plans`` prints them):
``delivery_recipient_idx`` (recipient, -created_at) to reach a person's deliveries,
``deliveryevent_delivery_idx`` (delivery, occurred_at) or ``deliveryevent_occurred_idx``
(occurred_at, kind) for opens and clicks in a window, ``delivery_run_status_idx`` for a run's or
a campaign's deliveries, and ``trackedlink``'s delivery index to tie a click to its link.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from ..models import Campaign, CampaignRun, Channel, Delivery, DeliveryEvent, TrackedLink
from .registry import AudienceOp, now, register_audience_field

ENGAGEMENT = _("Engagement")

CAMPAIGN_OPS = {
    "received": _("received (any of)"),
    "not_received": _("did not receive (any of)"),
    "opened": _("opened (any of)"),
    "not_opened": _("received but did not open"),
}


def open_tracking_channels() -> list[str]:
    """The channels on which an open can be known: their adapter tracks opens (email)."""
    from channels_adapters.handler import channels

    return [value for value in Channel.values if channels.features(value).tracks_opens]


def _outcomes():
    # Imported when compiling, not at start-up: the ledger package is below the audiences.
    from ..ledger import outcomes

    return outcomes


def _theirs(**lookups: Any):
    """The deliveries of the user being tested (``delivery_recipient_idx``)."""
    return Delivery.objects.filter(recipient_id=OuterRef("pk"), **lookups)


def _since(days: int):
    return now() - timedelta(days=days)


# --- Opened / clicked / sent in a window ---------------------------------------------------

def _opened_q(op: str, days: int) -> Q:
    """An open (or a click, which implies one) received in the window, on a channel that tracks
    opens. Read from the receipts, which keep when each came (``Delivery.opened_at`` keeps only an
    open that moved the status: not one after a click). Machine opens (mail privacy proxies)
    carry ``machine_open`` and do not count, as they do not in the funnel."""
    tracked = open_tracking_channels() or [""]
    opens = DeliveryEvent.objects.filter(
        delivery__recipient_id=OuterRef("pk"), delivery__channel__in=tracked,
        kind__in=[DeliveryEvent.Kind.OPENED, DeliveryEvent.Kind.CLICKED], occurred_at__gte=_since(days),
        data__machine_open__isnull=True,
    )
    q = Q(Exists(opens))
    return q if op == "within_days" else ~q


def _clicked_q(op: str, value: dict[str, Any]) -> Q:
    """A click in the window on a link whose address contains the text (case-insensitive).

    Our click redirect records one receipt per link, keyed ``click:<link id>``: the link is found
    among the delivery's own links and tied to the receipt by that key. A click an email provider
    reported carries the address it saw (``click_url``).
    """
    text = value["text"]
    tracked_link = (
        TrackedLink.objects.filter(delivery_id=OuterRef("delivery_id"), url__icontains=text)
        .annotate(receipt_key=Concat(Value("click:"), Cast("pk", CharField()), output_field=CharField()))
        .filter(receipt_key=OuterRef("provider_event_id"))
    )
    clicks = DeliveryEvent.objects.filter(
        delivery__recipient_id=OuterRef("pk"), kind=DeliveryEvent.Kind.CLICKED, occurred_at__gte=_since(value["days"]),
    ).filter(Q(Exists(tracked_link), source="click") | Q(data__click_url__icontains=text))
    q = Q(Exists(clicks))
    return q if op == "contains_within_days" else ~q


def _sent_q(op: str, value: dict[str, Any]) -> Q:
    """A message the provider accepted in the window (``sent_at``), on any channel or one."""
    lookups: dict[str, Any] = {"sent_at__gte": _since(value["days"])}
    if value.get("channel"):
        lookups["channel"] = value["channel"]
    q = Q(Exists(_theirs(**lookups)))
    return q if op == "within_days" else ~q


# --- Campaigns and runs ----------------------------------------------------------------------

def _run_deliveries_q(op: str, deliveries) -> Q:
    """``deliveries``: the user's deliveries of the chosen campaigns or runs."""
    outcomes = _outcomes()
    received = outcomes.REACHED["sent"] & ~outcomes.group_q("failed")
    if op in ("received", "not_received"):
        q = Q(Exists(deliveries.filter(received)))
        return q if op == "received" else ~q
    opened = Q(Exists(deliveries.filter(outcomes.REACHED["opened"])))
    if op == "opened":
        return opened
    # not_opened: received where an open would have been seen, and opened none of them.
    tracked = open_tracking_channels() or [""]
    return Q(Exists(deliveries.filter(received, channel__in=tracked))) & ~opened


def _campaign_q(op: str, campaign_ids: list[int]) -> Q:
    runs = CampaignRun.objects.filter(campaign_id__in=campaign_ids).values("pk")
    return _run_deliveries_q(op, _theirs(run_id__in=runs))


def _run_q(op: str, run_ids: list[int]) -> Q:
    return _run_deliveries_q(op, _theirs(run_id__in=run_ids))


def _campaign_choices() -> list[tuple[int, str]]:
    """Campaigns that have run (a draft was received by no one), newest first."""
    has_run = Exists(CampaignRun.objects.filter(campaign_id=OuterRef("pk")))
    return list(Campaign.objects.filter(has_run).order_by("-created_at", "-pk").values_list("pk", "name"))


def run_label(name: str, occurrence) -> str:
    return f"{name} · {date_format(timezone.localtime(occurrence), 'SHORT_DATETIME_FORMAT')}"


# Runs offered in the builder's list: the newest ones (a recurring campaign adds one per
# occurrence, and the list is sent with every editor page); an older run stays valid in a rule.
RUN_CHOICES = 300


def _run_choices() -> list[tuple[int, str]]:
    rows = CampaignRun.objects.order_by("-started_at", "-pk").values_list("pk", "campaign__name", "occurrence")
    return [(pk, run_label(name, occurrence)) for pk, name, occurrence in rows[:RUN_CHOICES]]


def _ids(values: list) -> list[int]:
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2**62]


def _runs_among(values: list) -> list[int]:
    """The runs a rule names, older ones too (the builder offers only the newest)."""
    return list(CampaignRun.objects.filter(pk__in=_ids(values)).values_list("pk", flat=True))


def _campaigns_among(values: list) -> list[int]:
    """The campaigns a rule names that have run: the ids asked for, not every campaign."""
    has_run = Exists(CampaignRun.objects.filter(campaign_id=OuterRef("pk")))
    return list(Campaign.objects.filter(has_run, pk__in=_ids(values)).values_list("pk", flat=True))


def register_engagement_fields() -> None:
    """Register the engagement fields (idempotent: ``replace=True``)."""
    days = "days"
    register_audience_field(
        "engagement.opened", label=_("Opened an email"), group=ENGAGEMENT,
        ops={
            "within_days": AudienceOp(_("in the last … days"), days),
            "not_within_days": AudienceOp(_("not in the last … days"), days),
        },
        to_q=_opened_q, replace=True,
        help_text=_("Opens the open pixel or the email provider reported; a click counts as an open. "
                    "Automatic opens by mail privacy proxies do not count."),
    )
    register_audience_field(
        "engagement.clicked", label=_("Clicked a link"), group=ENGAGEMENT,
        ops={
            "contains_within_days": _("whose address contains …"),
            "not_contains_within_days": _("none whose address contains …"),
        },
        value_type="text_days", to_q=_clicked_q, replace=True,
        help_text=_("Tracked links in emails, e.g. “/pricing” or “utm_campaign=spring”; not case-sensitive."),
    )
    register_audience_field(
        "engagement.sent", label=_("Was sent a message"), group=ENGAGEMENT,
        ops={
            "within_days": _("in the last … days"),
            "not_within_days": pgettext_lazy("messages sent", "not in the last … days (or never)"),
        },
        value_type="days_channel", choices=Channel.choices, to_q=_sent_q, replace=True,
        help_text=_("Messages the provider accepted, on any channel or the one chosen."),
    )
    register_audience_field(
        "engagement.campaign", label=_("Campaign"), group=ENGAGEMENT, ops=CAMPAIGN_OPS, value_type="ids",
        choices=_campaign_choices, also_accepts=_campaigns_among, to_q=_campaign_q, replace=True,
        help_text=_("Any of its runs. “Received” leaves out bounces; “did not open” counts only messages "
                    "sent where opens are tracked (email)."),
    )
    register_audience_field(
        "engagement.campaign_run", label=_("Campaign run"), group=ENGAGEMENT, ops=CAMPAIGN_OPS, value_type="ids",
        choices=_run_choices, also_accepts=_runs_among, to_q=_run_q, replace=True,
        help_text=_("One send of a campaign (a recurring campaign has one per occurrence)."),
    )
