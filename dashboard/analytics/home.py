"""Reads for the dashboard home: runs in progress (live), recent failures, what is scheduled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from notifications.campaigns.progress import RunProgress, runs_progress_of
from notifications.models import Campaign, CampaignRun, DeliveryEvent

ACTIVE_RUN_STATUSES = (CampaignRun.Status.PLANNING, CampaignRun.Status.SENDING, CampaignRun.Status.PAUSED)
RECENTLY_FINISHED = timedelta(minutes=15)
RATE_WINDOW = timedelta(minutes=1)

__all__ = ["LiveRunProgress", "RunProgress", "recent_failures", "runs_progress", "scheduled_campaigns"]


@dataclass(frozen=True)
class LiveRunProgress(RunProgress):
    """A run's progress (``notifications.campaigns.progress``) with its pace over the last minute."""

    sent_last_minute: int = 0
    measured_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.run.status in ACTIVE_RUN_STATUSES

    @property
    def eta(self) -> timedelta | None:
        """Time left at the last minute's pace; ``None`` when nothing went out in it."""
        if not self.waiting:
            return timedelta(0)
        if not self.sent_last_minute:
            return None
        return timedelta(minutes=self.waiting / self.sent_last_minute)

    @property
    def eta_at(self) -> datetime | None:
        eta = self.eta
        return self.measured_at + eta if eta is not None and self.measured_at else None


def runs_progress(*, now: datetime | None = None, campaign_id: int | None = None, limit: int = 10) -> list[LiveRunProgress]:
    """Runs that are planning, sending or paused, and those that finished in the last 15 minutes
    (so a bar is seen reaching 100 %). Four queries: runs, figures by run and reasons for the
    waiting ones (``delivery_run_status_idx``; no reasons query when nothing waits), sends in the
    last minute (``deliveryevent_occurred_idx``).
    """
    now = now or timezone.now()
    runs = CampaignRun.objects.filter(Q(status__in=ACTIVE_RUN_STATUSES) | Q(finished_at__gte=now - RECENTLY_FINISHED))
    if campaign_id:
        runs = runs.filter(campaign_id=campaign_id)
    runs = list(
        runs
        .select_related("campaign")
        .only("id", "status", "status_note", "occurrence", "started_at", "finished_at",
              "planned", "campaign__id", "campaign__name", "campaign__status")
        .order_by("-started_at")[:limit]
    )
    if not runs:
        return []
    ids = [run.pk for run in runs]
    progress = runs_progress_of(runs, now=now)
    recent = dict(
        DeliveryEvent.objects.filter(kind=DeliveryEvent.Kind.SENT, occurred_at__gte=now - RATE_WINDOW, delivery__run_id__in=ids)
        .values_list("delivery__run_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        LiveRunProgress(
            run=run, outcomes=progress[run.pk].outcomes, waiting_reasons=progress[run.pk].waiting_reasons,
            sent_last_minute=recent.get(run.pk, 0), measured_at=now,
        )
        for run in runs
    ]


def recent_failures(
    *, now: datetime | None = None, limit: int = 10, within: timedelta = timedelta(days=7)
) -> list[DeliveryEvent]:
    """The latest failure and bounce receipts (newest first), with their delivery: one query."""
    now = now or timezone.now()
    return list(
        DeliveryEvent.objects.filter(
            kind__in=[DeliveryEvent.Kind.FAILED, DeliveryEvent.Kind.BOUNCED], occurred_at__gte=now - within
        )
        .select_related("delivery", "delivery__run__campaign")
        .only(
            "id", "kind", "occurred_at", "data", "source",
            "delivery__id", "delivery__channel", "delivery__address", "delivery__status", "delivery__status_reason",
            "delivery__last_error", "delivery__run__id", "delivery__run__campaign__id", "delivery__run__campaign__name",
        )
        .order_by("-occurred_at", "-id")[:limit]
    )


def scheduled_campaigns(*, now: datetime | None = None, days: int = 7, limit: int = 20) -> list[Campaign]:
    """Scheduled campaigns whose next run is due within ``days`` (overdue ones first): one query."""
    now = now or timezone.now()
    return list(
        Campaign.objects.filter(status=Campaign.Status.SCHEDULED, next_run_at__lte=now + timedelta(days=days))
        .select_related("audience", "category")
        .only("id", "name", "next_run_at", "schedule", "channels", "audience__name", "category__name",
              "category__name_zh_hans")
        .order_by("next_run_at", "id")[:limit]
    )


