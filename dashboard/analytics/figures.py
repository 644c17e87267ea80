"""Time and grid helpers of the analytics, and the figures they count.

What a figure means (outcome groups, funnel stages, rates) is defined once, in
``notifications.ledger.outcomes``, and read from there by the rollups, the live figures of today,
the home, campaign progress, exports and PDF reports; ``Counters`` is that module's ``Outcomes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from notifications.ledger.outcomes import COUNTER_NAMES, REACHED, STATUS_GROUPS, delivery_counters
from notifications.ledger.outcomes import Outcomes as Counters
from notifications.models import DeliveryEvent

__all__ = [
    "COUNTER_NAMES", "OPEN_KINDS", "REACHED", "STATUS_GROUPS", "Counters", "DayRange", "Grid", "day_start",
    "delivery_counters", "local_day_hour", "site_today", "site_tz",
]

# Receipts that count as an open in the hour-of-day chart. A machine open (Apple Mail Privacy
# Protection's proxy) is recorded with ``data.machine_open`` and does not count.
OPEN_KINDS = (DeliveryEvent.Kind.OPENED, DeliveryEvent.Kind.READ)


@dataclass(frozen=True)
class DayRange:
    """Days ``start``..``end`` inclusive, in the site time zone (``settings.TIME_ZONE``)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"DayRange ends ({self.end}) before it starts ({self.start}).")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __iter__(self):
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)

    def previous(self) -> DayRange:
        """The period of the same length just before this one."""
        return DayRange(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def bounds(self) -> tuple[datetime, datetime]:
        return day_start(self.start), day_start(self.end + timedelta(days=1))

    @classmethod
    def last(cls, days: int, *, now: datetime | None = None) -> DayRange:
        """The last ``days`` days, today included."""
        today = site_today(now)
        return cls(today - timedelta(days=days - 1), today)


def site_tz():
    return timezone.get_default_timezone()


def site_today(now: datetime | None = None) -> date:
    return timezone.localdate(now or timezone.now(), site_tz())


def day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in the site time zone (DST-safe)."""
    return datetime.combine(day, time.min, tzinfo=site_tz())


def local_day_hour(moment: datetime) -> tuple[date, int]:
    local = moment.astimezone(site_tz())
    return local.date(), local.hour


@dataclass
class Grid:
    """Counts by weekday (0 = Monday) × hour of day."""

    cells: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in range(7)])

    def add(self, day: date, hour: int, count: int) -> None:
        self.cells[day.weekday()][hour] += count

    @property
    def total(self) -> int:
        return sum(map(sum, self.cells))
