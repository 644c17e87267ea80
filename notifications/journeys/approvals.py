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

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import conf
from ..campaigns.approvals import (
    ApprovalCheck, _digest, approval_check, audience_digest, category_digest, may_approve, template_digest,
)
from ..models import Audience, Campaign, CampaignRun, Journey, MessageTemplate
from ..services import audit_record


class JourneyNeedsApproval(ValidationError):
    """Publishing was refused: a Manager must approve the journey first (the message says why)."""


def journey_reach(journey: Journey) -> int | None:
    """How many people the journey can enter at once, or None when that cannot be estimated."""
    from ..audiences.selectors import audience_sizes

    entry = journey.entry if isinstance(journey.entry, dict) else {}
    if entry.get("kind") == "audience":
        audience = Audience.objects.filter(pk=entry.get("audience")).first()
        return audience_sizes(audiences=[audience]).get(audience.pk) if audience else None
    if entry.get("kind") == "campaign":
        run = CampaignRun.objects.filter(campaign_id=entry.get("campaign")).order_by("-started_at").first()
        if run is not None:
            return run.audience_size
        campaign = Campaign.objects.filter(pk=entry.get("campaign")).select_related("audience").first()
        if campaign is not None and campaign.audience_id:
            return audience_sizes(audiences=[campaign.audience]).get(campaign.audience_id)
    return None


def journey_fingerprint(journey: Journey) -> dict[str, str]:
    graph = journey.graph if isinstance(journey.graph, dict) else {}
    keys = sorted({s.get("template") for s in graph.get("steps") or [] if isinstance(s, dict) and s.get("type") == "send"})
    templates = {t.key: template_digest(t) for t in MessageTemplate.objects.filter(key__in=keys)}
    entry = journey.entry if isinstance(journey.entry, dict) else {}
    audience = Audience.objects.filter(pk=entry.get("audience")).first() if entry.get("kind") == "audience" else None
    return {
        "journey": _digest({"graph": graph, "entry": entry, "reentry": [journey.reentry, journey.reentry_days]}),
        "template": _digest([templates.get(k) for k in keys]),
        "category": category_digest(journey.category),
        "audience": audience_digest(audience),
    }


def journey_approval_check(*, journey: Journey) -> ApprovalCheck:
    """Does publishing ``journey`` as it is now need a Manager's (new) approval?"""
    reach = journey_reach(journey)
    stored = journey.approval_fingerprint or {}
    approved_size = stored.get("reach") if journey.approved_by_id else None
    if reach is not None:
        return approval_check(size=reach, approved_by_id=journey.approved_by_id,
                              approved_size=approved_size if isinstance(approved_size, int) else None,
                              stored=stored, current=journey_fingerprint(journey))
    if conf.journey_unestimated_reach() == "allow":
        return ApprovalCheck(size=0, needed=False, limit=conf.approval_threshold())
    current = journey_fingerprint(journey)
    changed = [p for p in current if stored.get(p) != current[p]] if journey.approved_by_id else []
    reason = ""
    if not journey.approved_by_id:
        reason = _("How many people this journey reaches cannot be estimated: a Manager must approve it.")
    elif changed:
        reason = _("The approval no longer holds: the journey changed since it was given. A Manager must approve it again.")
    return ApprovalCheck(size=0, needed=bool(reason), limit=conf.approval_threshold(),
                         approved=bool(journey.approved_by_id), changed=changed, reason=reason)


def journey_approve(*, journey: Journey, actor) -> Journey:
    """A Manager approves the journey as it is now, for its current reach. Audited."""
    if actor is None or not may_approve(actor, author_id=journey.created_by_id):
        raise PermissionDenied(_("You may not approve this journey (a Manager other than its author may)."))
    if journey.status == Journey.Status.STOPPED:
        raise ValidationError(_("A stopped journey cannot be approved."))
    reach = journey_reach(journey)
    fingerprint = {**journey_fingerprint(journey), "reach": reach}
    now = timezone.now()
    with transaction.atomic():
        Journey.objects.filter(pk=journey.pk).update(approved_by=actor, approved_at=now,
                                                     approval_fingerprint=fingerprint)
        journey.approved_by, journey.approved_at, journey.approval_fingerprint = actor, now, fingerprint
        audit_record(actor=actor, action="journey.approve", target=journey, changes={"reach": reach})
    return journey
