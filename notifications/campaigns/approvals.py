"""What an approval covers, and whether it still holds (README "Security model").

A Manager approves a campaign (or a trigger) as it is *then*: its audience definition, the
template's wording in every locale, its channels, its category and its schedule, for a number
of recipients. ``approval_fingerprint`` digests each of those parts from their content, so a
change made anywhere — the campaign form, the audience or template admin, the shell, an API —
voids the approval without anyone having to remember to reset it. Size is checked separately:
an approval covers up to ``APPROVAL_MARGIN`` more recipients than it was given for.

Rule audiences grow and shrink as people match them; their rules are digested, their members are
not (the size check covers growth). A static audience's membership is its definition, digested
as (member count, newest member row): any add or remove changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Max
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.roles import allows

from .. import conf
from ..models import Audience, AudienceMember, Campaign, Category, MessageTemplate, SignalTrigger

# An approval for N recipients covers up to N * (1 + APPROVAL_MARGIN).
APPROVAL_MARGIN = 0.10

PART_LABELS = {
    "audience": gettext_lazy("the audience"),
    "template": gettext_lazy("the template"),
    "channels": gettext_lazy("the channels"),
    "category": gettext_lazy("the category"),
    "schedule": gettext_lazy("the schedule"),
    "trigger": gettext_lazy("the trigger's event and recipients"),
    "journey": gettext_lazy("the journey's steps, goals, entry or re-entry policy"),
}


def digest(value: Any) -> str:
    """A short, stable digest of a JSON-able value: one part of an approval fingerprint."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def audience_digest(audience: Audience | None) -> str:
    if audience is None:
        return digest(None)
    definition: dict[str, Any] = {"id": audience.pk, "kind": audience.kind}
    if audience.kind == Audience.Kind.STATIC:
        members = AudienceMember.objects.filter(audience_id=audience.pk).aggregate(n=Count("id"), last=Max("id"))
        definition["members"] = [members["n"], members["last"]]
    else:
        definition["rules"] = audience.rules
    return digest(definition)


def template_digest(template: MessageTemplate) -> str:
    variants = list(
        template.variants.order_by("locale").values("locale", *MessageTemplate.PART_FIELDS)
    )
    return digest({
        "id": template.pk, "parts": template.parts(), "locale": template.locale,
        "variables": template.variables, "category": template.category_id, "variants": variants,
    })


def category_digest(category: Category) -> str:
    return digest({
        "id": category.pk, "kind": category.kind, "opt_out": category.user_can_opt_out,
        "default": category.default_enabled,
    })


def campaign_fingerprint(campaign: Campaign) -> dict[str, str]:
    """The digest of each part a campaign approval covers."""
    return {
        "audience": audience_digest(campaign.audience),
        # The values a campaign gives its template's variables are part of its content (a campaign
        # without any keeps the digest it always had, so approvals on record still hold).
        "template": _content_digest(campaign),
        "channels": digest({"channels": list(campaign.channels or []), "mode": campaign.delivery_mode}),
        "category": category_digest(campaign.category),
        "schedule": digest({
            name: getattr(campaign, name)
            for name in (
                "schedule", "send_at", "rrule", "schedule_timezone", "recurrence_start", "local_send_date",
                "local_send_time", "max_lateness", "throttle_per_minute", "frequency_cap_per_day",
            )
        }),
    }


def ab_test_digest(campaign: Campaign) -> str | None:
    """An A/B test's variants (each variant template's wording too), share, metric and window;
    None without variants."""
    from ..models import CampaignVariant

    variants = list(
        CampaignVariant.objects.filter(campaign_id=campaign.pk).select_related("template").order_by("label")
    ) if campaign.pk else []
    if not variants:
        return None
    return digest({
        "variants": [[v.label, template_digest(v.template) if v.template_id else None, v.email_subject]
                     for v in variants],
        "share": campaign.test_share, "metric": campaign.test_metric, "window": campaign.test_window,
    })


def _content_digest(campaign: Campaign) -> str:
    """The template, the values it is given and the A/B variants: together, what people read.
    A campaign without values or variants keeps the digest it always had, so approvals on record
    still hold."""
    ab_test = ab_test_digest(campaign)
    if not campaign.template_values and ab_test is None:
        return template_digest(campaign.template)
    parts: list = [template_digest(campaign.template), campaign.template_values]
    if ab_test is not None:
        parts.append(ab_test)
    return digest(parts)


