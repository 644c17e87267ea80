"""Receipts (DESIGN.md "The pipeline", step 4): opens, clicks, bounces, complaints, unsubscribes.

Services here are the only writers of receipts that come from outside a send: the open pixel,
click redirects, one-click unsubscribe and normalised provider webhook events; and of
suppressions, whoever makes them (bounces, complaints, SMS STOP/START, the admin). Invariants:

* a receipt with a provider event id is recorded once per source (replays change nothing; the
  pixel and click redirects count repeats in ``hits`` instead of adding rows),
* a delivery's status only moves forward (``ledger.delivery_advance_status``),
* a suppression's address is stored normalised (``querysets.normalise_address``), and
* an unsubscribe leaves a category (a preference), never the whole channel, while the
  recipient exists: transactional mail still reaches people who left marketing.
"""

from __future__ import annotations

import html as html_lib
import ipaddress
import re
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from channels_adapters.handler import channels

from .. import conf, links, tokens
from ..ledger import delivery_advance_status
from ..models import Category, Delivery, DeliveryEvent, Suppression, TrackedLink
from ..querysets import normalise_address
from ..webhooks.receivers import receipt_recorded as webhooks_receipt_recorded

Kind = DeliveryEvent.Kind
Status = Delivery.Status

# Receipt kinds that move a delivery's status; the others (complained, unsubscribed, ...) are
# recorded as events only.
KIND_TO_STATUS: dict[str, str] = {
    Kind.DELIVERED: Status.DELIVERED,
    Kind.OPENED: Status.OPENED,
    Kind.CLICKED: Status.CLICKED,
    Kind.READ: Status.READ,
    Kind.BOUNCED: Status.BOUNCED,
}

# A bounce is hard (permanent) unless the provider says otherwise: providers report transient
# failures as "deferred"/soft bounces, which must neither suppress nor end the delivery.
SOFT_BOUNCE_TYPES = frozenset({"soft", "transient", "temporary", "deferred"})

_HREF = re.compile(r"""(?P<lead>\bhref\s*=\s*)(?P<quote>["'])(?P<url>\s*https?://[^"']*)(?P=quote)""", re.IGNORECASE)


# --- URL builders --------------------------------------------------------------------------



def open_pixel_url(delivery: Delivery) -> str:
    return links.token_url("notifications:track_open", tokens.open_token(delivery.pk))


def click_url(link: TrackedLink) -> str:
    return links.token_url("notifications:track_click", tokens.click_token(link.pk))


def unsubscribe_url(delivery: Delivery) -> str:
    """The page link and the RFC 8058 ``List-Unsubscribe`` target (one URL serves both)."""
    return links.token_url("notifications:unsubscribe", tokens.unsubscribe_token(delivery.pk))


def outbound_decorate(delivery: Delivery, *, html: str, metadata: dict) -> tuple[str, dict]:
    """Tracking on a message leaving the ledger (registered with ``ledger.outbound``), where its
    channel has it: HTML links replaced by opaque click links (stored as ``TrackedLink``), an
    open pixel, and for marketing the one-click unsubscribe URL for the adapter's headers."""
    features = channels.features(delivery.channel)
    if html and features.tracks_clicks:
        html = links_rewrite(delivery=delivery, html=html)
    if html and features.tracks_opens:
        pixel = f'<img src="{open_pixel_url(delivery)}" width="1" height="1" alt="">'
        # Inside the body of a whole document (a templated email's layout), else at the end.
        at = html.rfind("</body>")
        html = html[:at] + pixel + html[at:] if at != -1 else html + pixel
    marketing = delivery.category is not None and delivery.category.kind == Category.Kind.MARKETING
    if features.one_click_unsubscribe and marketing and "unsubscribe_url" not in metadata:
        metadata["unsubscribe_url"] = unsubscribe_url(delivery)  # a rendered template carries it already
    return html, metadata


def links_rewrite(*, delivery: Delivery, html: str) -> str:
    """Store every http(s) ``href`` in ``html`` as a ``TrackedLink`` and point it at the click redirect.

    The rewritten link carries only a signed link id, never the destination. Links to our own
    site (unsubscribe, preferences) are left alone so they keep working without a redirect.
    """
    own = conf.site_url() + "/"
    matches = [m for m in _HREF.finditer(html) if not m.group("url").strip().startswith(own)]
    if not matches:
        return html
    now = timezone.now()
    links = TrackedLink.objects.bulk_create(
        [
            TrackedLink(delivery=delivery, url=html_lib.unescape(m.group("url").strip()), position=i, created_at=now)
            for i, m in enumerate(matches)
        ]
    )
    parts, last = [], 0
    for match, link in zip(matches, links, strict=True):
        parts += [html[last:match.start()], f'{match.group("lead")}{match.group("quote")}{click_url(link)}{match.group("quote")}']
        last = match.end()
    parts.append(html[last:])
    return "".join(parts)


# --- Machine opens --------------------------------------------------------------------------

