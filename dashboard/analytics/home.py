"""Reads for the dashboard home: runs in progress (live), recent failures, what is scheduled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from notifications.models import Campaign, CampaignRun, DeliveryEvent

ACTIVE_RUN_STATUSES = (CampaignRun.Status.PLANNING, CampaignRun.Status.SENDING, CampaignRun.Status.PAUSED)
RECENTLY_FINISHED = timedelta(minutes=15)
RATE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class RunProgress:
    run: CampaignRun
    total: int
    sent: int
    failed: int
    suppressed: int
    waiting: int
    sent_last_minute: int
    measured_at: datetime

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.suppressed

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.run.status not in ACTIVE_RUN_STATUSES else 0
        return min(100, round(100 * self.done / self.total))

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
        return self.measured_at + eta if eta is not None else None


def runs_progress(*, now: datetime | None = None, campaign_id: int | None = None, limit: int = 10) -> list[RunProgress]:
    """Runs that are planning, sending or paused, and those that finished in the last 15 minutes
    (so a bar is seen reaching 100 %). Three queries: runs, counts by outcome
    (``delivery_run_status_idx``), sends in the last minute (``deliveryevent_occurred_idx``).
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
    # The campaign admin's per-run counts (one query on ``delivery_run_status_idx``); imported here
    # so that importing the selectors never imports (and registers) the admin.
    from notifications.admin.campaigns import run_progress  # noqa: PLC0415

    ids = [run.pk for run in runs]
    progress = run_progress(ids)
    recent = dict(
        DeliveryEvent.objects.filter(kind=DeliveryEvent.Kind.SENT, occurred_at__gte=now - RATE_WINDOW, delivery__run_id__in=ids)
        .values_list("delivery__run_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    result = []
    for run in runs:
        counts = progress.get(run.pk, {})
        result.append(
            RunProgress(
                run=run, total=counts.get("total", 0), sent=counts.get("sent", 0), failed=counts.get("failed", 0),
                suppressed=counts.get("suppressed", 0), waiting=counts.get("waiting", 0),
                sent_last_minute=recent.get(run.pk, 0), measured_at=now,
            )
        )
    return result


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
        .only("id", "name", "next_run_at", "schedule", "channels", "audience__name", "category__name")
        .order_by("next_run_at", "id")[:limit]
    )


