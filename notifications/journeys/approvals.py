"""Approval of journeys, like campaigns: a journey that can reach many people needs a Manager.

Publishing (``services.journey_publish``) asks ``journey_approval_check``: the journey's
estimated reach is its audience's size (audience entry) or its campaign's last run (campaign
entry, the campaign's audience before any run); above ``SIGNALBOX_APPROVAL_THRESHOLD`` a
Manager's approval (``journey_approve``: the ``campaign.approve`` action, never one's own
journey, as ``campaigns.approvals.may_approve``) must be on record for the journey as it is now.
Signal, date and code entries cannot be estimated: ``SIGNALBOX_JOURNEY_UNESTIMATED_REACH``
("allow" by default, or "approve") says whether they need one each time.

What an approval covers is fingerprinted as campaigns' are: the draft (steps, goals, exits), the
entry and re-entry policy, each send step's template wording, the category and the audience;
changing any of them, or growing past the approved reach + 10 %, voids it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import roles_allowed

from .. import conf
from ..campaigns.approvals import (
    PART_LABELS, ApprovalCheck, approval_check, audience_digest, category_digest, digest, may_approve, template_digest,
)
from ..models import Audience, Campaign, CampaignRun, Journey, MessageTemplate
from ..services import audit_record


class JourneyNeedsApproval(ValidationError):
    """Publishing was refused: a Manager must approve the journey first (the message says why)."""


def journey_reach(journey: Journey) -> int | None:
    """How many people the journey can enter at once, or None when that cannot be estimated."""
    return journey_reaches([journey]).get(journey.pk)


def journey_reaches(journeys) -> dict[int, int | None]:
    """Journey id -> how many people it can enter at once, for many journeys in a fixed number of
    queries (the approval desk's list and one journey's check read this one definition): an
    audience entry's audience size (``audience_sizes``), a campaign entry's last run, or before
    any run the campaign's audience. Absent: it cannot be estimated (signal, date, code entries)."""
    from ..audiences.selectors import audience_sizes

    by_audience: dict[int, list[int]] = {}
    by_campaign: dict[int, list[int]] = {}
    for journey in journeys:
        entry = journey.entry if isinstance(journey.entry, dict) else {}
        kind = entry.get("kind")
        target = entry.get(kind) if kind in ("audience", "campaign") else None
        if isinstance(target, int) and not isinstance(target, bool):
            (by_audience if kind == "audience" else by_campaign).setdefault(target, []).append(journey.pk)
    reaches: dict[int, int | None] = {}
    if by_campaign:
        last_run: dict[int, int] = {}
        runs = CampaignRun.objects.filter(campaign_id__in=list(by_campaign)).order_by("campaign_id", "-started_at")
        for campaign_id, size in runs.values_list("campaign_id", "audience_size"):
            last_run.setdefault(campaign_id, size)
        for campaign_id, size in last_run.items():
            reaches.update(dict.fromkeys(by_campaign[campaign_id], size))
        never_ran = [campaign_id for campaign_id in by_campaign if campaign_id not in last_run]
        if never_ran:
            audiences = Campaign.objects.filter(pk__in=never_ran, audience__isnull=False).values_list("pk", "audience_id")
            for campaign_id, audience_id in audiences:
                by_audience.setdefault(audience_id, []).extend(by_campaign[campaign_id])
    if by_audience:
        sizes = audience_sizes(audiences=list(Audience.objects.filter(pk__in=list(by_audience))))
        for audience_id, size in sizes.items():
            reaches.update(dict.fromkeys(by_audience[audience_id], size))
    return reaches


def journey_fingerprint(journey: Journey) -> dict[str, str]:
    graph = journey.graph if isinstance(journey.graph, dict) else {}
    keys = sorted({s.get("template") for s in graph.get("steps") or [] if isinstance(s, dict) and s.get("type") == "send"})
    templates = {t.key: template_digest(t) for t in MessageTemplate.objects.filter(key__in=keys)}
    entry = journey.entry if isinstance(journey.entry, dict) else {}
    audience = Audience.objects.filter(pk=entry.get("audience")).first() if entry.get("kind") == "audience" else None
    return {
        "journey": digest({"graph": graph, "entry": entry, "reentry": [journey.reentry, journey.reentry_days]}),
        "template": digest([templates.get(k) for k in keys]),
        "category": category_digest(journey.category),
        "audience": audience_digest(audience),
    }


