"""``{% approval_banner campaign approval %}``: on the campaign page, whether a Manager's approval is
needed before launch and where it stands (the approval desk, ``campaigns.approval_desk``)."""

from __future__ import annotations

from django import template

from ..campaigns.approval_desk import last_decision
from ..campaigns.services import EDITABLE, campaign_approval
from ..models import Campaign

register = template.Library()


@register.inclusion_tag("notifications/admin/_approval_banner.html")
def approval_banner(campaign: Campaign, approval=None) -> dict:
    """``approval``: the page's own ``campaign_approval`` check, when it made one (not made twice)."""
    if not isinstance(campaign, Campaign) or campaign.pk is None or campaign.status not in EDITABLE:
        return {"show": False}
    check = approval if approval is not None else campaign_approval(campaign=campaign)
    shown = check.needed or campaign.status != Campaign.Status.DRAFT
    return {
        "show": shown, "campaign": campaign, "check": check,
        "decision": last_decision(campaign=campaign) if shown else None,
    }
