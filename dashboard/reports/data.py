"""Reads for reports and exports: which ledger rows are in scope, and the figures made from them.

Every figure is an aggregate computed by the database (``Count`` with ``filter=``), grouped at most
by day, channel, run or campaign, so a report over a million deliveries moves a few hundred rows
into Python. What each figure and rate means is defined once, in ``notifications.ledger.outcomes``
(``Outcomes``), which the analytics page, the home and campaign progress read too: a campaign shows
the same Sent, Delivered, Opened, Clicked and Failed, and the same rates, on every surface.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.ledger.outcomes import Outcomes, delivery_counters, group_q
from notifications.models import Campaign, CampaignRun, Channel, Delivery, DeliveryEvent

from ..analytics.rollups import details_purged_before

__all__ = ["Outcomes"]  # re-exported for the PDF and export code

# Longer than this many days, the volume chart groups by week instead of by day.
DAILY_CHART_MAX_DAYS = 120
RUNS_IN_TABLE = 50
FAILURE_REASONS_SHOWN = 10


def _outcome_counts() -> dict:
    """The aggregate expressions behind ``Outcomes`` (unsubscribes are counted separately)."""
    return delivery_counters(with_unsubscribed=False)


@dataclass(frozen=True)
class ReportFilters:
    """What a report or export covers. JSON round-trips through ``params`` / ``from_params``.

    Dates are whole days in the current time zone, both ends included. ``status`` is a delivery
    status; ``receipt_kind`` narrows receipts exports only.
    """

    date_from: date | None = None
    date_to: date | None = None
    campaign_id: int | None = None
    channel: str = ""
    category_id: int | None = None
    status: str = ""
    receipt_kind: str = ""
    journey_id: int | None = None  # deliveries and receipts of one journey's send steps

    def to_params(self) -> dict:
        params = {
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "campaign_id": self.campaign_id,
            "channel": self.channel,
            "category_id": self.category_id,
            "status": self.status,
            "receipt_kind": self.receipt_kind,
            "journey_id": self.journey_id,
        }
        return {key: value for key, value in params.items() if value not in (None, "")}

    @classmethod
    def from_params(cls, params: dict) -> ReportFilters:
        def day(value) -> date | None:
            return date.fromisoformat(value) if value else None

        def pk(value) -> int | None:
            return int(value) if value not in (None, "") else None

        return cls(
            date_from=day(params.get("date_from")),
            date_to=day(params.get("date_to")),
            campaign_id=pk(params.get("campaign_id")),
            channel=params.get("channel") or "",
            category_id=pk(params.get("category_id")),
            status=params.get("status") or "",
            receipt_kind=params.get("receipt_kind") or "",
            journey_id=pk(params.get("journey_id")),
        )

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        """``[start, end)`` as aware datetimes: midnight of ``date_from`` to the midnight after ``date_to``."""
        tz = timezone.get_current_timezone()
        start = timezone.make_aware(datetime.combine(self.date_from, time.min), tz) if self.date_from else None
        end = (
            timezone.make_aware(datetime.combine(self.date_to + timedelta(days=1), time.min), tz)
            if self.date_to else None
        )
        return start, end


def deliveries_in_scope(*, filters: ReportFilters) -> QuerySet[Delivery]:
    """Ledger rows matching ``filters``: created in the date range (``delivery_created_idx``)."""
    qs = Delivery.objects.to_people()
    start, end = filters.time_range()
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lt=end)
    if filters.campaign_id:
        # ``run IS NOT NULL`` lets the planner use the partial ``delivery_run_status_idx``.
        qs = qs.filter(run__isnull=False, run__campaign_id=filters.campaign_id)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.category_id:
        qs = qs.filter(category_id=filters.category_id)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.journey_id:
        from ..analytics.journeys import journey_deliveries_q

        qs = qs.filter(journey_deliveries_q(journey_id=filters.journey_id))
    return qs


def receipts_in_scope(*, filters: ReportFilters) -> QuerySet[DeliveryEvent]:
    """Receipts that occurred in the date range (``deliveryevent_occurred_idx``) about matching deliveries."""
    qs = DeliveryEvent.objects.all()
    start, end = filters.time_range()
    if start:
        qs = qs.filter(occurred_at__gte=start)
    if end:
        qs = qs.filter(occurred_at__lt=end)
    if filters.receipt_kind:
        qs = qs.filter(kind=filters.receipt_kind)
    if filters.campaign_id:
        qs = qs.filter(delivery__run__isnull=False, delivery__run__campaign_id=filters.campaign_id)
    if filters.channel:
        qs = qs.filter(delivery__channel=filters.channel)
    if filters.category_id:
        qs = qs.filter(delivery__category_id=filters.category_id)
    if filters.status:
        qs = qs.filter(delivery__status=filters.status)
    if filters.journey_id:
        from ..analytics.journeys import journey_deliveries_q

        qs = qs.filter(journey_deliveries_q(journey_id=filters.journey_id, prefix="delivery__"))
    return qs


def _unsubscribes(deliveries: QuerySet[Delivery]) -> QuerySet[DeliveryEvent]:
    return DeliveryEvent.objects.filter(kind=DeliveryEvent.Kind.UNSUBSCRIBED, delivery__in=deliveries.values("id"))


def outcomes(*, deliveries: QuerySet[Delivery]) -> Outcomes:
    """Headline figures for ``deliveries``: two queries."""
    row = deliveries.order_by().aggregate(**_outcome_counts())
    unsubscribed = _unsubscribes(deliveries).values("delivery_id").distinct().count()
    return Outcomes.from_row(row, unsubscribed=unsubscribed)


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    label: str
    outcomes: Outcomes


def outcomes_by_channel(*, deliveries: QuerySet[Delivery]) -> list[ChannelRow]:
    """Per channel, largest first: two queries."""
    rows = deliveries.order_by().values("channel").annotate(**_outcome_counts())
    unsubscribed = dict(
        _unsubscribes(deliveries).order_by().values("delivery__channel")
        .annotate(n=Count("delivery_id", distinct=True)).values_list("delivery__channel", "n")
    )
    labels = dict(Channel.choices)
    result = [
        ChannelRow(
            channel=row["channel"],
            label=str(labels.get(row["channel"], row["channel"])),
            outcomes=Outcomes.from_row(row, unsubscribed=unsubscribed.get(row["channel"], 0)),
        )
        for row in rows
    ]
    return sorted(result, key=lambda r: (-r.outcomes.planned, r.channel))


@dataclass(frozen=True)
class RunRow:
    run: CampaignRun
    outcomes: Outcomes


@dataclass(frozen=True)
class RunTable:
    rows: list[RunRow]
    total: int  # runs in scope; ``rows`` holds at most RUNS_IN_TABLE of them


def outcomes_by_run(
    *, deliveries: QuerySet[Delivery], runs: QuerySet[CampaignRun] | None = None, limit: int = RUNS_IN_TABLE
) -> RunTable:
    """Per campaign run, in start order: three queries (four with ``runs``).

    With ``runs`` (a campaign's), every run is listed, including those that sent nothing (a run
    skipped for lateness). Without, the runs that have deliveries in scope are listed; a trigger
    can make thousands, so only the ``limit`` largest are kept.
    """
    in_runs = deliveries.filter(run__isnull=False)
    counts = {row.pop("run_id"): row for row in in_runs.order_by().values("run_id").annotate(**_outcome_counts())}
    unsubscribed = dict(
        _unsubscribes(in_runs).order_by().values("delivery__run_id")
        .annotate(n=Count("delivery_id", distinct=True)).values_list("delivery__run_id", "n")
    )
    if runs is not None:
        total = runs.count()
        chosen = list(runs.select_related("campaign").order_by("-started_at")[:limit])
    else:
        total = len(counts)
        largest = sorted(counts, key=lambda pk: -counts[pk]["total"])[:limit]
        chosen = list(CampaignRun.objects.filter(pk__in=largest).select_related("campaign"))
    chosen.sort(key=lambda run: (run.started_at, run.pk))
    rows = [
        RunRow(run=run, outcomes=Outcomes.from_row(counts.get(run.pk, {}), unsubscribed=unsubscribed.get(run.pk, 0)))
        for run in chosen
    ]
    return RunTable(rows=rows, total=total)


@dataclass(frozen=True)
class FailureReason:
    reason: str
    count: int


def failure_reasons(*, deliveries: QuerySet[Delivery], limit: int = FAILURE_REASONS_SHOWN) -> list[FailureReason]:
    """The most frequent failure reasons (``status_reason`` is short and machine-readable)."""
    rows = (
        deliveries.filter(group_q("failed")).order_by().values("status_reason")
        .annotate(n=Count("id")).order_by("-n", "status_reason")[:limit]
    )
    return [FailureReason(reason=row["status_reason"] or _("(no reason recorded)"), count=row["n"]) for row in rows]


# The volume chart stacks a partition of the deliveries by current outcome group
# (``notifications.ledger.outcomes.STATUS_GROUPS``): settled without failure, failed or bounced,
# outcome unknown, not sent, waiting. A bar's height is the day's deliveries.
VOLUME_SERIES = ("sent", "failed", "unknown", "suppressed", "waiting")


@dataclass(frozen=True)
class VolumeBucket:
    """Deliveries created in one day (or week) by outcome group."""

    start: date
    sent: int = 0  # sent, delivered, opened or clicked, and not failed since
    failed: int = 0
    unknown: int = 0
    suppressed: int = 0
    waiting: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.failed + self.unknown + self.suppressed + self.waiting


@dataclass(frozen=True)
class Volume:
    buckets: list[VolumeBucket]
    weekly: bool


def _volume_row(outcomes: Outcomes) -> dict[str, int]:
    return {
        "sent": outcomes.status_sent + outcomes.status_delivered + outcomes.status_opened + outcomes.status_clicked,
        "failed": outcomes.failed, "unknown": outcomes.unknown, "suppressed": outcomes.suppressed,
        "waiting": outcomes.waiting,
    }


def volume_over_time(
    *, deliveries: QuerySet[Delivery], first_day: date | None = None, last_day: date | None = None
) -> Volume:
    """Deliveries per day by outcome (one query), zero-filled; by week when the span is long."""
    rows = deliveries.order_by().annotate(day=TruncDate("created_at")).values("day").annotate(**_outcome_counts())
    by_day = {row["day"]: _volume_row(Outcomes.from_row(row)) for row in rows if row["day"] is not None}
    if not by_day and not (first_day and last_day):
        return Volume(buckets=[], weekly=False)
    first = first_day or min(by_day)
    last = last_day or max(by_day)
    weekly = (last - first).days + 1 > DAILY_CHART_MAX_DAYS
    buckets: dict[date, dict[str, int]] = {}
    day = first
    while day <= last:
        key = day - timedelta(days=day.weekday()) if weekly else day
        buckets.setdefault(key, dict.fromkeys(VOLUME_SERIES, 0))
        for name in VOLUME_SERIES:
            buckets[key][name] += by_day.get(day, {}).get(name, 0)
        day += timedelta(days=1)
    return Volume(buckets=[VolumeBucket(start=key, **counts) for key, counts in sorted(buckets.items())], weekly=weekly)


@dataclass(frozen=True)
class ReportContent:
    """Everything a PDF report shows: built by the functions below, rendered by ``pdf``."""

    title: str
    subject: str
    outcomes: Outcomes
    volume: Volume
    channels: list[ChannelRow]
    runs: RunTable
    campaign: Campaign | None = None
    filters: ReportFilters = field(default_factory=ReportFilters)
    failure_reasons: list[FailureReason] = field(default_factory=list)
    # Data retention deleted the deliveries made before this day (they are not in these figures;
    # the Analytics page still counts them from its daily rollups).
    purged_before: date | None = None
    # A campaign's A/B tests (``notifications.campaigns.ab_tests.TestResults``), newest run first.
    ab_tests: list = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.outcomes.planned


def campaign_report_content(*, campaign_id: int) -> ReportContent:
    """A campaign's report over all its runs (about ten queries, independent of its size)."""
    campaign = Campaign.objects.select_related("category", "author", "approved_by").get(pk=campaign_id)
    deliveries = deliveries_in_scope(filters=ReportFilters(campaign_id=campaign.pk))
    return ReportContent(
        title=_("Campaign report"),
        subject=campaign.name,
        campaign=campaign,
        filters=ReportFilters(campaign_id=campaign.pk),
        outcomes=outcomes(deliveries=deliveries),
        volume=volume_over_time(deliveries=deliveries),
        channels=outcomes_by_channel(deliveries=deliveries),
        runs=outcomes_by_run(deliveries=deliveries, runs=CampaignRun.objects.filter(campaign_id=campaign.pk)),
        failure_reasons=failure_reasons(deliveries=deliveries),
        purged_before=details_purged_before(since=timezone.localdate(campaign.created_at)),
        ab_tests=_ab_tests(campaign),
    )