def journey_approval_check(*, journey: Journey) -> ApprovalCheck:
    """Does publishing ``journey`` as it is now need a Manager's (new) approval? The campaigns'
    check (``campaigns.approvals.approval_check``), with an unknown reach when it cannot be
    estimated and the settings ask for approval anyway."""
    return _approval_check(journey, reach=journey_reach(journey))


def _approval_check(journey: Journey, *, reach: int | None) -> ApprovalCheck:
    if reach is None and conf.journey_unestimated_reach() == "allow":
        return ApprovalCheck(size=0, needed=False, limit=conf.approval_threshold())
    stored = journey.approval_fingerprint or {}
    approved_size = stored.get("reach") if journey.approved_by_id else None
    return approval_check(size=reach, approved_by_id=journey.approved_by_id,
                          approved_size=approved_size if isinstance(approved_size, int) else None,
                          stored={k: v for k, v in stored.items() if k != "reach"},
                          current=journey_fingerprint(journey))


def awaiting_journeys():
    """Journeys a Manager should look at: approval asked for (publishing was refused for want of
    one) and not given since, nor sent back."""
    return Journey.objects.filter(approval_requested_at__isnull=False).exclude(
        status=Journey.Status.STOPPED).filter(Q(approved_at__isnull=True) | Q(approved_at__lt=F("approval_requested_at")))


def approvers_for_journey(journey: Journey):
    """Active staff whose role may approve (``campaign.approve``), except the journey's author."""
    users = get_user_model().objects.filter(is_active=True, is_staff=True,
                                            groups__name__in=roles_allowed("campaign.approve"))
    if journey.created_by_id:
        users = users.exclude(pk=journey.created_by_id)
    return users.order_by("pk").distinct()


def journey_request_approval(*, journey: Journey, actor, now=None) -> bool:
    """Put the journey on the approval desk (its publication was refused for want of an approval)
    and tell the Managers who may approve it in their inbox. False when it was already waiting."""
    from ..api import notify
    from ..campaigns.approval_desk import approvals_category

    now = now or timezone.now()
    if awaiting_journeys().filter(pk=journey.pk).exists():
        return False
    with transaction.atomic():
        Journey.objects.filter(pk=journey.pk).update(approval_requested_at=now, status_note="")
        journey.approval_requested_at, journey.status_note = now, ""
        audit_record(actor=actor, action="journey.request_approval", target=journey)
    ids = list(approvers_for_journey(journey).values_list("pk", flat=True))
    if ids:
        notify(ids, title=_("Awaiting your approval: %(name)s") % {"name": journey.name},
               body=_("A journey asks for approval before it is published."),
               url=reverse("dashboard:journey_approval", args=[journey.pk]), channels=["inapp"],
               category=approvals_category(),
               idempotency_key=f"journey-approval:{journey.pk}:{int(now.timestamp())}")
    return True


def journey_request_changes(*, journey: Journey, actor, comment: str) -> Journey:
    """A Manager sends the journey back with a comment (required): it leaves the desk, the
    comment is its status note and the author's inbox message. Audited."""
    from ..api import notify
    from ..campaigns.approval_desk import approvals_category

    if actor is None or not may_approve(actor, author_id=journey.created_by_id):
        raise PermissionDenied(_("You may not approve this journey (a Manager other than its author may)."))
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError(_("Say what should change: the comment is what the author reads."))
    with transaction.atomic():
        Journey.objects.filter(pk=journey.pk).update(approval_requested_at=None, status_note=comment[:255])
        journey.approval_requested_at, journey.status_note = None, comment[:255]
        audit_record(actor=actor, action="journey.request_changes", target=journey, changes={"comment": comment})
    if journey.created_by_id:
        notify([journey.created_by_id], title=_("Changes requested: %(name)s") % {"name": journey.name},
               body=comment, url=reverse("admin:notifications_journey_change", args=[journey.pk]),
               channels=["inapp"], category=approvals_category(),
               idempotency_key=f"journey-changes:{journey.pk}:{int(timezone.now().timestamp())}")
    return journey


