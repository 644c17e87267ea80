"""RRULE text → checked rule parts; every mistake is said as a sentence a marketer understands.

Signalbox reads the RFC 5545 RRULE grammar itself instead of handing the text to dateutil's
``rrulestr``: dateutil answers in Python text ("unknown parameter name"), accepts parts that make no
sense for a campaign (BYEASTER, MINUTELY) and numbers big enough to keep it busy for minutes. What
``rule_parse`` accepts, dateutil can build; ``schedules`` bounds how far it is expanded.

Invariants of a ``RuleParts``: FREQ is HOURLY or slower; INTERVAL is 1..1000; COUNT is 1..10,000
and never given with UNTIL; every BY part holds in-range, non-zero (where RFC 5545 says so) values;
UNTIL is a naive wall-clock time in the schedule's zone (a ``Z`` time is converted).
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dateutil.rrule import DAILY, FR, HOURLY, MO, MONTHLY, SA, SU, TH, TU, WE, WEEKLY, YEARLY
from django.utils.translation import gettext as _

FREQUENCIES = {"YEARLY": YEARLY, "MONTHLY": MONTHLY, "WEEKLY": WEEKLY, "DAILY": DAILY, "HOURLY": HOURLY}
WEEKDAYS = {"MO": MO, "TU": TU, "WE": WE, "TH": TH, "FR": FR, "SA": SA, "SU": SU}
MAX_INTERVAL = 1000  # dateutil walks month by month over a DAILY interval: a huge one never ends
MAX_COUNT = 10_000  # a COUNT rule is walked from its start (it cannot skip ahead), so it must stay short
# name -> (dateutil keyword, lowest, highest, negative values allowed (counted from the end))
NUMBER_LISTS = {
    "BYMONTH": ("bymonth", 1, 12, False),
    "BYMONTHDAY": ("bymonthday", 1, 31, True),
    "BYYEARDAY": ("byyearday", 1, 366, True),
    "BYWEEKNO": ("byweekno", 1, 53, True),
    "BYSETPOS": ("bysetpos", 1, 366, True),
    "BYHOUR": ("byhour", 0, 23, False),
    "BYMINUTE": ("byminute", 0, 59, False),
    "BYSECOND": ("bysecond", 0, 59, False),
}
KNOWN = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", *NUMBER_LISTS}
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # the most each month can have
NUMBER = re.compile(r"[+-]?\d{1,4}")
DAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
UNTIL = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?")


class ScheduleError(ValueError):
    """A schedule that cannot produce a send time; the message is shown to the marketer as it is.

    ``part`` names what is wrong ("rule", "start", "timezone" or "date") so a form can put the
    sentence next to the right field.
    """

    def __init__(self, message: str, *, part: str = "rule"):
        super().__init__(message)
        self.part = part


@dataclass(frozen=True)
class RuleParts:
    """A parsed RRULE, ready for ``dateutil.rrule.rrule(freq, **by, ...)``."""

    freq: int
    interval: int = 1
    count: int | None = None
    until: datetime | None = None  # naive wall-clock time in the schedule's zone
    wkst: int = 0  # Monday, as RFC 5545 says (dateutil would read the calendar module's global)
    by: dict[str, tuple] = field(default_factory=dict)

    def with_defaults_from(self, start: datetime) -> dict[str, tuple]:
        """The BY parts with dateutil's defaults taken from ``start`` written out.

        dateutil fills an absent part from DTSTART (a WEEKLY rule recurs on DTSTART's weekday, a
        DAILY one at its hour, minute and second). Written out, they no longer depend on DTSTART,
        so the expansion may start from a later period boundary and give the same occurrences.
        """
        by = dict(self.by)
        if not any(name in by for name in ("byweekno", "byyearday", "bymonthday", "byweekday")):
            if self.freq == YEARLY:
                by.setdefault("bymonth", (start.month,))
                by["bymonthday"] = (start.day,)
            elif self.freq == MONTHLY:
                by["bymonthday"] = (start.day,)
            elif self.freq == WEEKLY:
                by["byweekday"] = (start.weekday(),)
        if self.freq < HOURLY:
            by.setdefault("byhour", (start.hour,))
        by.setdefault("byminute", (start.minute,))
        by.setdefault("bysecond", (start.second,))
        return by


def rule_parse(text: str, *, zone: zoneinfo.ZoneInfo) -> RuleParts:
    """Read an RRULE (``FREQ=WEEKLY;BYDAY=MO``, with or without ``RRULE:``); raises ScheduleError."""
    text = (text or "").strip()
    if not text:
        raise ScheduleError(_("Enter a recurrence rule."))
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if any(word in text.upper() for word in ("DTSTART", "\n", "\r", "RDATE", "EXDATE")):
        raise ScheduleError(_("Give only the RRULE part; the start and time zone are separate fields."))
    values: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in text.split(";"))):
        name, equals, value = part.partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not equals or not name:
            raise ScheduleError(
                _("“%(part)s” is not a rule part: write NAME=VALUE pairs separated by semicolons, "
                  "e.g. FREQ=WEEKLY;BYDAY=MO.") % {"part": part[:40]}
            )
        if name not in KNOWN:
            raise ScheduleError(_("The rule has a part Signalbox does not understand: %(name)s.") % {"name": name[:40]})
        if name in values:
            raise ScheduleError(_("The rule gives %(name)s more than once.") % {"name": name})
        values[name] = value
    freq = _frequency(values.get("FREQ"))
    by: dict[str, tuple] = {}
    for name, (keyword, low, high, signed) in NUMBER_LISTS.items():
        if name in values:
            by[keyword] = _numbers(name, values[name], low, high, signed)
    if "BYDAY" in values:
        by["byweekday"] = _days(values["BYDAY"], freq)
    if "BYWEEKNO" in values and freq != YEARLY:
        raise ScheduleError(_("BYWEEKNO needs FREQ=YEARLY."))
    if "BYSETPOS" in values and freq == HOURLY:
        raise ScheduleError(_("BYSETPOS needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY."))
    if "COUNT" in values and "UNTIL" in values:
        raise ScheduleError(_("Give COUNT or UNTIL, not both."))
    _check_month_days(by)
    return RuleParts(
        freq=freq,
        interval=_number("INTERVAL", values["INTERVAL"], 1, MAX_INTERVAL) if "INTERVAL" in values else 1,
        count=_number("COUNT", values["COUNT"], 1, MAX_COUNT) if "COUNT" in values else None,
        until=_until(values["UNTIL"], zone) if "UNTIL" in values else None,
        wkst=_weekday_start(values["WKST"]) if "WKST" in values else 0,
        by=by,
    )


def _frequency(value: str | None) -> int:
    if not value:
        raise ScheduleError(_("The rule needs a frequency, e.g. FREQ=WEEKLY."))
    if value in ("MINUTELY", "SECONDLY"):
        raise ScheduleError(_("A campaign can recur at most hourly."))
    if value not in FREQUENCIES:
        raise ScheduleError(_("FREQ must be HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY."))
    return FREQUENCIES[value]


def _number(name: str, value: str, low: int, high: int) -> int:
    if not NUMBER.fullmatch(value) or not low <= int(value) <= high:
        raise ScheduleError(
            _("%(name)s must be a whole number from %(low)d to %(high)d.") % {"name": name, "low": low, "high": high}
        )
    return int(value)


def _numbers(name: str, value: str, low: int, high: int, signed: bool) -> tuple[int, ...]:
    items = [item.strip() for item in value.split(",")]
    ok = all(NUMBER.fullmatch(item) for item in items)
    numbers = [int(item) for item in items] if ok else []
    ok = ok and all(low <= abs(n) <= high and (signed or n >= 0) and (n != 0 or low == 0) for n in numbers)
    if not ok:
        if signed:
            message = _("%(name)s must be whole numbers from %(low)d to %(high)d (or -%(high)d to -%(low)d, "
                        "counting from the end), separated by commas.")
        else:
            message = _("%(name)s must be whole numbers from %(low)d to %(high)d, separated by commas.")
        raise ScheduleError(message % {"name": name, "low": low, "high": high})
    return tuple(sorted(set(numbers)))


def _days(value: str, freq: int) -> tuple:
    days = []
    for item in (piece.strip() for piece in value.split(",")):
        match = DAY.fullmatch(item)
        nth = int(match.group(1)) if match and match.group(1) else None
        if not match or (nth is not None and not 1 <= abs(nth) <= 53):
            raise ScheduleError(
                _("BYDAY must be days such as MO,WE,FR, each optionally with a number such as 1MO (the first "
                  "Monday) or -1FR (the last Friday).")
            )
        if nth is not None and freq not in (MONTHLY, YEARLY):
            raise ScheduleError(_("A number before a day (such as 1MO) needs FREQ=MONTHLY or FREQ=YEARLY."))
        weekday = WEEKDAYS[match.group(2)]
        days.append(weekday(nth) if nth else weekday)
    return tuple(days)


def _weekday_start(value: str) -> int:
    if value not in WEEKDAYS:
        raise ScheduleError(_("WKST must be one of MO, TU, WE, TH, FR, SA, SU."))
    return WEEKDAYS[value].weekday


def _until(value: str, zone: zoneinfo.ZoneInfo) -> datetime:
    """UNTIL as wall-clock time in ``zone``: a ``Z`` time is an instant, anything else is local."""
    match = UNTIL.fullmatch(value)
    try:
        if not match:
            raise ValueError(value)
        numbers = [int(group) for group in match.groups()[:6] if group is not None]
        moment = datetime(*numbers)
        if match.group(7):
            moment = moment.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    except (ValueError, OverflowError) as error:
        raise ScheduleError(
            _("UNTIL must be a date such as 20261231 or a UTC time such as 20261231T170000Z.")
        ) from error
    return moment


def _check_month_days(by: dict[str, tuple]) -> None:
    """Refuse BYMONTH/BYMONTHDAY pairs no calendar has (February 30th, April 31st)."""
    days = by.get("bymonthday")
    if not days:
        return
    months = by.get("bymonth") or range(1, 13)
    if not any(abs(day) <= DAYS_IN_MONTH[month - 1] for month in months for day in days):
        raise ScheduleError(
            _("None of the chosen months has a day %(days)s.") % {"days": ", ".join(str(day) for day in days)}
        )
