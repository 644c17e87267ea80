"""Issue 12: the human schedule builder. Daily / weekly / monthly at a time in a zone become the
RRULE the campaign stores and open again in the builder; the live preview lists the next send
times in the schedule's zone and the viewer's; any text is a sentence, never an exception."""

from __future__ import annotations

import html
from datetime import UTC, datetime, time

import pytest
from django.http import QueryDict
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications.campaigns.schedule_builder import (
    Builder, ScheduleBuilderWidget, ScheduleRuleField, rule_build, rule_describe, schedule_preview,
)
from notifications.campaigns.schedules import RecurrenceSpec, recurrence_preview
from notifications.models import Campaign

from .test_schedule_limits import post_campaign  # noqa: F401  (fixture)

PREVIEW = reverse("admin:notifications_campaign_schedule_preview")
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(("builder", "rule"), [
    (Builder(mode="daily", at=time(7, 5)), "FREQ=DAILY;BYHOUR=7;BYMINUTE=5"),
    (Builder(mode="weekly", days=("TH", "MO"), at=time(9, 30)), "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=9;BYMINUTE=30"),
    (Builder(mode="monthly", monthday=15, at=time(18, 0)), "FREQ=MONTHLY;BYMONTHDAY=15;BYHOUR=18;BYMINUTE=0"),
    (Builder(mode="monthly", monthday=-1, at=time(23, 59)), "FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=23;BYMINUTE=59"),
])
def test_builder_and_rrule_round_trip(builder, rule):
    assert rule_build(builder) == rule
    described = rule_describe(rule)
    assert described.mode == builder.mode and described.at == builder.at
    assert rule_build(described) == rule


@pytest.mark.parametrize("rule", [
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=9;BYMINUTE=0", "FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9;BYMINUTE=0",
    "FREQ=DAILY;COUNT=3;BYHOUR=9;BYMINUTE=0", "FREQ=DAILY;BYHOUR=9,17;BYMINUTE=0", "FREQ=YEARLY", "nonsense",
])
def test_rules_the_builder_cannot_say_open_in_advanced(rule):
    assert rule_describe(rule) is None
    context = ScheduleBuilderWidget().get_context("rrule", rule, {"id": "id_rrule"})
    assert context["builder"]["mode"] == "advanced" and context["builder"]["text"] == rule


def test_a_stored_rule_the_builder_can_say_opens_in_the_builder():
    context = ScheduleBuilderWidget().get_context("rrule", "FREQ=WEEKLY;BYHOUR=9;BYMINUTE=30;BYDAY=TH,MO", {"id": "x"})
    builder = context["builder"]
    assert builder["mode"] == "weekly" and builder["time"] == "09:30"
    assert [code for code, _label, checked in builder["days"] if checked] == ["MO", "TH"]


@pytest.mark.parametrize(("zone", "rule", "walls", "utc_hours"), [
    # New York springs forward on 8 March 2026: 09:30 local stays 09:30, UTC moves 14:30 -> 13:30.
    ("America/New_York", "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=9;BYMINUTE=30",
     ["2026-03-02 09:30", "2026-03-05 09:30", "2026-03-09 09:30", "2026-03-12 09:30"], [14, 14, 13, 13]),
    # Shanghai has no DST: always 01:30 UTC.
    ("Asia/Shanghai", "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=9;BYMINUTE=30",
     ["2026-03-02 09:30", "2026-03-05 09:30", "2026-03-09 09:30", "2026-03-12 09:30"], [1, 1, 1, 1]),
    ("America/New_York", "FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=8;BYMINUTE=0",
     ["2026-03-31 08:00", "2026-04-30 08:00", "2026-05-31 08:00", "2026-06-30 08:00"], [12, 12, 12, 12]),
])
def test_builder_rules_keep_the_wall_clock_across_dst(zone, rule, walls, utc_hours):
    found = recurrence_preview(RecurrenceSpec(rule, zone, NOW), after=NOW, count=4)
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    assert [when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") for when in found] == walls
    assert [when.hour for when in found] == utc_hours


def _query(**values) -> QueryDict:
    query = QueryDict(mutable=True)
    for key, value in values.items():
        query.setlist(key, value if isinstance(value, list) else [value])
    return query


def test_the_preview_lists_times_in_the_schedule_zone_and_the_viewers():
    query = _query(schedule="recurring", rrule_mode="weekly", rrule_days=["MO", "TH"], rrule_time="09:30",
                   schedule_timezone="Asia/Shanghai")
    preview = schedule_preview(query, start=NOW, now=NOW, viewer_zone="Europe/Berlin")
    assert preview.error == "" and preview.rule == "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=9;BYMINUTE=30"
    utc, local, viewer = preview.occurrences[0]
    assert local.strftime("%a %H:%M") == "Mon 09:30" and viewer.strftime("%a %H:%M") == "Mon 02:30"


@pytest.mark.django_db
def test_the_preview_endpoint_answers_builder_inputs(client, staff):
    client.force_login(staff["marketer"])
    response = client.get(PREVIEW, {
        "schedule": "recurring", "rrule_mode": "weekly", "rrule_days": ["MO", "TH"], "rrule_time": "09:30",
        "schedule_timezone": "US/Pacific", "recurrence_start_0": "2026-12-01", "recurrence_start_1": "09:00",
        "viewer_tz": "Asia/Shanghai",
    })
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and page.count("<li>") == 5
    assert "America/Los_Angeles" in page and "09:30 (PST)" in page and "your time (Asia/Shanghai)" in page


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "sentence"), [
    ({"rrule_mode": "weekly", "rrule_time": "09:30"}, "Choose at least one day of the week."),
    ({"rrule_mode": "daily", "rrule_time": "9h"}, "Enter the time of day as hours and minutes"),
    ({"rrule_mode": "monthly", "rrule_time": "09:00", "rrule_monthday": "40"}, "Choose a day of the month"),
    ({"rrule_mode": "advanced", "rrule": "FREQ"}, "“FREQ” is not a rule part"),
    ({"rrule_mode": "daily", "rrule_time": "09:00", "schedule_timezone": "Factory"}, "“Factory” is not a time zone."),
    ({"rrule_mode": "daily", "rrule_time": "09:00", "recurrence_start_0": "2026-13-01"}, "Enter a valid date."),
])
def test_the_preview_endpoint_answers_mistakes_with_a_sentence(client, staff, query, sentence):
    client.force_login(staff["marketer"])
    response = client.get(PREVIEW, {"schedule": "recurring", **query})
    assert response.status_code == 200
    assert sentence in html.unescape(response.content.decode())


