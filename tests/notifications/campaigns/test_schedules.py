"""Recurrence expansion without a database: the same dates as dateutil, bounded, DST-correct.

``RecurrenceWalk`` starts from the rule's last period boundary before the moment asked about
instead of from the recurrence start; the property test below holds it to plain dateutil walking
from the true start, for rules that always have an occurrence (so the reference ends).
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications.campaigns import schedules
from notifications.campaigns.schedules import (
    HORIZON_YEARS, RecurrenceSpec, RecurrenceWalk, ScheduleError, recurrence_after, recurrence_check,
    recurrence_preview,
)

NOW = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
ZONES = ["UTC", "America/New_York", "Asia/Shanghai", "Asia/Kolkata", "Australia/Lord_Howe", "Europe/London"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def _reference(rule: str, tz: str, start: datetime, after: datetime, count: int) -> list[datetime]:
    """Plain dateutil from the true start, read the way RecurrenceWalk reads walls (in order,
    a UTC time later than the last one), up to the horizon."""
    zone = zoneinfo.ZoneInfo(tz)
    wall_start = start.astimezone(zone).replace(tzinfo=None)
    horizon = after + timedelta(days=365 * HORIZON_YEARS + 2)
    found, last = [], after
    for wall in rrulestr(rule, dtstart=wall_start).xafter(after.astimezone(zone).replace(tzinfo=None) - timedelta(days=2)):
        when = schedules.localize(wall, zone)
        if when >= horizon or len(found) == count:
            break
        if when > last:
            found.append(when)
            last = when
    return found


@st.composite
def rules(draw) -> str:
    """Rules that always have occurrences and recur at most hourly (so dateutil's walk ends)."""
    freq = draw(st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 3))}"]
    if draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(DAYS))}")
    family = draw(st.sampled_from(["none", "days", "monthdays", "nth"] if freq in ("MONTHLY", "YEARLY")
                                  else ["none", "days", "monthdays"]))
    # Without a day part a MONTHLY/YEARLY rule recurs on the start's day, which BYMONTH could rule out.
    if draw(st.booleans()) and (family != "none" or freq not in ("MONTHLY", "YEARLY")):
        parts.append("BYMONTH=" + ",".join(map(str, draw(st.sets(st.integers(1, 12), min_size=1, max_size=3)))))
    if family == "days":
        parts.append("BYDAY=" + ",".join(draw(st.sets(st.sampled_from(DAYS), min_size=1, max_size=3))))
    elif family == "monthdays":
        days = draw(st.sets(st.sampled_from([*range(1, 29), -1]), min_size=1, max_size=3))
        parts.append("BYMONTHDAY=" + ",".join(map(str, days)))
    elif family == "nth":
        parts.append("BYDAY=" + ",".join(f"{draw(st.sampled_from([1, 2, -1]))}{day}"
                                         for day in draw(st.sets(st.sampled_from(DAYS), min_size=1, max_size=2))))
    if freq != "HOURLY" and draw(st.booleans()):
        parts.append("BYHOUR=" + ",".join(map(str, draw(st.sets(st.integers(0, 23), min_size=1, max_size=3)))))
    if draw(st.booleans()):
        parts.append(f"BYMINUTE={draw(st.integers(0, 59))}")
    if freq != "HOURLY" and draw(st.booleans()):
        parts.append(f"BYSETPOS={draw(st.sampled_from([1, -1]))}")
    return ";".join(parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=rules(),
    tz=st.sampled_from(ZONES),
    back=st.integers(min_value=-30 * 24 * 3600, max_value=400 * 24 * 3600),
    after=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
)
def test_starting_from_a_later_period_gives_the_same_dates_as_walking_from_the_start(rule, tz, back, after):
    after = after.replace(tzinfo=UTC)
    start = after - timedelta(seconds=back)
    spec = RecurrenceSpec(rule, tz, start)
    try:
        expected = _reference(rule, tz, start, after, 8)
    except ValueError:  # e.g. BYHOUR values an INTERVAL never reaches: refused in a sentence
        with pytest.raises(ScheduleError):
            list(islice(RecurrenceWalk(spec, after=after), 8))
        return
    walk = RecurrenceWalk(spec, after=after)
    assert list(islice(walk, 8)) == expected


