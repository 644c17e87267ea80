"""Reads for the analytics pages and the dashboard home, with pinned query counts.

Figures for a day range come from the rollups for the days they cover and from the ledger for
the days after (normally only today), merged here; see ``rollups``. Every figure is a cohort of
deliveries created in the range (``figures``), except the hour-of-day chart, which counts the
opens that *happened* in the range.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Q, Sum
from django.db.models.functions import TruncDate

from notifications.localized import localized_expression
from notifications.models import Campaign, Category, Delivery, DeliveryEvent

from ..models import DeliveryDailyStat, OpenHourStat
from .figures import (
    COUNTER_NAMES,
    Counters,
    DayRange,
    Grid,
    day_start,
    delivery_counters,
    local_day_hour,
    site_today,
    site_tz,
)
from .rollups import open_events, opens_per_minute, rollups_cover_through

NO_CAMPAIGN = 0  # key of deliveries outside any campaign (``notify()``, triggers) in ``by_campaign``


@dataclass(frozen=True)
class AnalyticsFilters:
    """What the analytics are narrowed to. ``days`` is in the site time zone."""

    days: DayRange
    campaign_id: int | None = None
    channel: str | None = None
    category_id: int | None = None
    journey_id: int | None = None  # the rollups know no journeys: figures come from the ledger

    def rollup_q(self) -> Q:
        q = Q()
        if self.campaign_id:
            q &= Q(campaign_id=self.campaign_id)
        if self.channel:
            q &= Q(channel=self.channel)
        if self.category_id:
            q &= Q(category_id=self.category_id)
        return q

    def delivery_q(self, prefix: str = "") -> Q:
        q = Q()
        if self.campaign_id:
            q &= Q(**{f"{prefix}run__campaign_id": self.campaign_id})
        if self.channel:
            q &= Q(**{f"{prefix}channel": self.channel})
        if self.category_id:
            q &= Q(**{f"{prefix}category_id": self.category_id})
        if self.journey_id:
            from .journeys import journey_deliveries_q

            q &= journey_deliveries_q(journey_id=self.journey_id, prefix=prefix)
        return q


@dataclass
class AnalyticsFigures:
    filters: AnalyticsFilters
    totals: Counters
    by_day: dict[date, Counters]  # every day of the range, in order
    by_channel: dict[str, Counters]
    by_campaign: dict[int, Counters]  # NO_CAMPAIGN for deliveries outside campaigns
    by_run: dict[int, Counters]  # campaign deliveries only
    opens: Grid
    live_from: date | None  # the first day computed from the ledger rather than the rollups


def analytics_figures(
    *, filters: AnalyticsFilters, now: datetime | None = None, with_opens: bool = True
) -> AnalyticsFigures:
    """Every figure of the analytics page for ``filters``.

    Queries: the rollup state, the daily rollups, the hourly rollups, then for the days after the
    rollups (normally only today) a grouped query per day on ``delivery_created_idx``, one for
    their unsubscribes and one for their opens (``_add_live``). Up-to-date rollups and a range
    that ends today: six (four without ``with_opens``); a range that ends before: three.
    """
    days = filters.days
    today = site_today(now)
    # The rollups have no journey column: a journey's figures are read from the ledger (its
    # deliveries by their exact keys, ``journeys.journey_deliveries_q``) for the whole range.
    covered = None if filters.journey_id else rollups_cover_through()
    covered = min(covered, today - timedelta(days=1)) if covered else None
    rollup_end = min(days.end, covered) if covered else None
    live_from = max(days.start, covered + timedelta(days=1)) if covered else days.start
    live_to = min(days.end, today)

    by_day = {day: Counters() for day in days}
    by_channel: dict[str, Counters] = defaultdict(Counters)
    by_campaign: dict[int, Counters] = defaultdict(Counters)
    by_run: dict[int, Counters] = defaultdict(Counters)
    opens = Grid()

    def add(day: date, channel: str, campaign_id: int | None, run_id: int | None, row: dict) -> None:
        by_day[day].add(row)
        by_channel[channel].add(row)
        by_campaign[campaign_id or NO_CAMPAIGN].add(row)
        if run_id:
            by_run[run_id].add(row)

    if rollup_end and rollup_end >= days.start:
        in_rollups = Q(day__gte=days.start, day__lte=rollup_end) & filters.rollup_q()
        rows = (
            DeliveryDailyStat.objects.filter(in_rollups)
            .values("day", "channel", "campaign_id", "run_id")
            .annotate(**{name: Sum(name) for name in COUNTER_NAMES})
            .order_by()
        )
        for row in rows:
            add(row["day"], row["channel"], row["campaign_id"], row["run_id"], row)
        if with_opens:
            hours = OpenHourStat.objects.filter(in_rollups).values("day", "hour").annotate(n=Sum("opens")).order_by()
            for row in hours:
                opens.add(row["day"], row["hour"], row["n"])

    if live_from <= live_to:
        _add_live(add, opens if with_opens else None, filters=filters, first=live_from, last=live_to)

    totals = Counters()
    for counters in by_day.values():
        totals.add(counters)
    return AnalyticsFigures(
        filters=filters,
        totals=totals,
        by_day=by_day,
        by_channel=dict(sorted(by_channel.items(), key=lambda item: -item[1].total)),
        by_campaign=dict(sorted(by_campaign.items(), key=lambda item: -item[1].total)),
        by_run=dict(by_run),
        opens=opens,
        live_from=live_from if live_from <= live_to else None,
    )


# Up to this many days after the rollups are read with one query per day (a constant day, no
# per-row date conversion); more (rollups far behind) with one query that converts every row.
LIVE_DAYS_ONE_BY_ONE = 3


def _add_live(add, opens: Grid | None, *, filters: AnalyticsFilters, first: date, last: date) -> None:
    """Figures of the days ``first``..``last`` straight from the ledger (normally today only).

    Deliveries: grouped counts on ``delivery_created_idx``. Unsubscribes: receipts since ``first``
    on ``deliveryevent_occurred_idx`` (an unsubscribe comes after its delivery was created), which
    is much cheaper than a per-delivery EXISTS. Opens: counted per minute in SQL, then placed in
    the site time zone's weekday and hour here (a minute is exact for every zone offset).
    """
    start, end = day_start(first), day_start(last + timedelta(days=1))
    live = Delivery.objects.to_people().filter(filters.delivery_q(), created_at__gte=start, created_at__lt=end)
    group = ("channel", "run__campaign_id", "run_id")
    counters = delivery_counters(with_unsubscribed=False)
    if (last - first).days < LIVE_DAYS_ONE_BY_ONE:
        day = first
        while day <= last:
            rows = (
                live.filter(created_at__gte=day_start(day), created_at__lt=day_start(day + timedelta(days=1)))
                .values(*group).annotate(**counters).order_by()
            )
            for row in rows:
                add(day, row["channel"], row["run__campaign_id"], row["run_id"], row)
            day += timedelta(days=1)
    else:
        rows = (
            live.annotate(cohort_day=TruncDate("created_at", tzinfo=site_tz()))
            .values("cohort_day", *group).annotate(**counters).order_by()
        )
        for row in rows:
            add(row["cohort_day"], row["channel"], row["run__campaign_id"], row["run_id"], row)

    unsubscribed = (
        DeliveryEvent.objects.filter(
            filters.delivery_q("delivery__"), kind=DeliveryEvent.Kind.UNSUBSCRIBED, occurred_at__gte=start,
            delivery__created_at__gte=start, delivery__created_at__lt=end,
        )
        .values_list("delivery_id", "delivery__created_at", "delivery__channel", "delivery__run__campaign_id", "delivery__run_id")
        .order_by()
    )
    seen = set()
    for delivery_id, created_at, channel, campaign_id, run_id in unsubscribed:
        if delivery_id not in seen:
            seen.add(delivery_id)
            add(local_day_hour(created_at)[0], channel, campaign_id, run_id, {"unsubscribed": 1})

    if opens is not None:
        for moment, n in opens_per_minute(open_events(start, end).filter(filters.delivery_q("delivery__"))):
            opens.add(*local_day_hour(moment), n)


# --- Home: KPIs with the change against the previous period -------------------------------

# Headline figures of ``notifications.ledger.outcomes.Outcomes``, by the same names.
KPI_FIELDS: tuple[str, ...] = ("sent", "delivered", "opened", "clicked", "failed", "unsubscribed")


@dataclass(frozen=True)
class Kpi:
    key: str
    value: int
    previous: int

    @property
    def change(self) -> float | None:
        """Relative change against the previous period; ``None`` when it had nothing."""
        return (self.value - self.previous) / self.previous if self.previous else None


@dataclass(frozen=True)
class KpiPeriod:
    days: int
    current: DayRange
    kpis: list[Kpi]
    totals: Counters  # every counter of the current period


def kpis_compare(*, days: int, now: datetime | None = None) -> KpiPeriod:
    """The last ``days`` days (today included) against the ``days`` before: ``analytics_figures`` once."""
    current = DayRange.last(days, now=now)
    previous = current.previous()
    figures = analytics_figures(
        filters=AnalyticsFilters(days=DayRange(previous.start, current.end)), now=now, with_opens=False
    )
    now_totals, before_totals = Counters(), Counters()
    for day, counters in figures.by_day.items():
        (now_totals if day >= current.start else before_totals).add(counters)
    kpis = [Kpi(key, getattr(now_totals, key), getattr(before_totals, key)) for key in KPI_FIELDS]
    return KpiPeriod(days=days, current=current, kpis=kpis, totals=now_totals)


# --- Filter choices and names --------------------------------------------------------------


def campaign_names(ids) -> dict[int, str]:
    ids = [pk for pk in ids if pk]
    if not ids:
        return {}
    return dict(Campaign.objects.filter(pk__in=ids).values_list("id", "name"))


def journey_choices(*, limit: int = 200) -> list[tuple[int, str]]:
    """Published journeys (live, paused or stopped), by name: one query."""
    from notifications.models import Journey

    return list(Journey.objects.filter(current_version__isnull=False).order_by("name").values_list("id", "name")[:limit])


def filter_choices(*, campaign_id: int | None = None, limit: int = 200) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Campaigns that ran (newest first; the selected one always included) and categories.

    Two queries, three when the selected campaign is older than the ``limit`` newest.
    """
    campaigns = list(
        Campaign.objects.filter(runs__isnull=False).distinct().order_by("-created_at").values_list("id", "name")[:limit]
    )
    if campaign_id and campaign_id not in {pk for pk, _name in campaigns}:
        campaigns += list(Campaign.objects.filter(pk=campaign_id).values_list("id", "name"))
    categories = list(  # named in the reader's language
        Category.objects.listed().annotate(shown=localized_expression("name")).order_by("shown", "pk").values_list("id", "shown")
    )
    return campaigns, categories
