"""When a campaign runs: once, on an RRULE in a time zone, or at a local time per recipient.

Pure functions of the schedule fields (no database), so DST behaviour is tested directly.

Recurrences are expanded in the schedule's **wall-clock time** and only then given the zone, so
"every day at 09:00 America/New_York" stays 09:00 local across the DST change (13:00 UTC in
winter, 14:00 UTC in summer). A wall time that does not exist on a spring-forward day (02:30)
is moved forward by the gap; an ambiguous one (fall-back 01:30) is the first of the two.

Expansion is bounded, so no rule, however it was stored, can pin a CPU (a web request or the
scheduler):

- it starts from the rule's last period boundary before the moment asked about, not from a start
  that may lie years back (a COUNT rule cannot skip ahead: COUNT is capped instead);
- it looks at most ``HORIZON_YEARS`` ahead: a rule with no occurrence by then has none;
- it stops after ``MAX_SKIPPED_OCCURRENCES`` occurrences before that moment, after the calendar
  steps needed to reach the horizon, and after ``EXPANSION_SECONDS``, whichever comes first;
- two occurrences closer than ``MIN_INTERVAL`` (in the rule's wall-clock time) are refused.
Every refusal is a ``ScheduleError`` with a sentence for the marketer.
"""

from __future__ import annotations

import time as clock
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .rrules import RuleParts, ScheduleError, rule_parse

__all__ = [
    "RecurrenceSpec", "RecurrenceWalk", "ScheduleError", "local_send_times", "local_time_window", "localize",
    "occurrences_between", "recurrence_after", "recurrence_check", "recurrence_preview", "schedule_date_check",
]

HORIZON_YEARS = 5
MIN_INTERVAL = timedelta(hours=1)
SPACING_SAMPLE = 50  # occurrences a new schedule is checked over (the minimum interval, the horizon)
MAX_SKIPPED_OCCURRENCES = 12_000  # occurrences passed over on the way to the moment asked about
MAX_CALENDAR_STEPS = 12 * 60  # months (periods) one expansion may cross: a COUNT rule may start ~55 years back
EXPANSION_SECONDS = 0.5
EARLIEST_DATE, LATEST_DATE = date(2000, 1, 1), date(2100, 12, 31)
MAX_START_AGE_YEARS = 10  # a new recurrence may start this far back (it sets the rule's alignment and COUNT)


@dataclass(frozen=True)
class RecurrenceSpec:
    rrule: str
    tz: str
    start: datetime  # aware or naive; read as wall-clock time in ``tz``


