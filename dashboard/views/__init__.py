"""Staff pages inside the Unfold admin: analytics, per-campaign analytics, dashboard partials."""

from .analytics import (
    analytics_page,
    campaign_page,
    campaign_recipients_partial,
    delivery_timeline_partial,
    home_kpis_partial,
    runs_progress_partial,
)
from .approvals import approval_decide, approval_page, approvals_page, journey_approval_decide, journey_approval_page
from .journeys import journey_page, journeys_page

__all__ = [
    "approval_decide", "approval_page", "approvals_page", "journey_approval_decide", "journey_approval_page",
    "analytics_page", "campaign_page", "campaign_recipients_partial", "delivery_timeline_partial",
    "home_kpis_partial", "runs_progress_partial", "journey_page", "journeys_page",
]