def journey_approve(*, journey: Journey, actor, comment: str = "") -> Journey:
    """A Manager approves the journey as it is now, for its current reach. Audited; an optional
    ``comment`` is kept in the audit entry and reaches the author with the approval."""
    if actor is None or not may_approve(actor, author_id=journey.created_by_id):
        raise PermissionDenied(_("You may not approve this journey (a Manager other than its author may)."))
    if journey.status == Journey.Status.STOPPED:
        raise ValidationError(_("A stopped journey cannot be approved."))
    reach = journey_reach(journey)
    fingerprint = {**journey_fingerprint(journey), "reach": reach}
    now = timezone.now()
    comment = (comment or "").strip()
    with transaction.atomic():
        Journey.objects.filter(pk=journey.pk).update(approved_by=actor, approved_at=now,
                                                     approval_fingerprint=fingerprint)
        journey.approved_by, journey.approved_at, journey.approval_fingerprint = actor, now, fingerprint
        audit_record(actor=actor, action="journey.approve", target=journey,
                     changes={"reach": reach, **({"comment": comment} if comment else {})})
    if journey.created_by_id and journey.approval_requested_at:
        from ..api import notify
        from ..campaigns.approval_desk import approvals_category

        notify([journey.created_by_id], title=_("Approved: %(name)s") % {"name": journey.name},
               body=comment or _("It can be published as it is now."),
               url=reverse("admin:notifications_journey_change", args=[journey.pk]), channels=["inapp"],
               category=approvals_category(), idempotency_key=f"journey-approved:{journey.pk}:{int(now.timestamp())}")
    return journey


@dataclass(frozen=True)
class JourneyReview:
    """What a Manager approves, as the journey's approval page shows it."""

    journey: Journey
    reach: int | None
    entry: str
    reentry: str
    steps: list[str]  # each draft step in words, in graph order
    goals: int
    exits: int
    check: ApprovalCheck
    changed: list[str]  # the parts changed since the last approval, in words
    waiting: bool  # on the desk: asked for and not decided since


def journey_review(*, journey: Journey) -> JourneyReview:
    from ..models import Category
    from .builder import entry_words, step_words
    from .graph import steps_by_id

    graph = journey.graph if isinstance(journey.graph, dict) else {}
    steps = steps_by_id(graph)
    template_keys = {s.get("template") for s in steps.values() if s.get("type") == "send"}
    templates = dict(MessageTemplate.objects.filter(key__in=template_keys).values_list("key", "name"))
    categories = dict(Category.objects.filter(
        key__in={s.get("category") for s in steps.values() if s.get("category")}).values_list("key", "name"))
    reach = journey_reach(journey)  # an audience count: once for the page and its check
    check = _approval_check(journey, reach=reach)
    return JourneyReview(
        journey=journey, reach=reach, entry=entry_words(journey.entry), reentry=journey.reentry_label,
        steps=[step_words(step, templates=templates, categories=categories) for step in steps.values()],
        goals=len(graph.get("goals") or []), exits=len(graph.get("exits") or []), check=check,
        changed=[str(PART_LABELS.get(part, part)) for part in check.changed],
        waiting=awaiting_journeys().filter(pk=journey.pk).exists(),
    )


def journey_publish_or_ask(*, journey: Journey, actor):
    """Publish the journey (``services.journey_publish``); when that is refused for want of a
    Manager's approval, put it on the approval desk and refuse with both sentences. What the
    admin's Publish buttons call."""
    from .services import journey_publish

    try:
        return journey_publish(journey=journey, actor=actor)
    except JourneyNeedsApproval as refusal:
        journey_request_approval(journey=journey, actor=actor)
        raise JourneyNeedsApproval([*refusal.messages, _(
            "It waits on the approval desk: the Managers who may approve it have been told.")]) from refusal
