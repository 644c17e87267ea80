"""Reads for the staff dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone

from notifications.models import Delivery, Notification, Suppression


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


SENT_OR_LATER = ["sent", "delivered", "opened", "read", "clicked"]


def overview_kpis(*, now=None) -> OverviewKpis:
    """Headline figures for the dashboard home: four queries, each on an index."""
    now = now or timezone.now()
    week = Delivery.objects.filter(created_at__gte=now - timedelta(days=7)).aggregate(
        total=Count("id"),
        sent=Count("id", filter=Q(status__in=SENT_OR_LATER)),
        failed=Count("id", filter=Q(status__in=["failed", "bounced"])),
    )
    return OverviewKpis(
        recipients=get_user_model().objects.filter(is_active=True).count(),
        deliveries_7d=week["total"],
        sent_7d=week["sent"],
        failed_7d=week["failed"],
        unread_inbox=Notification.objects.unread().count(),
        suppressions=Suppression.objects.count(),
    )