@pytest.mark.django_db
def test_saving_a_weekly_builder_schedule_stores_its_rrule(post_campaign):  # noqa: F811
    response, errors = post_campaign(
        rrule="", rrule_mode="weekly", rrule_days=["MO", "TH"], rrule_time="09:30", schedule_timezone="Asia/Shanghai",
    )
    assert response.status_code == 302, errors
    campaign = Campaign.objects.get(name="Bounded")
    assert campaign.rrule == "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=9;BYMINUTE=30"
    assert campaign.schedule_timezone == "Asia/Shanghai"


@pytest.mark.django_db
def test_a_builder_mistake_is_a_form_error_on_save(post_campaign):  # noqa: F811
    response, errors = post_campaign(rrule_mode="weekly", rrule_time="09:30")
    assert response.status_code == 200 and errors["rrule"] == "Choose at least one day of the week."


@pytest.mark.django_db
def test_an_alias_zone_is_saved_as_its_canonical_zone(post_campaign):  # noqa: F811
    response, errors = post_campaign(schedule_timezone="Asia/Calcutta")
    assert response.status_code == 302, errors
    assert Campaign.objects.get(name="Bounded").schedule_timezone == "Asia/Kolkata"


TEXT = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(["FREQ=", "DAILY", "WEEKLY", "BYDAY=", "MO", "1MO", "BYMONTHDAY=", "-1", "31", "UNTIL=",
                              "20261231T000000Z", "COUNT=", "9999", "INTERVAL=", "0", ";", ",", "=", "RRULE:", " "]),
             max_size=20).map("".join),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT, mode=st.sampled_from(["advanced", "daily", "weekly", "monthly", "other"]), clock=st.text(max_size=8))
def test_any_text_is_a_sentence_never_an_exception(text, mode, clock):
    query = _query(schedule="recurring", rrule=text, rrule_mode=mode, rrule_time=clock, rrule_monthday=text[:3],
                   rrule_days=[text[:2]], schedule_timezone=text[:20] or "UTC")
    preview = schedule_preview(query, start=NOW, now=NOW, viewer_zone=text)
    if preview.error:
        assert "unpack" not in preview.error and "Traceback" not in preview.error
    else:
        # No error: a rule and the send times it gives, in order, none before now, each shown
        # in the schedule's zone at the same instant.
        assert preview.rule
        times = [utc for utc, _local, _viewer in preview.occurrences]
        assert times and times == sorted(times) and times[0] >= NOW
        assert all(local == utc for utc, local, _viewer in preview.occurrences)


def test_the_field_cleans_the_posted_builder():
    field = ScheduleRuleField()
    widget = ScheduleBuilderWidget()
    value = widget.value_from_datadict(_query(rrule_mode="daily", rrule_time="06:45", rrule="ignored"), {}, "rrule")
    assert field.clean(value) == "FREQ=DAILY;BYHOUR=6;BYMINUTE=45"
    # Not a recurring schedule: the stored text is kept as it was.
    value = widget.value_from_datadict(_query(schedule="once", rrule_mode="daily", rrule_time="06:45", rrule="X"), {}, "rrule")
    assert field.clean(value) == "X"


@pytest.mark.django_db
def test_editing_a_campaign_opens_its_rule_in_the_builder_and_its_alias_zone_as_the_zone(client, staff, make_campaign):
    from .conftest import make_recipients, static_audience  # noqa: PLC0415

    campaign = make_campaign(
        static_audience("Weekly", make_recipients(1)), author=staff["marketer"], schedule="recurring",
        rrule="FREQ=WEEKLY;BYDAY=TH,MO;BYHOUR=9;BYMINUTE=30", schedule_timezone="US/Pacific",
        recurrence_start=datetime(2026, 12, 1, 9, tzinfo=UTC),
    )
    client.force_login(staff["marketer"])
    page = client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()
    assert '<option value="weekly" selected>' in page and 'value="09:30"' in page
    checked = [day for day in ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
               if f'value="{day}" data-day="{day}"' in page
               and page.split(f'data-day="{day}"')[1].split(">")[0].rstrip().endswith("checked")]
    assert checked == ["MO", "TH"]
    assert '<option value="America/Los_Angeles" selected>' in page and "Factory" not in page
