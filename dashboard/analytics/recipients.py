"""Reads for the per-campaign page: its runs, its day range, the recipient table, a timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from notifications.models import Campaign, CampaignRun, Delivery, DeliveryEvent

from .figures import STATUS_GROUPS, DayRange, local_day_hour, site_today


def campaign_runs(*, campaign_id: int) -> list[CampaignRun]:
    return list(CampaignRun.objects.filter(campaign_id=campaign_id).order_by("-started_at"))


def campaign_days(*, campaign: Campaign, runs: list[CampaignRun], now: datetime | None = None) -> DayRange:
    """From the campaign's first run (or its creation) to today."""
    first = min((run.started_at for run in runs), default=campaign.created_at)
    today = site_today(now)
    return DayRange(min(local_day_hour(first)[0], today), today)


@dataclass
class RecipientPage:
    rows: list[Delivery]
    newer: int | None = None  # ``after`` cursor for the previous (newer) page
    older: int | None = None  # ``before`` cursor for the next (older) page
    filters: dict = field(default_factory=dict)


RECIPIENT_FIELDS = (
    "id", "channel", "address", "status", "status_reason", "created_at", "sent_at", "delivered_at",
    "opened_at", "read_at", "clicked_at", "failed_at", "run_id", "recipient__id", "recipient__username",
    "recipient__email",
)


def campaign_recipients(
    *,
    run_ids: list[int],
    status: str | None = None,
    channel: str | None = None,
    search: str = "",
    before: int | None = None,
    after: int | None = None,
    limit: int = 25,
) -> RecipientPage:
    """One page of a campaign's deliveries, newest first, keyset-paginated on the id: one query.

    ``status`` is a group of ``figures.STATUS_GROUPS``; ``search`` matches the address, the
    username or the email. ``before``/``after`` are the cursors of the page links.
    """
    if not run_ids:
        return RecipientPage(rows=[])
    qs = Delivery.objects.filter(run_id__in=run_ids)
    if status in STATUS_GROUPS:
        qs = qs.filter(status__in=STATUS_GROUPS[status])
    if channel:
        qs = qs.filter(channel=channel)
    if search := search.strip():
        qs = qs.filter(
            Q(address__icontains=search) | Q(recipient__username__icontains=search) | Q(recipient__email__icontains=search)
        )
    qs = qs.select_related("recipient").only(*RECIPIENT_FIELDS)
    # Keyset pages walk ``delivery_run_recent_idx`` (run, id) in id order on both databases.
    newest_first, oldest_first = "-id", "id"
    if after is not None:
        rows = list(qs.filter(id__gt=after).order_by(oldest_first)[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit][::-1]
        newer = rows[0].pk if has_more and rows else None
        older = rows[-1].pk if rows else None
    else:
        if before is not None:
            qs = qs.filter(id__lt=before)
        rows = list(qs.order_by(newest_first)[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
        newer = rows[0].pk if before is not None and rows else None
        older = rows[-1].pk if has_more else None
    return RecipientPage(rows=rows, newer=newer, older=older)


def delivery_timeline(*, delivery_id: int) -> list[DeliveryEvent]:
    """A delivery's receipts in the order they happened (``deliveryevent_delivery_idx``): one query."""
    return list(
        DeliveryEvent.objects.filter(delivery_id=delivery_id)
        .only("id", "kind", "source", "occurred_at", "data")
        .order_by("occurred_at", "id")
    )


