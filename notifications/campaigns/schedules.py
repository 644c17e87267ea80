"""When a campaign runs: once, on an RRULE in a time zone, or at a local time per recipient.

Pure functions of the schedule fields (no database), so DST behaviour is tested directly.

Recurrences are expanded in the schedule's **wall-clock time** and only then given the zone, so
"every day at 09:00 America/New_York" stays 09:00 local across the DST change (13:00 UTC in
winter, 14:00 UTC in summer). A wall time that does not exist on a spring-forward day (02:30)
is moved forward by the gap; an ambiguous one (fall-back 01:30) is the first of the two.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from dateutil.rrule import rrulestr
from django.utils.translation import gettext as _

MAX_LOOKAHEAD_OCCURRENCES = 5000


class ScheduleError(ValueError):
    """A schedule that cannot produce a send time; the message is shown to the marketer."""


@dataclass(frozen=True)
class RecurrenceSpec:
    rrule: str
    tz: str
    start: datetime  # aware or naive; read as wall-clock time in ``tz``


def _zone(tz: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ScheduleError(_("Unknown time zone: %(tz)s.") % {"tz": tz}) from error


def localize(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """A naive wall-clock time in ``zone`` as an aware UTC datetime.

    ``fold=0`` (PEP 495) reads a time in a spring-forward gap with the offset from before the
    change, which moves it forward by the gap (02:30 -> 03:30), and an ambiguous fall-back time
    as its first occurrence.
    """
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _rule(spec: RecurrenceSpec):
    text = spec.rrule.strip()
    if not text:
        raise ScheduleError(_("Enter a recurrence rule."))
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if any(part in text.upper() for part in ("DTSTART", "\n", "RDATE", "EXDATE")):
        raise ScheduleError(_("Give only the RRULE part; the start and time zone are separate fields."))
    zone = _zone(spec.tz)
    start = spec.start.astimezone(zone).replace(tzinfo=None) if spec.start.tzinfo else spec.start
    try:
        rule = rrulestr(text, dtstart=start.replace(microsecond=0))
    except (ValueError, TypeError) as error:
        raise ScheduleError(_("Not a valid recurrence rule: %(error)s") % {"error": error}) from error
    freq = getattr(rule, "_freq", None)
    if freq is not None and freq > 4:  # MINUTELY (5) and SECONDLY (6): nobody wants that campaign
        raise ScheduleError(_("A campaign can recur at most hourly."))
    return rule, zone


def recurrence_after(spec: RecurrenceSpec, after: datetime, *, inclusive: bool = False) -> datetime | None:
    """The first occurrence (UTC) after ``after`` (an aware datetime), or None when the rule ended."""
    rule, zone = _rule(spec)
    # Walk in wall-clock time from a little before ``after`` (UTC offsets are under a day).
    cursor = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    for _count in range(MAX_LOOKAHEAD_OCCURRENCES):
        wall = rule.after(cursor, inc=False)
        if wall is None:
            return None
        when = localize(wall, zone)
        if when > after or (inclusive and when == after):
            return when
        cursor = wall
    return None


def recurrence_preview(spec: RecurrenceSpec, *, after: datetime, count: int = 5) -> list[datetime]:
    """The next ``count`` occurrences after ``after`` (UTC), shown while a marketer edits."""
    found: list[datetime] = []
    cursor, inclusive = after, True
    while len(found) < count:
        nxt = recurrence_after(spec, cursor, inclusive=inclusive)
        if nxt is None:
            break
        found.append(nxt)
        cursor, inclusive = nxt, False
    return found


def local_send_times(*, day: date, at: time, tz: str) -> datetime:
    """``at`` o'clock on ``day`` in the recipient's zone ``tz``, as UTC."""
    return localize(datetime.combine(day, at), _zone(tz))


def local_time_window(*, day: date, at: time) -> tuple[datetime, datetime]:
    """The first and last moment (UTC) that ``at`` on ``day`` happens somewhere on Earth.

    A local-time campaign starts its run at the first (UTC+14) and holds each recipient's
    delivery until their own moment; the last is UTC-12.
    """
    wall = datetime.combine(day, at)
    return (wall - timedelta(hours=14)).replace(tzinfo=UTC), (wall + timedelta(hours=12)).replace(tzinfo=UTC)


def occurrences_between(spec: RecurrenceSpec, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every occurrence in [start, end), UTC; for tests and the dashboard's calendar."""
    cursor, inclusive = start, True
    while True:
        nxt = recurrence_after(spec, cursor, inclusive=inclusive)
        if nxt is None or nxt >= end:
            return
        yield nxt
        cursor, inclusive = nxt, False
