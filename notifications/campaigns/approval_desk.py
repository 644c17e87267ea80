"""The approval desk: who is told, what a Manager sees, what awaits them.

Messages go through Signalbox's own pipeline (``notify()``: the ledger, the inbox, email) in a
transactional category recipients cannot leave, so a Manager's marketing opt-outs never hide a
campaign waiting for them, and an author always hears the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Exists, F, OuterRef, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.names import person_name
from accounts.roles import roles_allowed

from .. import conf
from ..models import ApprovalDecision, Campaign, CampaignRun, Category, SignalTrigger

APPROVALS_CATEGORY = "staff-approvals"
AWAITING = (Campaign.Status.PENDING_APPROVAL,)


def approvals_category() -> Category:
    from ..services import category_ensure

    return category_ensure(key=APPROVALS_CATEGORY, name="Approvals", kind=Category.Kind.TRANSACTIONAL,
                           user_can_opt_out=False)


def approval_page_path(campaign_id: int) -> str:
    return reverse("dashboard:approval", args=[campaign_id])


def _locale_of(user) -> str:
    profile = getattr(user, "recipient_profile", None)
    return (profile.locale if profile is not None and profile.locale else None) or "en"


def _by_locale(users) -> dict[str, list]:
    groups: dict[str, list] = {}
    for user in users:
        groups.setdefault(_locale_of(user), []).append(user)
    return groups


def approvers_for(campaign: Campaign):
    """Every active staff member whose role may approve (``campaign.approve`` in the role table:
    Managers), except the author, who may not approve their own campaign."""
    users = get_user_model().objects.filter(is_active=True, is_staff=True, groups__name__in=roles_allowed("campaign.approve"))
    if campaign.author_id:
        users = users.exclude(pk=campaign.author_id)
    return users.select_related("recipient_profile").order_by("pk").distinct()


def managers_notify_submitted(*, campaign: Campaign, size: int) -> int:
    """An inbox message and an email to every Manager who may approve ``campaign``; the count told."""
    from ..api import notify

    path = approval_page_path(campaign.pk)
    category = approvals_category()
    author = person_name(campaign.author) if campaign.author else "—"
    stamp = int((campaign.submitted_at or timezone.now()).timestamp())
    told = 0
    for locale, users in _by_locale(approvers_for(campaign)).items():
        ids = [user.pk for user in users]
        with translation.override(locale):
            title = _("Awaiting your approval: %(name)s") % {"name": campaign.name}
            body = _("%(author)s submitted “%(name)s” for %(size)s recipients.") % {
                "author": author, "name": campaign.name, "size": size}
            notify(ids, title=title, body=body, url=path, channels=["inapp"], category=category,
                   idempotency_key=f"approval-submitted:{campaign.pk}:{stamp}:inapp")
            notify(ids, title=title, body=body + "\n\n" + _("Review it: %(link)s") % {"link": conf.site_url() + path},
                   channels=["email"], category=category,
                   idempotency_key=f"approval-submitted:{campaign.pk}:{stamp}:email")
        told += len(ids)
    return told


def author_notify_decision(*, campaign: Campaign, decision: ApprovalDecision) -> None:
    """The author's inbox message: approved or changes requested, with the Manager's comment."""
    from ..api import notify

    author = campaign.author
    if author is None or not author.is_active:
        return
    who = person_name(decision.decided_by) if decision.decided_by else "—"
    with translation.override(_locale_of(author)):
        if decision.decision == ApprovalDecision.Decision.APPROVED:
            title = _("Approved: %(name)s") % {"name": campaign.name}
        else:
            title = _("Changes requested: %(name)s") % {"name": campaign.name}
        body = _("%(who)s: %(comment)s") % {"who": who, "comment": decision.comment} if decision.comment else who
        notify([author.pk], title=title, body=body,
               url=reverse("admin:notifications_campaign_change", args=[campaign.pk]),
               channels=["inapp"], category=approvals_category(),
               idempotency_key=f"approval-decision:{decision.pk}")



def last_decision(*, campaign: Campaign) -> ApprovalDecision | None:
    return ApprovalDecision.objects.filter(campaign=campaign).select_related("decided_by").first()


@dataclass(frozen=True)
class AwaitingItem:
    kind: str  # "campaign" | "trigger" | "journey"
    pk: int
    name: str
    author: str
    submitted_at: datetime | None
    size: int | None
    url: str


def awaiting_campaigns():
    """Campaigns a Manager should look at: submitted, or with a run held for approval."""
    held = CampaignRun.objects.filter(campaign=OuterRef("pk"), status=CampaignRun.Status.AWAITING_APPROVAL)
    return Campaign.objects.filter(Q(status__in=AWAITING) | Q(Exists(held)))


def awaiting_approval(*, limit: int = 20) -> list[AwaitingItem]:
    """What awaits a Manager, oldest submission first: campaigns (one query, plus the audience
    sizes in ``audience_sizes``' fixed number), triggers held for approval (one query) and
    journeys waiting for approval (one query, plus their reaches in
    ``journeys.approvals.journey_reaches``')."""
    from ..audiences import audience_sizes

    campaigns = list(
        awaiting_campaigns().select_related("author", "audience")
        .order_by("submitted_at", "pk")[:limit]
    )
    sizes = audience_sizes(audiences={c.audience_id: c.audience for c in campaigns}.values()) if campaigns else {}
    items = [
        AwaitingItem(
            kind="campaign", pk=c.pk, name=c.name,
            author=person_name(c.author) if c.author else "—",
            submitted_at=c.submitted_at, size=sizes.get(c.audience_id), url=approval_page_path(c.pk),
        )
        for c in campaigns
    ]
    triggers = (
        SignalTrigger.objects.filter(last_held_at__isnull=False)
        .filter(Q(approved_at__isnull=True) | Q(approved_at__lt=F("last_held_at")))
        .select_related("created_by").order_by("last_held_at", "pk")[:limit]
    )
    items += [
        AwaitingItem(
            kind="trigger", pk=t.pk, name=t.name,
            author=person_name(t.created_by) if t.created_by else "—",
            submitted_at=t.last_held_at, size=None,
            url=reverse("admin:notifications_signaltrigger_approve", args=[t.pk]),
        )
        for t in triggers
    ]
    items += _awaiting_journey_items(limit=limit)
    return items


def _awaiting_journey_items(*, limit: int) -> list[AwaitingItem]:
    from ..journeys.approvals import awaiting_journeys, journey_reaches

    journeys = list(awaiting_journeys().select_related("created_by").order_by("approval_requested_at", "pk")[:limit])
    if not journeys:
        return []
    reaches = journey_reaches(journeys)
    return [
        AwaitingItem(
            kind="journey", pk=j.pk, name=j.name,
            author=person_name(j.created_by) if j.created_by else "—",
            submitted_at=j.approval_requested_at, size=reaches.get(j.pk),
            url=reverse("dashboard:journey_approval", args=[j.pk]),
        )
        for j in journeys
    ]



@dataclass(frozen=True)
class RenderedLocale:
    locale: str
    channels: list  # [(label, [(part label, text)], error)]


@dataclass(frozen=True)
class ApprovalReview:
    """Everything a Manager approves, as the approval page shows it."""

    campaign: Campaign
    size: int
    audience_lines: list[str]
    channels: list[str]
    channel_mode: str
    category_line: str
    schedule: str
    next_occurrences: list[datetime]
    sample_recipient: object
    rendered: list[RenderedLocale]
    diff: list  # snapshots.PartDiff
    # The last decision a Manager made on it (approved, or sent back with changes requested): what
    # ``diff`` compares with, so a resubmission shows whether the asked-for change was made.
    compared_with: ApprovalDecision | None
    decisions: list[ApprovalDecision]
    check: object  # approvals.ApprovalCheck


CONTENT_PARTS = {
    "subject": gettext_lazy("Subject"), "text": gettext_lazy("Text"), "title": gettext_lazy("Title"),
    "body": gettext_lazy("Body"), "url": gettext_lazy("Link"),
}


def _rendered(campaign: Campaign, sample) -> list[RenderedLocale]:
    from ..templating.preview import template_preview

    from .values import campaign_values

    template = campaign.template
    values = campaign_values(campaign=campaign)
    locales = [template.locale, *template.variants.exclude(locale=template.locale).values_list("locale", flat=True)]
    result = []
    for locale in locales:
        # The values the campaign fills in, not the stand-ins a template preview shows: this is
        # the content as it will be sent.
        preview = template_preview(template=template, user=sample, locale=locale, variables=values)
        channels = []
        for name in campaign.channels or []:
            shown = preview.channel(name)
            if shown is None:
                continue
            parts = [(str(CONTENT_PARTS[key]), shown.content[key]) for key in CONTENT_PARTS
                     if shown.content.get(key)]
            channels.append((shown.label, parts, shown.error))
        result.append(RenderedLocale(locale=locale, channels=channels))
    return result


def approval_review(*, campaign: Campaign, now: datetime | None = None) -> ApprovalReview:
    from ..audiences import audience_users
    from .approvals import campaign_approval_check
    from .schedules import RecurrenceSpec, ScheduleError, recurrence_preview
    from .snapshots import campaign_snapshot, channel_names, snapshot_diff, snapshot_lines

    now = now or timezone.now()
    users = audience_users(audience=campaign.audience)
    size = users.count()
    sample = users.select_related("recipient_profile").order_by("pk").first()
    snapshot = campaign_snapshot(campaign)
    decisions = list(ApprovalDecision.objects.filter(campaign=campaign).select_related("decided_by")[:10])
    previous = decisions[0] if decisions else None  # the last decision, newest first
    upcoming: list[datetime] = []
    if campaign.schedule == Campaign.Schedule.RECURRING and campaign.rrule:
        try:
            upcoming = recurrence_preview(
                RecurrenceSpec(campaign.rrule, campaign.schedule_timezone, campaign.recurrence_start or campaign.created_at),
                after=now,
            )
        except ScheduleError:
            upcoming = []
    elif campaign.schedule == Campaign.Schedule.ONCE and campaign.send_at:
        upcoming = [campaign.send_at]
    return ApprovalReview(
        campaign=campaign, size=size,
        audience_lines=snapshot_lines(snapshot, "audience"),
        channels=channel_names(list(campaign.channels or [])),
        channel_mode=campaign.get_delivery_mode_display(),
        category_line=snapshot_lines(snapshot, "category")[0],
        schedule=" · ".join(snapshot_lines(snapshot, "schedule")),
        next_occurrences=upcoming,
        sample_recipient=sample,
        rendered=_rendered(campaign, sample) if sample is not None else [],
        diff=snapshot_diff(previous.snapshot if previous else None, snapshot) if previous else [],
        compared_with=previous,
        decisions=decisions,
        check=campaign_approval_check(campaign=campaign, size=size),
    )
