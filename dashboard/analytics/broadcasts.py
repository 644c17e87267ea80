"""Broadcasts on the analytics page: announcements made in the period and how many read them.

A broadcast is one row however many inboxes show it (``notifications.models.inbox``), so it has
no deliveries in the ledger's cohorts; it is counted here instead, by its read marks.
"""

from __future__ import annotations

from dataclasses import dataclass
from django.db.models import Count

from notifications.models import Broadcast

from .selectors import AnalyticsFilters


@dataclass(frozen=True)
class BroadcastFigures:
    """The broadcasts sent in a period (newest first, at most ``shown``) and their reads."""

    count: int
    reads: int
    newest: list[Broadcast]


def broadcast_figures(*, filters: AnalyticsFilters, shown: int = 10) -> BroadcastFigures | None:
    """``None`` when the filters exclude broadcasts (a campaign, a channel other than the inbox).

    Two queries: the period's count and reads (``broadcast_created_idx``), the newest rows with
    their reads counted (``broadcastread_broadcast_idx``).
    """
    if filters.campaign_id or (filters.channel and filters.channel != Broadcast.CHANNEL):
        return None
    start, end = filters.days.bounds()
    in_period = Broadcast.objects.filter(created_at__gte=start, created_at__lt=end)
    if filters.category_id:
        in_period = in_period.filter(category_id=filters.category_id)
    totals = in_period.aggregate(count=Count("id", distinct=True), reads=Count("reads"))
    newest = list(
        in_period.select_related("category").annotate(read_count=Count("reads")).order_by("-created_at", "-id")[:shown]
    )
    return BroadcastFigures(count=totals["count"], reads=totals["reads"], newest=newest)