# Apple Mail Privacy Protection fetches every remote image through Apple's proxy when the mail
# arrives, whether or not anyone reads it, with the bare User-Agent "Mozilla/5.0" and from
# Apple-owned addresses (17.0.0.0/8). Such an open is recorded, flagged, and does not count as
# "opened". A missing User-Agent is a fetcher, not a mail client. Gmail's image proxy fetches
# only when the message is displayed, so it counts as a real open.
_MACHINE_USER_AGENTS = frozenset({"", "mozilla/5.0"})
_MACHINE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)


def is_machine_open(*, user_agent: str, ip: str) -> bool:
    if user_agent.strip().lower() in _MACHINE_USER_AGENTS:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in _MACHINE_NETWORKS)


# --- Services -------------------------------------------------------------------------------

def receipt_record(
    *,
    delivery: Delivery,
    kind: str,
    source: str,
    provider_event_id: str | None = None,
    data: dict | None = None,
    occurred_at: datetime | None = None,
    count_repeats: bool = False,
) -> bool:
    """Record one receipt and move the delivery forward. ``False`` if it was a repeat.

    Repeats are recognised by (source, provider_event_id), which the database keeps unique: a
    replay changes nothing, or with ``count_repeats`` adds one to the stored receipt's ``hits``
    (the open pixel and click redirects: one row per open or link, however often it is hit,
    and two hits at once still make one row). Receipts without an id are all kept. Hard bounces
    and complaints suppress the delivery's address.
    """
    if kind not in Kind.values:
        raise ValueError(f"Unknown receipt kind {kind!r}.")
    data = dict(data or {})
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic():
        try:
            # The savepoint keeps the caller's transaction usable after a duplicate.
            with transaction.atomic():
                receipt = DeliveryEvent.objects.create(
                    delivery=delivery, kind=kind, source=source, provider_event_id=provider_event_id,
                    data=data, occurred_at=occurred_at,
                )
        except IntegrityError:
            if provider_event_id is None:
                raise
            if count_repeats:
                # The row exists (a concurrent insert waited for it to commit): count, in SQL.
                DeliveryEvent.objects.filter(source=source, provider_event_id=provider_event_id).update(
                    hits=F("hits") + 1
                )
            return False
        # In this transaction: the webhook outbox row commits with the receipt, or neither does;
        # and before the status move the receipt causes (recorded in the outbox alike), so a
        # receiver sees the receipt first.
        webhooks_receipt_recorded(delivery=delivery, receipt=receipt)
        soft_bounce = kind == Kind.BOUNCED and str(data.get("bounce_type", "")).lower() in SOFT_BOUNCE_TYPES
        status = KIND_TO_STATUS.get(kind)
        if status and not data.get("machine_open") and not soft_bounce:
            delivery_advance_status(delivery=delivery, status=status, at=occurred_at)
        if kind == Kind.BOUNCED and not soft_bounce:
            _suppress(delivery=delivery, reason=Suppression.Reason.HARD_BOUNCE)
        elif kind == Kind.COMPLAINED:
            _suppress(delivery=delivery, reason=Suppression.Reason.COMPLAINT)
    return True


def open_record(*, delivery: Delivery, user_agent: str, ip: str) -> bool:
    """An open-pixel hit: the first makes the ``opened`` receipt, later ones count in its ``hits``.

    A machine open (``is_machine_open``) is a receipt of its own, flagged, so a person's real
    open after Apple's proxy fetched the pixel still counts.
    """
    machine = is_machine_open(user_agent=user_agent, ip=ip)
    return receipt_record(
        delivery=delivery, kind=Kind.OPENED, source="pixel",
        provider_event_id=f"open:{delivery.pk}:machine" if machine else f"open:{delivery.pk}",
        data={"machine_open": True} if machine else {}, count_repeats=True,
    )


def click_record(*, link: TrackedLink) -> bool:
    """A click on a tracked link: one ``clicked`` receipt per link, later clicks in its ``hits``."""
    return receipt_record(
        delivery=link.delivery, kind=Kind.CLICKED, source="click", provider_event_id=f"click:{link.pk}",
        data={"link_id": link.pk, "position": link.position}, count_repeats=True,
    )


def address_suppress(
    *, channel: str, address: str, reason: str, user_id: int | None = None, note: str = "", actor=None
) -> bool:
    """Stop all mail to ``address`` on ``channel``: a Suppression, and nothing still waiting goes.

    The address is stored normalised (``normalise_address``), so ``Ada@Example.com`` stops mail
    to ``ada@example.com``. Deliveries to that address still planned or retrying become
    ``suppressed`` now; a batch a worker already claimed is caught by the pipeline's send-time
    re-check. An existing suppression keeps its original reason. A staff ``actor`` (the admin)
    is audited. Returns whether a new suppression was made.
    """
    address = normalise_address(channel, address)
    if not address:
        return False
    with transaction.atomic():
        suppression, created = Suppression.objects.get_or_create(
            channel=channel, address=address, defaults={"reason": reason, "user_id": user_id, "note": note}
        )
        waiting = Delivery.objects.filter(channel=channel, status__in=[Status.PLANNED, Status.DEFERRED])
        same_address = "address__iexact" if channels.features(channel).addresses_ignore_case else "address"
        waiting = waiting.filter(**{same_address: address})
        waiting.update(status=Status.SUPPRESSED, status_reason=f"suppressed:{suppression.reason}")
        if created and actor is not None:
            _audit(actor=actor, action="suppression.create", suppression=suppression)
    return created