def test_a_far_past_start_is_not_walked_from():
    spec = RecurrenceSpec("FREQ=HOURLY", "UTC", datetime(1, 1, 1, tzinfo=UTC))
    walk = RecurrenceWalk(spec, after=NOW)
    assert next(iter(walk)) == NOW + timedelta(hours=1)
    # It started two days back on the rule's grid, not 2,025 years back.
    assert walk.skipped <= 49 and walk.calendar_steps <= 4


def test_the_calendar_step_counter_sees_every_month_dateutil_crosses():
    """The bound on impossible rules rests on dateutil reading ``_byeaster`` once a month; if a
    dateutil upgrade stops doing that, this fails at once instead of a preview spinning."""
    walk = RecurrenceWalk(RecurrenceSpec("FREQ=DAILY;BYMONTHDAY=1;BYHOUR=9", "UTC", NOW), after=NOW)
    assert len(list(islice(walk, 4))) == 4
    assert walk.calendar_steps >= 4


@pytest.mark.parametrize("rule", [
    "FREQ=DAILY;BYMONTH=1;BYYEARDAY=366",  # the 366th day is 31 December
    "FREQ=HOURLY;BYMONTH=2;BYYEARDAY=100",  # the 100th day is in April
    "FREQ=YEARLY;BYMONTH=6;BYWEEKNO=1",  # week 1 is in early January
    "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29",  # from 2025 every 4th year is never a leap year
])
def test_a_rule_that_never_matches_is_walked_only_to_the_horizon(rule):
    spec = RecurrenceSpec(rule, "UTC", datetime(2025, 3, 1, tzinfo=UTC))
    walk = RecurrenceWalk(spec, after=NOW)
    assert list(walk) == []
    assert walk.stopped_by == "horizon"
    assert walk.calendar_steps <= 12 * HORIZON_YEARS + 6
    with pytest.raises(ScheduleError, match="This rule has no occurrence in the next 5 years."):
        recurrence_check(spec, now=NOW)
    with pytest.raises(ScheduleError, match="no occurrence in the next 5 years"):
        recurrence_after(spec, NOW)


def test_a_rule_that_has_ended_is_none_not_an_error():
    spec = RecurrenceSpec("FREQ=DAILY;COUNT=3;BYHOUR=9", "UTC", datetime(2026, 11, 1, tzinfo=UTC))
    assert recurrence_after(spec, NOW) is None
    with pytest.raises(ScheduleError, match="COUNT or UNTIL has run out"):
        recurrence_check(spec, now=NOW)


def test_a_count_rule_is_walked_from_its_start_but_only_from_a_recent_one():
    recent = RecurrenceSpec("FREQ=DAILY;COUNT=400;BYHOUR=9", "UTC", datetime(2026, 1, 1, tzinfo=UTC))
    assert recurrence_after(recent, NOW) == datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    ancient = RecurrenceSpec("FREQ=DAILY;COUNT=5", "UTC", datetime(1, 1, 1, tzinfo=UTC))
    with pytest.raises(ScheduleError, match="A rule with COUNT must start within the last 10 years."):
        recurrence_after(ancient, NOW)


def test_occurrences_closer_than_an_hour_are_refused_wherever_they_are():
    # 09:00 and 09:59 every day: 59 minutes apart.
    spec = RecurrenceSpec("FREQ=DAILY;BYHOUR=9;BYMINUTE=0,59", "UTC", NOW)
    with pytest.raises(ScheduleError, match="at most hourly") as refused:
        recurrence_preview(spec, after=NOW)
    assert "2026-12-03 09:00:00 and 2026-12-03 09:59:00" in str(refused.value)


def test_more_occurrences_to_pass_over_than_the_cap_is_a_sentence(monkeypatch):
    monkeypatch.setattr(schedules, "MAX_SKIPPED_OCCURRENCES", 10)
    spec = RecurrenceSpec("FREQ=HOURLY;COUNT=500", "UTC", NOW - timedelta(days=3))
    with pytest.raises(ScheduleError, match="too complex to work out its dates"):
        recurrence_after(spec, NOW)


def test_an_expansion_past_its_time_budget_stops_with_a_sentence(monkeypatch):
    monkeypatch.setattr(schedules, "EXPANSION_SECONDS", -1)  # the deadline has passed before it starts
    spec = RecurrenceSpec("FREQ=DAILY;BYMONTH=1;BYYEARDAY=366", "UTC", NOW)
    with pytest.raises(ScheduleError, match="too complex to work out its dates"):
        recurrence_after(spec, NOW)


