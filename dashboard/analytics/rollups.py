"""Daily rollups of the delivery ledger, so that the analytics stay fast on millions of rows.

``DeliveryDailyStat`` holds, per day (site time zone), channel, category and campaign run, the
counters of ``notifications.ledger.outcomes.delivery_counters``; ``OpenHourStat`` holds human opens per hour. Readers
use the rollups for days up to ``AnalyticsRollupState.covered_through`` and compute the days
after it (normally just today) live from the ledger's indexes, so the figures are never stale by
more than the last refresh and today is always exact.

Rebuilding a day is a delete and re-insert in one transaction: idempotent, safe to repeat, and
safe with several schedulers (the state row is locked first; on SQLite the write lock is taken
at BEGIN anyway). Nothing in the send pipeline writes here.

Days up to ``AnalyticsRollupState.frozen_through`` are final: data retention (``ops.retention``)
froze them before it deleted their ledger rows, so they are never rebuilt from what is left
(not by a late receipt, a full rebuild or a change of ``TIME_ZONE``).
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, Count, Max, Min, Q
from django.db.models.functions import Cast, Substr, Trunc
from django.utils import timezone

from notifications.models import Delivery, DeliveryEvent

from ..models import AnalyticsRollupState, DeliveryDailyStat, OpenHourStat
from .figures import COUNTER_NAMES, OPEN_KINDS, day_start, delivery_counters, local_day_hour, site_today, site_tz

logger = logging.getLogger(__name__)

STATE_PK = 1
# More receipts than this since the last tick: find the days they touch with one MIN() instead
# of reading every one of them (a backfill, or a scheduler that was down for a long time).
DIRTY_SCAN_LIMIT = 50_000
BATCH_SIZE = 2_000
MAX_DAYS_PER_TICK = 7


def refresh_interval() -> timedelta:
    return timedelta(seconds=getattr(settings, "SIGNALBOX_ANALYTICS_REFRESH_SECONDS", 300))


@dataclass(frozen=True)
class RollupResult:
    days: int
    daily_rows: int
    hour_rows: int
    covered_through: date | None


def rollup_state() -> AnalyticsRollupState:
    """The state row (created on first use). One query."""
    state, _ = AnalyticsRollupState.objects.get_or_create(pk=STATE_PK)
    return state


def rollups_cover_through() -> date | None:
    """The last day the rollups hold, for readers: one query, and never a write."""
    return AnalyticsRollupState.objects.filter(pk=STATE_PK).values_list("covered_through", flat=True).first()


def analytics_rollup_refresh(*, since: date | None, until: date | None = None, now: datetime | None = None) -> RollupResult:
    """Recompute the rollups for the days ``since``..``until`` (site time zone).

    ``until`` defaults to yesterday: today is always computed live. ``since=None`` rebuilds
    everything from the first delivery. The rollups never have a gap: when ``since`` is after
    the day the rollups reach, the refresh starts from there instead; the first refresh of all
    (or after ``TIME_ZONE`` changed) rebuilds from the first delivery.
    """
    now = now or timezone.now()
    until = until or site_today(now) - timedelta(days=1)
    state = rollup_state()
    last_event_id = DeliveryEvent.objects.aggregate(last=Max("id"))["last"] or 0
    rebuild = since is None or state.covered_through is None or state.timezone != _tz_name()
    if rebuild:
        since = _first_day(after_frozen=state.frozen_through) or until
    else:
        since = min(since, state.covered_through + timedelta(days=1))
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    if rebuild:  # rows of days outside the new range are left from deleted deliveries or another zone
        with transaction.atomic():
            for model in (DeliveryDailyStat, OpenHourStat):
                stale = model.objects.exclude(day__gte=since, day__lte=until)
                if state.frozen_through:
                    stale = stale.exclude(day__lte=state.frozen_through)
                stale.delete()
    return _refresh(days, until=until, last_event_id=last_event_id, now=now, reset=rebuild)


def analytics_rollup_tick(
    *, now: datetime | None = None, force: bool = False, max_days: int = MAX_DAYS_PER_TICK
) -> RollupResult | None:
    """The scheduler's call: refresh what changed, at most every ``SIGNALBOX_ANALYTICS_REFRESH_SECONDS``.

    Rebuilds yesterday and the day before (late receipts are most common there), the days after
    the rollups' end, and every older day whose deliveries received a receipt since the last
    tick (found from the receipts' ids, so a provider's late, back-dated receipt counts). At
    most ``max_days`` new days per tick, so that a first build on a big ledger never holds up
    the scheduler's other work for long: while behind, the next tick is due at once (and the
    days not built yet are computed live meanwhile, correct but slower). Only one of several
    schedulers does the work per interval (a compare-and-set on the state row). Returns
    ``None`` when it was not due.
    """
    now = now or timezone.now()
    state = rollup_state()
    if not force and state.refreshed_at and now - state.refreshed_at < refresh_interval():
        return None
    claimed = AnalyticsRollupState.objects.filter(pk=STATE_PK, refreshed_at=state.refreshed_at).update(refreshed_at=now)
    if not claimed:
        return None  # another scheduler took this turn
    yesterday = site_today(now) - timedelta(days=1)
    if state.covered_through is None or state.timezone != _tz_name():
        first = _first_day(after_frozen=state.frozen_through) or yesterday
        until = min(yesterday, first + timedelta(days=max_days - 1))
        result = analytics_rollup_refresh(since=None, until=until, now=now)
    else:
        last_event_id = DeliveryEvent.objects.aggregate(last=Max("id"))["last"] or 0
        until = min(yesterday, state.covered_through + timedelta(days=max_days))
        new_days = {state.covered_through + timedelta(days=n + 1) for n in range((until - state.covered_through).days)}
        recent = {yesterday - timedelta(days=1), yesterday}
        dirty = set(_days_touched(after_event_id=state.last_event_id, upto=last_event_id))
        days = sorted(day for day in new_days | recent | dirty if day <= until)
        result = _refresh(days, until=until, last_event_id=last_event_id, now=now, reset=False)
    if result.covered_through and result.covered_through < yesterday:  # still catching up: due again now
        AnalyticsRollupState.objects.filter(pk=STATE_PK).update(refreshed_at=now - refresh_interval())
    return result


def _refresh(days: list[date], *, until: date, last_event_id: int, now: datetime, reset: bool) -> RollupResult:
    daily_rows = hour_rows = 0
    for day in days:
        with transaction.atomic():
            locked = AnalyticsRollupState.objects.select_for_update().filter(pk=STATE_PK).first()
            if locked and locked.frozen_through and day <= locked.frozen_through:
                continue  # final: its ledger rows may be gone
            daily, hourly = _day_rows(day)
            DeliveryDailyStat.objects.filter(day=day).delete()
            OpenHourStat.objects.filter(day=day).delete()
            DeliveryDailyStat.objects.bulk_create(daily, batch_size=BATCH_SIZE)
            OpenHourStat.objects.bulk_create(hourly, batch_size=BATCH_SIZE)
        daily_rows += len(daily)
        hour_rows += len(hourly)
    with transaction.atomic():
        state = AnalyticsRollupState.objects.select_for_update().get(pk=STATE_PK)
        if reset or state.covered_through is None or until > state.covered_through:
            state.covered_through = until
        state.last_event_id = max(state.last_event_id, last_event_id)
        state.timezone = _tz_name()
        state.refreshed_at = now
        state.save()
    logger.info("Analytics rollups: rebuilt %d day(s), %d daily and %d hourly rows.", len(days), daily_rows, hour_rows)
    return RollupResult(days=len(days), daily_rows=daily_rows, hour_rows=hour_rows, covered_through=state.covered_through)


def _day_rows(day: date) -> tuple[list[DeliveryDailyStat], list[OpenHourStat]]:
    start, end = day_start(day), day_start(day + timedelta(days=1))
    groups = (
        Delivery.objects.to_people().filter(created_at__gte=start, created_at__lt=end)
        .values("channel", "category_id", "run_id", "run__campaign_id")
        .annotate(**delivery_counters())
        .order_by()
    )
    daily = [
        DeliveryDailyStat(
            day=day, channel=g["channel"], category_id=g["category_id"], run_id=g["run_id"],
            campaign_id=g["run__campaign_id"], **{name: g[name] for name in COUNTER_NAMES},
        )
        for g in groups
    ]
    opens = Tally()
    events = open_events(start, end)
    for moment, channel, category_id, campaign_id, n in opens_per_minute(
        events, "delivery__channel", "delivery__category_id", "delivery__run__campaign_id"
    ):
        opens[(local_day_hour(moment)[1], channel, category_id, campaign_id)] += n
    hourly = [
        OpenHourStat(day=day, hour=hour, channel=channel, category_id=category_id, campaign_id=campaign_id, opens=n)
        for (hour, channel, category_id, campaign_id), n in opens.items()
    ]
    return daily, hourly


def open_events(start: datetime, end: datetime):
    """Human opens and reads that happened in ``[start, end)``: the ``(occurred_at, kind)`` index."""
    # ``has_key`` first: a bare ``exclude(data__machine_open=True)`` also drops rows without the
    # key on SQLite (NOT NULL is NULL).
    return DeliveryEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end, kind__in=OPEN_KINDS).exclude(
        Q(data__has_key="machine_open") & Q(data__machine_open=True)
    )


def opens_per_minute(events, *fields: str):
    """``(minute, *fields, count)`` rows of ``events``, counted per UTC minute in SQL.

    Grouping by minute (not hour) keeps the site time zone's hour exact for every offset,
    +05:45 included, and returns at most 1,440 rows a day per group however many opens there
    were. On SQLite, where Django's date functions are Python callbacks run for every row, the
    minute is the prefix of the stored text (``YYYY-MM-DD HH:MM``, always UTC); PostgreSQL
    truncates natively.
    """
    if connection.vendor == "sqlite":
        minute = Substr(Cast("occurred_at", output_field=CharField()), 1, 16)
    else:
        minute = Trunc("occurred_at", "minute", tzinfo=UTC)
    rows = events.annotate(minute=minute).values_list("minute", *fields).annotate(n=Count("id")).order_by()
    for minute_value, *rest in rows:
        if isinstance(minute_value, str):
            minute_value = datetime.fromisoformat(minute_value).replace(tzinfo=UTC)
        yield (minute_value, *rest)


def _days_touched(*, after_event_id: int, upto: int) -> Iterable[date]:
    """Local days of the deliveries whose receipts have ids in ``(after_event_id, upto]``.

    Both the day the delivery was created (its cohort row) and the day of the receipt (its
    hour-of-day row) are touched.
    """
    if upto <= after_event_id:
        return set()
    new = DeliveryEvent.objects.filter(id__gt=after_event_id, id__lte=upto)
    if upto - after_event_id > DIRTY_SCAN_LIMIT:
        first = new.aggregate(created=Min("delivery__created_at"), occurred=Min("occurred_at"))
        earliest = min(filter(None, [first["created"], first["occurred"]]), default=None)
        if earliest is None:
            return set()
        day, last = local_day_hour(earliest)[0], site_today()
        return {day + timedelta(days=n) for n in range((last - day).days + 1)}
    touched = set()
    for created_at, occurred_at in new.values_list("delivery__created_at", "occurred_at").iterator(chunk_size=BATCH_SIZE):
        touched.add(local_day_hour(created_at)[0])
        touched.add(local_day_hour(occurred_at)[0])
    return touched


def _first_day(*, after_frozen: date | None = None) -> date | None:
    """Where a full rebuild starts: the first delivery's day, or the day after the frozen ones
    (whose rows stay; a later day may hold opens of a delivery made on a frozen day)."""
    if after_frozen:
        return after_frozen + timedelta(days=1)
    first = Delivery.objects.to_people().order_by("created_at").values_list("created_at", flat=True).first()
    return local_day_hour(first)[0] if first else None


def analytics_rollup_freeze(*, through: date) -> date | None:
    """Make the rollups of every day up to ``through`` final, before their ledger rows are purged.

    Only covered days can be frozen: returns the last frozen day, which is ``through`` or the
    rollups' end if that is earlier (``None`` when nothing is covered). Never moves back. Locks
    the state row, so a refresh that is rebuilding a day finishes first and no later refresh
    rebuilds a frozen one (``_refresh`` checks under the same lock).
    """
    with transaction.atomic():
        state = AnalyticsRollupState.objects.select_for_update().filter(pk=STATE_PK).first()
        if state is None or state.covered_through is None:
            return None
        frozen = max(min(through, state.covered_through), state.frozen_through or date.min)
        if frozen != state.frozen_through:
            state.frozen_through = frozen
            state.save(update_fields=["frozen_through"])
        return frozen


def details_purged_before(*, since: date | None = None) -> date | None:
    """For pages that list or count ledger rows themselves (a campaign's recipients, exports, PDF
    reports): the first day whose rows are all still there, when data retention may have purged
    rows created from ``since`` on (``None``: from the beginning); otherwise ``None``. One query.
    The analytics figures are unaffected: they read the rollups of those days."""
    frozen = AnalyticsRollupState.objects.filter(pk=STATE_PK).values_list("frozen_through", flat=True).first()
    if frozen is None or (since is not None and since > frozen):
        return None
    return frozen + timedelta(days=1)


def _tz_name() -> str:
    return str(site_tz())


def analytics_tick(*, once: bool = False) -> list[str]:
    """The scheduler's analytics round (registered in ``DashboardConfig.ready()``): the rollups,
    at most every ``SIGNALBOX_ANALYTICS_REFRESH_SECONDS``."""
    rolled = analytics_rollup_tick()
    return ["refreshed the analytics rollups"] if rolled is not None and once else []
