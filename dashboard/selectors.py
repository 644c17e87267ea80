"""Reads for the staff dashboard (the analytics selectors are in ``dashboard.analytics``)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications.models import Notification, Suppression

from .analytics import AnalyticsFilters, Counters, DayRange, analytics_figures


@dataclass(frozen=True)
class OverviewKpis:
    recipients: int
    deliveries_7d: int
    sent_7d: int
    failed_7d: int
    unread_inbox: int
    suppressions: int

    @property
    def failure_rate_7d(self) -> float:
        return self.failed_7d / self.deliveries_7d if self.deliveries_7d else 0.0


def overview_kpis(*, now=None, week: Counters | None = None) -> OverviewKpis:
    """Headline figures for the dashboard home.

    The deliveries of the last 7 days (today included, site time zone) come from the analytics
    rollups plus today's ledger rows (``analytics_figures``: four queries, a few milliseconds on
    1M deliveries) unless the caller has them already (``week``, e.g. ``kpis_compare(days=7).totals``);
    ``sent`` and ``failed`` are the headline figures of ``notifications.ledger.outcomes`` (the
    same numbers as the "Sent" and "Failed / bounced" KPIs beside them). Then three
    counts, each on an index.
    """
    now = now or timezone.now()
    if week is None:
        days = DayRange.last(7, now=now)
        week = analytics_figures(filters=AnalyticsFilters(days=days), now=now, with_opens=False).totals
    return OverviewKpis(
        recipients=get_user_model().objects.filter(is_active=True).count(),
        deliveries_7d=week.total,
        sent_7d=week.sent,
        failed_7d=week.failed,
        unread_inbox=Notification.objects.unread().count(),
        suppressions=Suppression.objects.count(),
    )