def test_nine_oclock_new_york_stays_nine_oclock_across_the_dst_change():
    spec = RecurrenceSpec("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "America/New_York", datetime(2026, 3, 1, tzinfo=UTC))
    found = recurrence_preview(spec, after=datetime(2026, 3, 6, 12, 0, tzinfo=UTC), count=4)
    assert [when.hour for when in found] == [14, 14, 13, 13]  # 6-7 March EST, 8-9 March EDT


def test_a_wall_time_in_the_spring_forward_gap_moves_forward_once():
    spec = RecurrenceSpec("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "America/New_York", datetime(2026, 3, 1, tzinfo=UTC))
    found = recurrence_preview(spec, after=datetime(2026, 3, 7, 12, 0, tzinfo=UTC), count=3)
    assert found == [
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # 02:30 does not exist on 8 March: 03:30 EDT
        datetime(2026, 3, 9, 6, 30, tzinfo=UTC),
        datetime(2026, 3, 10, 6, 30, tzinfo=UTC),
    ]


def test_until_in_utc_is_read_in_the_schedules_zone():
    spec = RecurrenceSpec("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;UNTIL=20261205T010000Z", "Asia/Shanghai", NOW)
    # 01:00 UTC on 5 December is 09:00 in Shanghai: that day is the last one.
    assert recurrence_preview(spec, after=NOW, count=10)[-1] == datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(("rule", "sentence"), [
    ("", "Enter a recurrence rule."),
    ("DTSTART:20260101T000000\nRRULE:FREQ=DAILY", "Give only the RRULE part"),
    ("nonsense", "“nonsense” is not a rule part"),
    ("FREQ=DAILY;FOO=1", "The rule has a part Signalbox does not understand: FOO."),
    ("FREQ=DAILY;BYEASTER=0", "The rule has a part Signalbox does not understand: BYEASTER."),
    ("FREQ=DAILY;FREQ=WEEKLY", "The rule gives FREQ more than once."),
    ("BYDAY=MO", "The rule needs a frequency, e.g. FREQ=WEEKLY."),
    ("FREQ=SOMETIMES", "FREQ must be HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY."),
    ("FREQ=MINUTELY", "A campaign can recur at most hourly."),
    ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number from 1 to 1000."),
    ("FREQ=DAILY;INTERVAL=99999999999", "INTERVAL must be a whole number from 1 to 1000."),
    ("FREQ=DAILY;COUNT=1000000", "COUNT must be a whole number from 1 to 10000."),
    ("FREQ=DAILY;BYHOUR=24", "BYHOUR must be whole numbers from 0 to 23, separated by commas."),
    ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY must be whole numbers from 1 to 31 (or -31 to -1"),
    ("FREQ=WEEKLY;BYDAY=XX", "BYDAY must be days such as MO,WE,FR"),
    ("FREQ=WEEKLY;BYDAY=1MO", "A number before a day (such as 1MO) needs FREQ=MONTHLY or FREQ=YEARLY."),
    ("FREQ=WEEKLY;WKST=XX", "WKST must be one of MO, TU, WE, TH, FR, SA, SU."),
    ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL must be a date such as 20261231"),
    ("FREQ=DAILY;UNTIL=20261399", "UNTIL must be a date such as 20261231"),
    ("FREQ=DAILY;COUNT=3;UNTIL=20301231", "Give COUNT or UNTIL, not both."),
    ("FREQ=DAILY;BYWEEKNO=3", "BYWEEKNO needs FREQ=YEARLY."),
    ("FREQ=HOURLY;BYSETPOS=2", "BYSETPOS needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY."),
    ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "None of the chosen months has a day 30."),
    ("FREQ=YEARLY;BYMONTH=4,6;BYMONTHDAY=31", "None of the chosen months has a day 31."),
    ("FREQ=HOURLY;INTERVAL=4;BYHOUR=3", "These rule parts together never give a send time."),
])
def test_every_rule_mistake_is_a_sentence(rule, sentence):
    spec = RecurrenceSpec(rule, "UTC", datetime(2026, 12, 1, tzinfo=UTC))
    with pytest.raises(ScheduleError) as refused:
        recurrence_check(spec, now=NOW)
    assert sentence in str(refused.value)
    assert refused.value.part == "rule"


def test_lower_case_and_an_rrule_prefix_are_accepted():
    spec = RecurrenceSpec("RRULE:freq=weekly;byday=mo,fr;byhour=9;byminute=0", "UTC", NOW)
    assert recurrence_preview(spec, after=NOW, count=2) == [
        datetime(2026, 12, 4, 9, 0, tzinfo=UTC), datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    ]
