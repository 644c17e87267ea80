"""Issue 9, finding 7: schedules cannot pin a CPU, over HTTP and in the scheduler.

An impossible rule stops at the horizon with a sentence; dates stay between 2000 and 2100 and a
far-past start is not walked from; "at most hourly" holds on the actual occurrences; every
mistake is a sentence, never Python's text; a bad rule stored before this change fails its
campaign with a note instead of hanging the scheduler.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.campaigns.runs import campaigns_launch_due
from notifications.campaigns.schedules import RecurrenceSpec, RecurrenceWalk
from notifications.models import AuditEntry, Campaign, CampaignRun

from .conftest import AB_TEST_NONE, make_recipients, static_audience

pytestmark = pytest.mark.django_db

PREVIEW = reverse("admin:notifications_campaign_schedule_preview")
NEVER = "FREQ=DAILY;BYMONTH=1;BYYEARDAY=366"  # the 366th day of a year is 31 December, never in January
PYTHON_TEXT = ("unknown parameter", "isoformat", "invalid literal", "byxxx", "Traceback", "rrule")


def _form(audience, template, category, **overrides) -> dict:
    start = timezone.now() + timedelta(days=1)
    data = {
        "name": "Bounded", "audience": audience.pk, "template": template.pk, "category": category.pk,
        "channel_1": "email", "channel_2": "", "channel_3": "", "delivery_mode": "all",
        "schedule": "recurring", "rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
        "recurrence_start_0": start.date().isoformat(), "recurrence_start_1": "09:00",
        "max_lateness": "01:00:00", "schedule_timezone": "UTC",
        "runs-TOTAL_FORMS": "0", "runs-INITIAL_FORMS": "0", "runs-MIN_NUM_FORMS": "0", "runs-MAX_NUM_FORMS": "0",
        **AB_TEST_NONE,
    }
    return {**data, **overrides}


@pytest.fixture
def post_campaign(client, staff, template, newsletter):
    """POST the add form as a Marketer; returns (response, form errors by field)."""
    audience = static_audience("Bounded", make_recipients(2))
    client.force_login(staff["marketer"])

    def post(**overrides):
        response = client.post(reverse("admin:notifications_campaign_add"), _form(audience, template, newsletter, **overrides))
        errors = response.context["adminform"].form.errors if response.status_code == 200 else {}
        return response, {field: " ".join(messages) for field, messages in errors.items()}

    return post


def _preview(client, staff, **query) -> str:
    client.force_login(staff["marketer"])
    response = client.get(PREVIEW, {"recurrence_start_0": "2026-12-01", "recurrence_start_1": "09:00", **query})
    assert response.status_code == 200
    return html.unescape(response.content.decode())


# --- 1. An impossible rule ---------------------------------------------------------------------


def test_an_impossible_rule_stops_at_the_horizon_in_the_preview_and_the_form(client, staff, post_campaign):
    assert "This rule has no occurrence in the next 5 years." in _preview(client, staff, rrule=NEVER)
    response, errors = post_campaign(rrule=NEVER)
    assert "This rule has no occurrence in the next 5 years." in errors["rrule"]
    assert not Campaign.objects.exists()


def test_february_thirtieth_is_refused_before_any_expansion(client, staff):
    page = _preview(client, staff, rrule="FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30")
    assert "None of the chosen months has a day 30." in page


def test_an_impossible_hourly_rule_is_expanded_only_to_the_horizon():
    walk = RecurrenceWalk(RecurrenceSpec("FREQ=HOURLY;BYMONTH=2;BYYEARDAY=100", "UTC", timezone.now()),
                          after=timezone.now())
    assert list(walk) == [] and walk.stopped_by == "horizon"
    assert walk.calendar_steps <= 12 * 5 + 6  # months crossed, not years to 9999


# --- 2. Dates in a sane range; a far-past start is not walked from ------------------------------


@pytest.mark.parametrize(("overrides", "field"), [
    ({"recurrence_start_0": "0001-01-01"}, "recurrence_start"),
    ({"recurrence_start_0": "2101-01-01"}, "recurrence_start"),
    ({"schedule": "once", "send_at_0": "2101-01-01", "send_at_1": "09:00"}, "send_at"),
    ({"schedule": "once", "send_at_0": "0001-01-01", "send_at_1": "09:00"}, "send_at"),
    ({"schedule": "local_time", "local_send_date": "0001-01-01", "local_send_time": "09:00"}, "local_send_date"),
])
def test_dates_outside_2000_to_2100_are_form_errors(post_campaign, overrides, field):
    response, errors = post_campaign(**overrides)
    assert response.status_code == 200
    assert "Choose a date between 2000-01-01 and 2100-12-31." in errors[field]
    assert not Campaign.objects.exists()


def test_a_recurrence_start_more_than_ten_years_back_is_a_form_error(post_campaign):
    eleven_years_ago = (timezone.now() - timedelta(days=365 * 11)).date().isoformat()
    response, errors = post_campaign(recurrence_start_0=eleven_years_ago)
    assert "The recurrence cannot start more than 10 years ago." in errors["recurrence_start"]


def test_a_campaign_stored_with_a_year_1_start_shows_its_next_dates_without_walking_from_year_1(
    client, staff, make_campaign
):
    campaign = make_campaign(
        static_audience("Ancient", make_recipients(1)), author=staff["marketer"], schedule="recurring",
        rrule="FREQ=HOURLY", recurrence_start=datetime(1, 1, 1, tzinfo=UTC),
        status="running",  # its page lists the next dates itself (a draft's schedule builder does, live)
    )
    client.force_login(staff["marketer"])
    response = client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk]))
    assert response.status_code == 200
    assert len(response.context["next_occurrences"]) == 5
    walk = RecurrenceWalk(RecurrenceSpec(campaign.rrule, "UTC", campaign.recurrence_start), after=timezone.now())
    next(iter(walk))
    assert walk.skipped <= 49 and walk.calendar_steps <= 4  # two days of hours, not 2,000 years


def test_the_scheduler_moves_a_year_1_campaign_on_by_one_hour(staff, make_campaign):
    due = timezone.now().replace(minute=0, second=0, microsecond=0)
    campaign = make_campaign(
        static_audience("Ancient run", make_recipients(1)), author=staff["marketer"], schedule="recurring",
        rrule="FREQ=HOURLY", recurrence_start=datetime(1, 1, 1, tzinfo=UTC), status="scheduled", next_run_at=due,
    )
    assert len(campaigns_launch_due(now=due)) == 1
    campaign.refresh_from_db()
    assert campaign.status == "running" and campaign.next_run_at == due + timedelta(hours=1)


# --- 3. At most hourly, on the actual occurrences ----------------------------------------------


@pytest.mark.parametrize("rule", [
    "FREQ=HOURLY;BYMINUTE=0,1,2,3,4,5;BYSECOND=0,10,20",
    "FREQ=HOURLY;BYMINUTE=0,30",
    "FREQ=DAILY;BYHOUR=9,10;BYMINUTE=0,30",
    "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0,59",
    "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0,45",
])
def test_rules_that_send_more_than_once_an_hour_are_form_errors(client, staff, post_campaign, rule):
    response, errors = post_campaign(rrule=rule)
    assert "a campaign can recur at most hourly" in errors["rrule"]
    assert not Campaign.objects.exists()
    assert "at most hourly" in _preview(client, staff, rrule=rule)


@pytest.mark.parametrize("rule", ["FREQ=HOURLY", "FREQ=HOURLY;INTERVAL=2;BYMINUTE=15", "FREQ=DAILY;BYHOUR=9,10,11;BYMINUTE=30"])
def test_hourly_or_a_few_hours_a_day_are_fine(post_campaign, rule):
    response, errors = post_campaign(rrule=rule)
    assert response.status_code == 302, errors
    assert Campaign.objects.get().rrule == rule


def test_launch_refuses_a_too_frequent_rule_saved_without_the_form(client, staff, make_campaign):
    campaign = make_campaign(
        static_audience("Chatty", make_recipients(2)), author=staff["marketer"], schedule="recurring",
        rrule="FREQ=HOURLY;BYMINUTE=0,30", recurrence_start=timezone.now(),
    )
    client.force_login(staff["marketer"])
    response = client.post(reverse("admin:notifications_campaign_transition", args=[campaign.pk, "launch"]), follow=True)
    assert "a campaign can recur at most hourly" in html.unescape(response.content.decode())
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


# --- 4. Sentences, not Python text -------------------------------------------------------------


@pytest.mark.parametrize(("query", "sentence"), [
    ({"rrule": "FREQ=DAILY;FOO=1"}, "The rule has a part Signalbox does not understand: FOO."),
    ({"rrule": "FREQ=DAILY;INTERVAL=often"}, "INTERVAL must be a whole number from 1 to 1000."),
    ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "BYDAY must be days such as MO,WE,FR"),
    ({"rrule": "FREQ=DAILY;UNTIL=tomorrow"}, "UNTIL must be a date such as 20261231"),
    ({"rrule": "FREQ=DAILY;BYHOUR=25"}, "BYHOUR must be whole numbers from 0 to 23"),
    ({"rrule": "FREQ=HOURLY;INTERVAL=4;BYHOUR=3", "recurrence_start_1": "00:00"},
     "These rule parts together never give a send time."),
    ({"rrule": "FREQ=DAILY", "recurrence_start_0": "2026-02-30"}, "Enter a valid date."),
    ({"rrule": "FREQ=DAILY", "recurrence_start_1": "25:99"}, "Enter a valid time."),
    ({"rrule": "FREQ=DAILY", "schedule_timezone": "Mars/Olympus_Mons"}, "“Mars/Olympus_Mons” is not a time zone."),
    ({"rrule": "FREQ=DAILY", "recurrence_start_0": "1999-12-31"}, "Choose a date between 2000-01-01 and 2100-12-31."),
])
def test_the_preview_answers_bad_input_with_a_sentence(client, staff, query, sentence):
    page = _preview(client, staff, **query)
    assert sentence in page
    assert not any(text in page for text in PYTHON_TEXT), page


def test_the_form_shows_the_same_sentence_as_the_preview(post_campaign):
    response, errors = post_campaign(rrule="FREQ=DAILY;FOO=1")
    assert errors["rrule"] == "The rule has a part Signalbox does not understand: FOO."


# --- The scheduler never hangs on a rule stored before this change -----------------------------


@pytest.mark.parametrize(("rule", "sentence"), [
    ("FREQ=HOURLY;BYMINUTE=0,15,30,45", "a campaign can recur at most hourly"),
    ("FREQ=DAILY;BYEASTER=0;BYHOUR=9", "does not understand: BYEASTER."),
    (NEVER, "This rule has no occurrence in the next 5 years."),
])
def test_the_scheduler_fails_a_stored_bad_rule_with_a_note_and_sends_nothing(staff, make_campaign, rule, sentence):
    due = timezone.now().replace(second=0, microsecond=0)
    campaign = make_campaign(
        static_audience("Stored", make_recipients(2)), author=staff["marketer"], schedule="recurring", rrule=rule,
        recurrence_start=due - timedelta(days=1), status="scheduled", next_run_at=due,
    )
    assert campaigns_launch_due(now=due) == []
    campaign.refresh_from_db()
    assert campaign.status == "failed" and campaign.next_run_at is None
    assert campaign.status_note.startswith("Stopped, nothing sent:") and sentence in campaign.status_note
    assert not CampaignRun.objects.filter(campaign=campaign).exists()
    assert AuditEntry.objects.filter(action="campaign.schedule_failed", target_id=str(campaign.pk)).exists()