def trigger_fingerprint(trigger: SignalTrigger) -> dict[str, str]:
    """The digest of each part a trigger approval covers."""
    return {
        "audience": audience_digest(trigger.audience),
        "template": template_digest(trigger.template),
        "channels": digest({"channels": list(trigger.channels or [])}),
        "category": category_digest(trigger.category),
        "trigger": digest({
            name: getattr(trigger, name)
            for name in (
                "signal", "model", "events", "changed_field", "changed_to", "conditions", "recipient_path",
                "max_recipients", "dedupe_window",
            )
        }),
    }


@dataclass(frozen=True)
class ApprovalCheck:
    """Whether sending ``size`` recipients needs (another) approval, and why, in words."""

    size: int
    needed: bool
    limit: int  # the most recipients that may be sent without a new approval
    approved: bool = False  # an approval is on record
    changed: list[str] = field(default_factory=list)  # parts changed since it was given
    reason: str = ""


def approval_limit(*, valid: bool, approved_size: int | None) -> int:
    threshold = conf.approval_threshold()
    if valid and approved_size is not None:
        return max(threshold, int(approved_size * (1 + APPROVAL_MARGIN)))
    return threshold


def approval_check(
    *, size: int | None, approved_by_id: int | None, approved_size: int | None, stored: dict, current: dict
) -> ApprovalCheck:
    """Does sending to ``size`` people need a Manager's (new) approval?

    Under the threshold, never. Above it, an approval is needed that was given for this
    fingerprint and covers the size (approved size + ``APPROVAL_MARGIN``). ``size=None`` is a reach
    that cannot be estimated (a journey entered from a signal or from code, when the settings ask
    for approval anyway): an approval given for this fingerprint is needed, whatever its size.
    """
    threshold = conf.approval_threshold()
    unestimated = size is None
    approved = bool(approved_by_id and (approved_size is not None or unestimated))
    changed = [part for part in current if stored.get(part) != current[part]] if approved else []
    limit = approval_limit(valid=approved and not changed, approved_size=approved_size)
    reason = ""
    if unestimated and not approved:
        reason = _("How many people this journey reaches cannot be estimated: a Manager must approve it.")
    elif not unestimated and size <= threshold:
        pass
    elif not approved:
        reason = _(
            "%(size)d recipients is above the approval threshold of %(threshold)d: a Manager must approve it."
        ) % {"size": size, "threshold": threshold}
    elif changed:
        reason = _(
            "The approval no longer holds: %(parts)s changed since it was given. A Manager must approve it again."
        ) % {"parts": ", ".join(str(PART_LABELS.get(part, part)) for part in changed)}
    elif not unestimated and size > limit:
        reason = _(
            "The approval covers up to %(limit)d recipients (%(approved)d approved + 10%%); there are now %(size)d. "
            "A Manager must approve it again."
        ) % {"limit": limit, "approved": approved_size, "size": size}
    return ApprovalCheck(
        size=0 if unestimated else size, needed=bool(reason), limit=limit, approved=approved, changed=changed,
        reason=reason,
    )


def campaign_approval_check(*, campaign: Campaign, size: int) -> ApprovalCheck:
    return approval_check(
        size=size, approved_by_id=campaign.approved_by_id, approved_size=campaign.approved_size,
        stored=campaign.approval_fingerprint or {}, current=campaign_fingerprint(campaign),
    )


def trigger_approval_check(*, trigger: SignalTrigger, size: int) -> ApprovalCheck:
    return approval_check(
        size=size, approved_by_id=trigger.approved_by_id, approved_size=trigger.approved_size,
        stored=trigger.approval_fingerprint or {}, current=trigger_fingerprint(trigger),
    )


def may_approve(user, *, author_id: int | None) -> bool:
    """May ``user`` approve what ``author_id`` built (a campaign or a trigger)? The
    ``campaign.approve`` action of the role table, and never one's own work (four eyes)."""
    return allows(user, "campaign.approve") and (author_id is None or author_id != user.pk)