AB_TESTS_SHOWN = 5


def _ab_tests(campaign: Campaign) -> list:
    """The newest tested runs' per-variant results (two queries each, a few runs at most)."""
    from notifications.campaigns.ab_tests import runs_test_results

    tested = CampaignRun.objects.filter(campaign_id=campaign.pk).exclude(test_state="").select_related("winner_chosen_by").order_by("-started_at")
    return runs_test_results(campaign=campaign, runs=tested[:AB_TESTS_SHOWN])


def period_report_content(*, filters: ReportFilters) -> ReportContent:
    """Every delivery created in the period (optionally one channel / category / campaign)."""
    deliveries = deliveries_in_scope(filters=filters)
    if filters.date_from and filters.date_to:
        subject = _("%(start)s to %(end)s") % {"start": filters.date_from.isoformat(), "end": filters.date_to.isoformat()}
    else:
        subject = _("All time")
    return ReportContent(
        title=_("Period report"),
        subject=subject,
        filters=filters,
        outcomes=outcomes(deliveries=deliveries),
        volume=volume_over_time(deliveries=deliveries, first_day=filters.date_from, last_day=filters.date_to),
        channels=outcomes_by_channel(deliveries=deliveries),
        runs=outcomes_by_run(deliveries=deliveries),
        failure_reasons=failure_reasons(deliveries=deliveries),
        purged_before=details_purged_before(since=filters.date_from),
    )