def _zone(tz: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ScheduleError(_("Unknown time zone: %(tz)s.") % {"tz": tz[:64]}, part="timezone") from error


def localize(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """A naive wall-clock time in ``zone`` as an aware UTC datetime.

    ``fold=0`` (PEP 495) reads a time in a spring-forward gap with the offset from before the
    change, which moves it forward by the gap (02:30 -> 03:30), and an ambiguous fall-back time
    as its first occurrence.
    """
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def schedule_date_check(value: date | datetime, *, part: str = "date") -> None:
    """Refuse a send date outside 2000-01-01..2100-12-31 (year 1 or 9999 only make work)."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ScheduleError(
            _("Choose a date between %(earliest)s and %(latest)s.")
            % {"earliest": EARLIEST_DATE.isoformat(), "latest": LATEST_DATE.isoformat()},
            part=part,
        )


class _CalendarExhausted(Exception):
    """The expansion crossed the calendar steps it was given without an occurrence."""


class _OutOfTime(Exception):
    """The expansion used up ``EXPANSION_SECONDS``."""


class _BoundedRule(rrule):
    """dateutil's ``rrule`` that stops after a number of calendar steps or at a deadline.

    dateutil looks for the next match without checking UNTIL, COUNT or anything else on a period
    that yields nothing, so a rule that never matches (February 30th) walks on to the year 9999.
    The one thing its iterator does on every month it crosses (every period for YEARLY and
    MONTHLY) is rebuild its masks, which reads ``_byeaster``; counting those reads bounds the walk.
    BYEASTER itself is refused by ``rule_parse``, so the attribute is always None.
    """

    def __init__(self, freq: int, *, steps: int, seconds: float, **kwargs):
        self.calendar_steps, self._step_limit = 0, steps
        self.deadline = clock.monotonic() + seconds
        super().__init__(freq, **kwargs)

    @property
    def _byeaster(self):
        self.calendar_steps += 1
        if self.calendar_steps > self._step_limit:
            raise _CalendarExhausted
        if clock.monotonic() > self.deadline:
            raise _OutOfTime
        return None

    @_byeaster.setter
    def _byeaster(self, value) -> None:
        if value is not None:
            raise ValueError("BYEASTER is not supported")


def _aligned_start(parts: RuleParts, start: datetime, target: datetime) -> datetime:
    """The last boundary of the rule's periods at or before ``target``, or ``start`` if none is later.

    dateutil's periods run from DTSTART's year, month, week (from WKST), day or hour in steps of
    INTERVAL; starting from a later boundary on that grid, with the defaults DTSTART gave written
    out (``RuleParts.with_defaults_from``), gives the same occurrences from there on. A COUNT rule
    counts from its true start, so it never moves.
    """
    if parts.count is not None or target <= start:
        return start
    step = parts.interval
    if parts.freq == YEARLY:
        moved = datetime(start.year + (target.year - start.year) // step * step, 1, 1)
    elif parts.freq == MONTHLY:
        months = ((target.year - start.year) * 12 + target.month - start.month) // step * step
        year, month = divmod(start.month - 1 + months, 12)
        moved = datetime(start.year + year, month + 1, 1)
    elif parts.freq in (WEEKLY, DAILY):
        length = 7 * step if parts.freq == WEEKLY else step
        back = (start.weekday() - parts.wkst) % 7 if parts.freq == WEEKLY else 0
        first = datetime.combine(start.date() - timedelta(days=back), time())
        moved = first + timedelta(days=(target - first).days // length * length)
    else:  # HOURLY
        first = start.replace(minute=0, second=0)
        moved = first + timedelta(hours=(target - first) // timedelta(hours=1) // step * step)
    return moved if moved > start else start


def _calendar_steps(parts: RuleParts, start: datetime, end: datetime) -> int:
    """How many mask rebuilds dateutil makes walking from ``start`` past ``end`` (an upper bound + slack)."""
    if parts.freq == YEARLY:
        return (end.year - start.year) // parts.interval + 3
    months = (end.year - start.year) * 12 + end.month - start.month
    return (months // parts.interval if parts.freq == MONTHLY else months) + 3


class RecurrenceWalk:
    """One bounded pass over a rule's occurrences (UTC, in order) after ``after``.

    Iterating yields occurrences later than ``after`` (or equal, with ``inclusive``) and earlier
    than ``until`` (default and at most: ``HORIZON_YEARS`` after ``after``). It raises
    ScheduleError for a rule that cannot be read, recurs more often than ``MIN_INTERVAL`` or is too
    costly to expand. Afterwards ``stopped_by`` says why it ended: "rule" (COUNT or UNTIL ran
    out), "horizon" (nothing more before ``until``) or "" (the caller stopped first);
    ``calendar_steps`` and ``skipped`` say how much work it did.
    """

    def __init__(self, spec: RecurrenceSpec, *, after: datetime, inclusive: bool = False,
                 until: datetime | None = None):
        horizon = after + timedelta(days=365 * HORIZON_YEARS + HORIZON_YEARS // 4 + 1)
        self.spec, self.after, self.inclusive = spec, after, inclusive
        self.until = min(until, horizon) if until is not None else horizon
        self.stopped_by, self.calendar_steps, self.skipped = "", 0, 0

    def __iter__(self) -> Iterator[datetime]:
        zone = _zone(self.spec.tz)
        parts = rule_parse(self.spec.rrule, zone=zone)
        try:
            start = self.spec.start.astimezone(zone).replace(tzinfo=None) if self.spec.start.tzinfo else self.spec.start
            start = start.replace(microsecond=0)
            # UTC offsets are under a day: two days either side of the window cover every zone.
            first_wall = self.after.astimezone(zone).replace(tzinfo=None) - timedelta(days=2)
            last_wall = self.until.astimezone(zone).replace(tzinfo=None) + timedelta(days=2)
        except (OverflowError, ValueError) as error:
            raise ScheduleError(_("The recurrence start is out of range."), part="start") from error
        dtstart = _aligned_start(parts, start, first_wall)
        steps = _calendar_steps(parts, dtstart, last_wall)
        if steps > MAX_CALENDAR_STEPS:
            raise ScheduleError(
                ngettext("A rule with COUNT must start within the last %(years)d year.",
                         "A rule with COUNT must start within the last %(years)d years.", MAX_START_AGE_YEARS)
                % {"years": MAX_START_AGE_YEARS},
                part="start",
            )
        try:
            rule = _BoundedRule(
                parts.freq, steps=steps, seconds=EXPANSION_SECONDS, dtstart=dtstart, interval=parts.interval,
                wkst=parts.wkst, count=parts.count, until=parts.until, **parts.with_defaults_from(start),
            )
        except ValueError as error:  # e.g. BYHOUR values an HOURLY INTERVAL never reaches
            raise ScheduleError(_("These rule parts together never give a send time.")) from error
        yield from self._occurrences(rule, zone, first_wall, last_wall)

    def _occurrences(self, rule: _BoundedRule, zone, first_wall: datetime, last_wall: datetime) -> Iterator[datetime]:
        previous, last, first = None, self.after, True
        try:
            for wall in rule:
                self.calendar_steps = rule.calendar_steps
                if wall > last_wall:
                    self.stopped_by = "horizon"
                    return
                when = localize(wall, zone) if wall >= first_wall else None
                if when is not None and when >= self.after:
                    # Spacing is the rule's own, in wall-clock time: a DST change cannot break it.
                    if previous is not None and wall - previous < MIN_INTERVAL:
                        raise ScheduleError(
                            _("This rule sends more often than once an hour (%(first)s and %(second)s); a "
                              "campaign can recur at most hourly.")
                            % {"first": previous.isoformat(sep=" "), "second": wall.isoformat(sep=" ")}
                        )
                    previous = wall
                # Walls are in order; a spring-forward gap can map two of them to one UTC time.
                if when is not None and (when > last or (first and self.inclusive and when == self.after)):
                    if when >= self.until:
                        self.stopped_by = "horizon"
                        return
                    first, last = False, when
                    paused = clock.monotonic()
                    yield when
                    rule.deadline += clock.monotonic() - paused  # the caller's time is not the expansion's
                    continue
                self.skipped += 1
                if self.skipped > MAX_SKIPPED_OCCURRENCES or clock.monotonic() > rule.deadline:
                    raise _OutOfTime
            self.stopped_by = "rule"
        except _CalendarExhausted:
            self.calendar_steps = rule.calendar_steps
            self.stopped_by = "horizon"
        except _OutOfTime as error:
            raise ScheduleError(_("This rule is too complex to work out its dates; simplify it.")) from error
        except ScheduleError:
            raise
        except (ValueError, OverflowError) as error:  # dateutil giving up on a combination mid-way
            raise ScheduleError(_("These rule parts together never give a send time.")) from error


def recurrence_after(spec: RecurrenceSpec, after: datetime, *, inclusive: bool = False) -> datetime | None:
    """The first occurrence (UTC) after ``after`` (an aware datetime), or None when the rule has
    ended (COUNT or UNTIL). Raises ScheduleError when it has none in the next ``HORIZON_YEARS``
    years, when the ``SPACING_SAMPLE`` occurrences from there are not ``MIN_INTERVAL`` apart (a
    rule stored before that was checked), or for any other reason the module's docstring lists."""
    walk = RecurrenceWalk(spec, after=after, inclusive=inclusive)
    found = list(islice(walk, SPACING_SAMPLE))
    if not found and walk.stopped_by == "horizon":
        raise _beyond_horizon()
    return found[0] if found else None


def _beyond_horizon() -> ScheduleError:
    return ScheduleError(
        ngettext("This rule has no occurrence in the next %(years)d year.",
                 "This rule has no occurrence in the next %(years)d years.", HORIZON_YEARS)
        % {"years": HORIZON_YEARS}
    )


def recurrence_preview(spec: RecurrenceSpec, *, after: datetime, count: int = 5) -> list[datetime]:
    """The next ``count`` occurrences after ``after`` (UTC), shown while a marketer edits."""
    return list(islice(RecurrenceWalk(spec, after=after, inclusive=True), count))


def recurrence_check(spec: RecurrenceSpec, *, now: datetime) -> list[datetime]:
    """Everything a new or launched recurring schedule must satisfy; returns its next occurrences.

    The start lies between 2000 and 2100 and at most ``MAX_START_AGE_YEARS`` back; the rule reads;
    its next ``SPACING_SAMPLE`` occurrences are at least ``MIN_INTERVAL`` apart; it has one within
    ``HORIZON_YEARS``. Raises ScheduleError whose ``part`` says which field is wrong.
    """
    zone = _zone(spec.tz)
    schedule_date_check(spec.start, part="start")
    start = spec.start if spec.start.tzinfo else localize(spec.start, zone)
    if start < now - timedelta(days=365 * MAX_START_AGE_YEARS + MAX_START_AGE_YEARS // 4):
        raise ScheduleError(
            ngettext("The recurrence cannot start more than %(years)d year ago.",
                     "The recurrence cannot start more than %(years)d years ago.", MAX_START_AGE_YEARS)
            % {"years": MAX_START_AGE_YEARS},
            part="start",
        )
    walk = RecurrenceWalk(spec, after=now, inclusive=True)
    found = list(islice(walk, SPACING_SAMPLE))
    if not found and walk.stopped_by == "rule":
        raise ScheduleError(_("The rule has no future occurrence: its COUNT or UNTIL has run out."))
    if not found:
        raise _beyond_horizon()
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
    """Every occurrence in [start, end), UTC, up to ``HORIZON_YEARS`` after ``start``."""
    return iter(RecurrenceWalk(spec, after=start, inclusive=True, until=end))