def address_unsuppress(
    *, channel: str, address: str, reasons: Iterable[str] | None = None, actor=None, via: str = ""
) -> bool:
    """Lift the suppression of ``address`` on ``channel``, only if its reason is one of ``reasons``.

    See ``suppression_lift``. Returns whether a suppression was lifted.
    """
    rows = Suppression.objects.for_address(channel, address)
    if reasons is not None:
        rows = rows.filter(reason__in=list(reasons))
    suppression = rows.first()
    return suppression is not None and suppression_lift(suppression=suppression, actor=actor, via=via)


def suppression_lift(*, suppression: Suppression, actor=None, via: str = "") -> bool:
    """Delete ``suppression``, audited (``actor`` None is the system, e.g. an SMS ``START``).

    One DELETE decides, so of two concurrent lifts exactly one returns True (and one confirmation
    goes out). Deliveries it already stopped stay suppressed: they were not sent when they were due.
    """
    with transaction.atomic():
        if not Suppression.objects.filter(pk=suppression.pk).delete()[0]:
            return False
        _audit(actor=actor, action="suppression.lift", suppression=suppression, via=via)
    return True


def _audit(*, actor, action: str, suppression: Suppression, via: str = "") -> None:
    from ..services import audit_record

    changes = {"channel": suppression.channel, "address": suppression.address, "reason": suppression.reason,
               "user_id": suppression.user_id}
    if via:
        changes["via"] = via
    audit_record(actor=actor, action=action, target=suppression, changes=changes)


def _suppress(*, delivery: Delivery, reason: str, note: str = "") -> bool:
    return address_suppress(
        channel=delivery.channel, address=delivery.address, reason=reason, user_id=delivery.recipient_id, note=note
    )


# --- Unsubscribe ----------------------------------------------------------------------------

class Scope:
    """What an unsubscribe leaves: the message's category, or every marketing category."""

    CATEGORY = "category"
    MARKETING = "marketing"
    ALL = (CATEGORY, MARKETING)


def unsubscribe_categories(*, delivery: Delivery, scope: str) -> list[Category]:
    """The categories an unsubscribe from ``delivery`` turns off on its channel.

    ``category``: the delivery's category, when its recipients may leave it; a message without
    one, or of a category nobody may leave, falls back to every marketing category (the only
    mail such a link ever went out on). ``marketing``: every marketing category recipients may
    leave. Transactional categories are never in the list.
    """
    if scope not in Scope.ALL:
        raise ValueError(f"Unknown unsubscribe scope {scope!r}.")
    category = delivery.category
    if scope == Scope.CATEGORY and category is not None and category_leavable(category):
        return [category]
    return list(Category.objects.filter(kind=Category.Kind.MARKETING, user_can_opt_out=True).order_by("name", "pk"))


def category_leavable(category: Category) -> bool:
    """Whether a recipient may leave ``category`` (opt-outs of transactional mail do nothing)."""
    return category.user_can_opt_out and category.kind != Category.Kind.TRANSACTIONAL


def unsubscribe(*, delivery: Delivery, source: str, scope: str = Scope.CATEGORY) -> bool:
    """The recipient of ``delivery`` leaves ``scope`` on the delivery's channel. Idempotent.

    A person leaves what they chose and nothing more: opt-outs (``Preference`` rows turned off,
    shown and undone in the preference centre) of ``unsubscribe_categories``, so order receipts
    and password resets keep reaching them. When the recipient's account is gone there is no one
    to hold a preference; the address is then suppressed on that channel (reason
    ``unsubscribe``), which is what they asked for at the least. The receipt is recorded once
    per delivery and scope. Returns whether anything was turned off.
    """
    from ..recipients.preferences import preferences_opt_out

    categories = unsubscribe_categories(delivery=delivery, scope=scope)
    with transaction.atomic():
        if delivery.recipient_id is None:
            changed = _suppress(delivery=delivery, reason=Suppression.Reason.UNSUBSCRIBE,
                                note=f"unsubscribed ({scope}); the recipient's account was deleted")
            data = {"scope": "address"}
        else:
            changed = preferences_opt_out(
                user_id=delivery.recipient_id, category_ids=[c.pk for c in categories], channel=delivery.channel
            ) > 0
            data = {"scope": scope, "categories": [c.key for c in categories]}
        receipt_record(
            delivery=delivery, kind=Kind.UNSUBSCRIBED, source=source,
            provider_event_id=f"unsubscribe:{delivery.pk}:{scope}", data=data,
        )
    return changed