@dataclass(frozen=True)
class CampaignSummary:
    campaign: Campaign
    runs: int
    outcomes: Outcomes


def campaign_summaries(*, filters: ReportFilters) -> Iterator[CampaignSummary]:
    """One row per campaign, newest first: four queries whatever the number of campaigns.

    The campaign and category filters select campaigns; the other filters select the deliveries
    that are counted, and with any of them set a campaign without such deliveries is left out.
    """
    deliveries = deliveries_in_scope(filters=filters).filter(run__isnull=False)
    counts = {
        row.pop("run__campaign_id"): row
        for row in deliveries.order_by().values("run__campaign_id")
        .annotate(runs=Count("run_id", distinct=True), **_outcome_counts())
    }
    unsubscribed = dict(
        _unsubscribes(deliveries).order_by().values("delivery__run__campaign_id")
        .annotate(n=Count("delivery_id", distinct=True)).values_list("delivery__run__campaign_id", "n")
    )
    campaigns = Campaign.objects.select_related("category", "author").order_by("-created_at", "-pk")
    if filters.campaign_id:
        campaigns = campaigns.filter(pk=filters.campaign_id)
    if filters.category_id:
        campaigns = campaigns.filter(category_id=filters.category_id)
    narrowed = any((filters.date_from, filters.date_to, filters.channel, filters.status))
    for campaign in campaigns.iterator(chunk_size=500):
        row = counts.get(campaign.pk)
        if row is None and narrowed:
            continue
        row = row or {}
        yield CampaignSummary(
            campaign=campaign,
            runs=row.get("runs", 0),
            outcomes=Outcomes.from_row(row, unsubscribed=unsubscribed.get(campaign.pk, 0)),
        )
