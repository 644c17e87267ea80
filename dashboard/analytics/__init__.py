"""Staff analytics: figures from the delivery ledger, rollups that keep them fast, chart data.

Public API (everything else in the package is internal):

* ``analytics_rollup_refresh(*, since, until=None)`` / ``analytics_rollup_tick(*, now=None)``:
  services that (re)build the daily rollups; the scheduler calls the tick.
  ``details_purged_before(*, since)``: where data retention left only the rollups (for notes).
* Selectors: ``analytics_figures(*, filters)`` and ``kpis_compare(*, days)`` (``selectors``);
  ``runs_progress()``, ``recent_failures()``, ``scheduled_campaigns()`` for the home (``home``);
  ``campaign_recipients(...)``, ``delivery_timeline(*, delivery_id)`` for the per-campaign page
  (``recipients``).
* ``analytics_charts(figures)``: plotly figure dicts.
* ``broadcast_figures(*, filters)``: the period's broadcasts and their reads (``broadcasts``).
"""

from .broadcasts import BroadcastFigures, broadcast_figures
from .charts import analytics_charts, funnel_stages, status_labels
from .figures import STATUS_GROUPS, Counters, DayRange, Grid
from .home import LiveRunProgress, RunProgress, recent_failures, runs_progress, scheduled_campaigns
from .recipients import RecipientPage, campaign_days, campaign_recipients, campaign_runs, delivery_timeline
from .rollups import RollupResult, analytics_rollup_refresh, analytics_rollup_tick, details_purged_before
from .selectors import (
    NO_CAMPAIGN,
    AnalyticsFigures,
    AnalyticsFilters,
    Kpi,
    KpiPeriod,
    analytics_figures,
    campaign_names,
    filter_choices,
    journey_choices,
    kpis_compare,
)

__all__ = [
    "NO_CAMPAIGN", "STATUS_GROUPS", "AnalyticsFigures", "AnalyticsFilters", "BroadcastFigures", "Counters", "DayRange", "Grid", "Kpi",
    "KpiPeriod", "LiveRunProgress", "RecipientPage", "RollupResult", "RunProgress", "analytics_charts", "analytics_figures",
    "analytics_rollup_refresh", "analytics_rollup_tick", "broadcast_figures", "campaign_days", "campaign_names", "campaign_recipients",
    "campaign_runs", "delivery_timeline", "details_purged_before", "filter_choices", "funnel_stages", "journey_choices", "kpis_compare", "recent_failures",
    "runs_progress", "scheduled_campaigns", "status_labels",
]
