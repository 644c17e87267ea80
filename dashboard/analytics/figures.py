"""What the analytics count, defined once for the rollups and for the live figures of today.

Every figure is about a *cohort*: the deliveries created in a period, and how far each got by
now. The ``status_*`` counters partition the cohort by current status (the "volume by status"
chart); the ``reached_*`` counters are cumulative funnel stages, each including every later
stage, so the funnel never widens (a click counts as an open even when the pixel never loaded).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from notifications.models import Delivery, DeliveryEvent

S = Delivery.Status

# Current status -> the group it is shown in. Every status is in exactly one group.
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "waiting": (S.PLANNED, S.PAUSED, S.SENDING, S.DEFERRED),
    "suppressed": (S.SUPPRESSED,),
    "sent": (S.SENT,),
    "unknown": (S.UNKNOWN,),
    "delivered": (S.DELIVERED,),
    "opened": (S.OPENED, S.READ),
    "clicked": (S.CLICKED,),
    "failed": (S.FAILED, S.BOUNCED),
}

_clicked = Q(clicked_at__isnull=False) | Q(status=S.CLICKED)
_opened = _clicked | Q(opened_at__isnull=False) | Q(read_at__isnull=False) | Q(status__in=[S.OPENED, S.READ])
_delivered = _opened | Q(delivered_at__isnull=False) | Q(status=S.DELIVERED)
_sent = _delivered | Q(sent_at__isnull=False) | Q(status=S.SENT)
REACHED: dict[str, Q] = {"sent": _sent, "delivered": _delivered, "opened": _opened, "clicked": _clicked}

# Receipts that count as an open in the hour-of-day chart. A machine open (Apple Mail Privacy
# Protection's proxy) is recorded with ``data.machine_open`` and does not count.
OPEN_KINDS = (DeliveryEvent.Kind.OPENED, DeliveryEvent.Kind.READ)

COUNTER_NAMES: tuple[str, ...] = (
    "total",
    *(f"status_{name}" for name in STATUS_GROUPS),
    *(f"reached_{name}" for name in REACHED),
    "unsubscribed",
)


def delivery_counters(*, with_unsubscribed: bool = True) -> dict:
    """Aggregates over ``Delivery`` rows, one per counter, for ``.annotate()``/``.aggregate()``.

    ``unsubscribed`` is an EXISTS per delivery (one probe of ``deliveryevent_delivery_idx``
    each); the live figures count unsubscribes from the receipts instead (cheaper for a recent day).
    """
    counters = {
        "total": Count("id"),
        **{f"status_{name}": Count("id", filter=Q(status__in=statuses)) for name, statuses in STATUS_GROUPS.items()},
        **{f"reached_{name}": Count("id", filter=q) for name, q in REACHED.items()},
    }
    if with_unsubscribed:
        unsubscribed = Exists(
            DeliveryEvent.objects.filter(delivery_id=OuterRef("pk"), kind=DeliveryEvent.Kind.UNSUBSCRIBED)
        )
        counters["unsubscribed"] = Count("id", filter=Q(unsubscribed))
    return counters


@dataclass
class Counters:
    """The counters of one slice (a day, a channel, a campaign, or all of them)."""

    total: int = 0
    status_waiting: int = 0
    status_suppressed: int = 0
    status_sent: int = 0
    status_unknown: int = 0
    status_delivered: int = 0
    status_opened: int = 0
    status_clicked: int = 0
    status_failed: int = 0
    reached_sent: int = 0
    reached_delivered: int = 0
    reached_opened: int = 0
    reached_clicked: int = 0
    unsubscribed: int = 0

    def add(self, row: dict | Counters) -> Counters:
        get = row.get if isinstance(row, dict) else row.__dict__.get
        for name in COUNTER_NAMES:
            setattr(self, name, getattr(self, name) + (get(name) or 0))
        return self

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def sent(self) -> int:
        return self.reached_sent

    @property
    def delivered(self) -> int:
        return self.reached_delivered

    @property
    def opened(self) -> int:
        return self.reached_opened

    @property
    def clicked(self) -> int:
        return self.reached_clicked

    @property
    def failed(self) -> int:
        return self.status_failed

    def rate(self, part: str, of: str) -> float | None:
        whole = getattr(self, of)
        return getattr(self, part) / whole if whole else None


assert tuple(f.name for f in fields(Counters)) == COUNTER_NAMES


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
