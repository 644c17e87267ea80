"""Audience, date and campaign entries: who enters, once, under the re-entry policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from notifications.journeys.entries import AUDIENCE_SCAN_EVERY, scheduled_entries_scan
from notifications.journeys.services import journey_publish
from notifications.models import (
    Audience, AudienceMember, Campaign, CampaignRun, Delivery, Journey, JourneyEnrollment, MessageTemplate,
)
from notifications.signals import campaign_finished
from tests.factories import OrderFactory

from .conftest import T0, make_people

pytestmark = pytest.mark.django_db


def _enrolled(journey) -> list[int]:
    return sorted(JourneyEnrollment.objects.filter(journey=journey).values_list("user_id", flat=True))


@pytest.fixture
def static_audience(db):
    return Audience.objects.create(name="VIPs", kind=Audience.Kind.STATIC)


def test_audience_entry_enters_members_once_and_newcomers_on_a_later_scan(make_journey, static_audience,
                                                                           django_assert_max_num_queries):
    people = make_people(30)
    AudienceMember.objects.bulk_create([AudienceMember(audience=static_audience, user_id=u) for u in people[:20]])
    journey = make_journey(entry={"kind": "audience", "audience": static_audience.pk})

    # A bounded number of queries for 20 people: set queries, not one per person.
    with django_assert_max_num_queries(20):
        assert scheduled_entries_scan(now=T0).entered == 20
    assert _enrolled(journey) == people[:20]

    # Ten more start matching; a scan inside the interval does nothing, the next one enters only them.
    AudienceMember.objects.bulk_create([AudienceMember(audience=static_audience, user_id=u) for u in people[20:]])
    assert scheduled_entries_scan(now=T0 + timedelta(minutes=1)).journeys == 0
    later = T0 + AUDIENCE_SCAN_EVERY
    assert scheduled_entries_scan(now=later).entered == 10
    # The tick twice at the same moment, and again later: nobody enters twice (once ever).
    assert scheduled_entries_scan(now=later).entered == 0
    assert scheduled_entries_scan(now=later + AUDIENCE_SCAN_EVERY * 3).entered == 0
    assert _enrolled(journey) == people


def test_audience_entry_once_per_n_days_lets_people_back_after_the_period(make_journey, static_audience):
    people = make_people(3)
    AudienceMember.objects.bulk_create([AudienceMember(audience=static_audience, user_id=u) for u in people])
    journey = make_journey(entry={"kind": "audience", "audience": static_audience.pk},
                           reentry=Journey.Reentry.PER_PERIOD, reentry_days=7)
    assert scheduled_entries_scan(now=T0).entered == 3
    assert scheduled_entries_scan(now=T0 + timedelta(days=3)).entered == 0
    assert scheduled_entries_scan(now=T0 + timedelta(days=8)).entered == 3
    assert JourneyEnrollment.objects.filter(journey=journey).count() == 6


def test_audience_entry_refuses_every_time(make_journey, static_audience):
    journey = make_journey(publish=False, entry={"kind": "audience", "audience": static_audience.pk},
                           reentry=Journey.Reentry.ONCE)
    journey.reentry = Journey.Reentry.ALWAYS
    with pytest.raises(ValidationError, match="every scan"):
        journey_publish(journey=journey, actor=None)


def test_date_entry_days_after_date_joined_enters_each_person_once(make_journey):
    User = get_user_model()
    people = make_people(4, prefix="d")
    # Joined 3 days before T0 (two of them), 2 days before (one), long ago (one).
    User.objects.filter(pk__in=people[:2]).update(date_joined=T0 - timedelta(days=3, hours=1))
    User.objects.filter(pk=people[2]).update(date_joined=T0 - timedelta(days=2))
    User.objects.filter(pk=people[3]).update(date_joined=T0 - timedelta(days=300))
    journey = make_journey(entry={"kind": "date", "model": "user", "field": "date_joined", "offset_days": 3})

    assert scheduled_entries_scan(now=T0).entered == 2  # first scan: the last day's occurrences
    assert scheduled_entries_scan(now=T0).entered == 0  # the tick twice: nothing new
    # Reset the watermark (a restored backup, a lost write): the entry keys still enter nobody twice.
    Journey.objects.filter(pk=journey.pk).update(entries_scanned_at=None)
    assert scheduled_entries_scan(now=T0).entered == 0
    assert scheduled_entries_scan(now=T0 + timedelta(days=1, hours=1)).entered == 1
    assert _enrolled(journey) == sorted(people[:3])
    keys = set(JourneyEnrollment.objects.filter(journey=journey).values_list("entry_key", flat=True))
    assert all(key.startswith("date:user:") and ":date_joined:" in key for key in keys)


def test_date_entry_on_an_order_every_time_enters_once_per_order(make_journey):
    first = OrderFactory(created_at=T0 - timedelta(hours=30))
    second = OrderFactory(customer=first.customer, created_at=T0 - timedelta(hours=26))
    OrderFactory(created_at=T0 - timedelta(hours=2))  # not a day old yet
    journey = make_journey(entry={"kind": "date", "model": "demo_shop.order", "field": "created_at",
                                  "offset_days": 1, "recipient_path": "customer"},
                           reentry=Journey.Reentry.ALWAYS)
    assert scheduled_entries_scan(now=T0).entered == 2
    assert scheduled_entries_scan(now=T0 + timedelta(minutes=5)).entered == 0
    rows = JourneyEnrollment.objects.filter(journey=journey)
    assert set(rows.values_list("user_id", flat=True)) == {first.customer.user_id}
    assert {r.context["date"]["pk"] for r in rows} == {first.pk, second.pk}


def test_date_entry_validation_names_the_problem(make_journey):
    journey = make_journey(publish=False, entry={"kind": "code"})
    journey.entry = {"kind": "date", "model": "user", "field": "username"}
    with pytest.raises(ValidationError, match="not a date"):
        journey_publish(journey=journey, actor=None)


@pytest.fixture
def finished_run(marketing, templates, static_audience):
    campaign = Campaign.objects.create(name="Spring", audience=static_audience,
                                       template=MessageTemplate.objects.get(key="j-welcome"), category=marketing)
    run = CampaignRun.objects.create(campaign=campaign, occurrence=T0, status="completed")
    people = make_people(5, prefix="c")
    statuses = ["sent", "delivered", "opened", "suppressed", "failed"]
    Delivery.objects.bulk_create([
        Delivery(idempotency_key=f"run:{run.pk}:{u}:email", recipient_id=u, channel="email", address="x@example.com",
                 run=run, status=status, category=marketing)
        for u, status in zip(people, statuses, strict=True)
    ])
    return campaign, run, people


def test_campaign_entry_enters_whom_a_completed_run_reached_once(make_journey, finished_run, immediate_tasks,
                                                                 django_capture_on_commit_callbacks):
    campaign, run, people = finished_run
    journey = make_journey(entry={"kind": "campaign", "campaign": campaign.pk})

    def finish(status="completed"):
        with django_capture_on_commit_callbacks(execute=True):
            transaction.on_commit(lambda: campaign_finished.send(sender=CampaignRun, run_id=run.pk,
                                                                 campaign_id=campaign.pk, status=status))

    finish("cancelled")
    assert _enrolled(journey) == []
    finish()
    finish()  # a repeated signal enters nobody twice
    assert _enrolled(journey) == sorted(people[:3])  # not the suppressed or failed ones
    assert set(JourneyEnrollment.objects.filter(journey=journey).values_list("entry_key", flat=True)) == {
        f"campaign_run:{run.pk}"}


def test_the_schedulers_journeys_round_scans_entries_then_advances_them(make_journey, static_audience):
    from notifications.journeys import journeys_tick_lines

    people = make_people(5, prefix="s")
    AudienceMember.objects.bulk_create([AudienceMember(audience=static_audience, user_id=u) for u in people])
    journey = make_journey(entry={"kind": "audience", "audience": static_audience.pk})
    lines = journeys_tick_lines()
    assert lines[0] == "journeys: 5 entered from audiences and dates"
    assert Delivery.objects.filter(recipient_id__in=people, idempotency_key__contains=":welcome:").count() == 5
    assert journeys_tick_lines() == []  # the round again: nobody new, nothing due
    assert JourneyEnrollment.objects.filter(journey=journey).count() == 5


# --- Audience entries checked on the saves the audience's fields name -----------------------------

def test_a_person_who_starts_matching_enters_on_the_save_not_at_the_next_scan(
    make_journey, immediate_tasks, django_capture_on_commit_callbacks
):
    from tests.factories import CustomerFactory

    audience = Audience.objects.create(name="VIP Adas", kind=Audience.Kind.RULES, rules={"all": [
        {"field": "user.first_name", "op": "eq", "value": "Ada"}, {"field": "shop.vip", "op": "is", "value": True}]})
    journey = make_journey(entry={"kind": "audience", "audience": audience.pk})
    scheduled_entries_scan(now=T0)  # the watermark is fresh: the next scan is ten minutes away
    with django_capture_on_commit_callbacks(execute=True):
        customer = CustomerFactory(vip=False, user__first_name="Ada")  # Ada, but not a VIP: no match
    with django_capture_on_commit_callbacks(execute=True):
        customer.user.save()
    assert _enrolled(journey) == []
    with django_capture_on_commit_callbacks(execute=True):
        customer.vip = True
        customer.save()  # now she matches: she enters after this commit
    assert _enrolled(journey) == [customer.user_id]
    with django_capture_on_commit_callbacks(execute=True):
        customer.save()  # once ever: a later save enters nobody again
    assert JourneyEnrollment.objects.filter(journey=journey).count() == 1
    assert scheduled_entries_scan(now=T0 + AUDIENCE_SCAN_EVERY + timedelta(minutes=1)).entered == 0


def test_a_sign_in_saves_last_login_only_and_checks_nobody(
    make_journey, immediate_tasks, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import update_last_login

    User = get_user_model()
    audience = Audience.objects.create(name="Adas", kind=Audience.Kind.RULES, rules={"all": [
        {"field": "user.first_name", "op": "eq", "value": "Ada"}]})
    ada = User.objects.create(username="ada", first_name="Ada")  # matched before the journey went live
    journey = make_journey(entry={"kind": "audience", "audience": audience.pk})
    scheduled_entries_scan(now=T0)  # the watermark is fresh: the next scan is ten minutes away
    JourneyEnrollment.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        update_last_login(None, ada)  # what every sign-in saves: cannot change who is an Ada
    assert callbacks == [] and _enrolled(journey) == []
    with django_capture_on_commit_callbacks(execute=True):
        ada.save(update_fields=["first_name", "last_login"])  # a field the audience reads: checked
    assert _enrolled(journey) == [ada.pk]


def test_an_audience_watches_the_union_of_its_fields_columns_or_any_save(db):
    from django.db.models import Q

    from notifications.audiences.registry import audience_fields, register_audience_field
    from notifications.journeys.entry import audience_watch

    def rules(*keys):
        return {"all": [{"field": key, "op": "eq", "value": "x"} for key in keys]}

    assert audience_watch(rules("user.first_name", "user.email")) == {
        "auth.user": ("self", frozenset({"first_name", "email"}))}
    register_audience_field("test.any_save", label="Any save", ops={"eq": "is"}, value_type="text",
                            to_q=lambda op, value: Q(), saved_with={"user": "self"})
    try:  # a field that names no columns: every save of the user matters, whatever the others say
        assert audience_watch(rules("user.first_name", "test.any_save")) == {"auth.user": ("self", frozenset())}
    finally:
        audience_fields.unregister("test.any_save")


def test_changing_the_audience_rules_rebinds_the_journey(make_journey, client):
    from django.urls import reverse

    from notifications.journeys.entry import _audience_bindings
    from notifications.models import TriggerState
    from tests.factories import staff_in

    audience = Audience.objects.create(name="Adas", kind=Audience.Kind.RULES, rules={"all": [
        {"field": "user.date_joined", "op": "within_days", "value": 30}]})
    make_journey(entry={"kind": "audience", "audience": audience.pk})
    before = TriggerState.objects.values_list("version", flat=True).first()
    client.force_login(staff_in(None, "root"))
    response = client.post(reverse("admin:notifications_audience_change", args=[audience.pk]), {
        "name": "Adas", "kind": "rules", "description": "",
        "rules": '{"all": [{"field": "user.first_name", "op": "eq", "value": "Ada"}]}'})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert TriggerState.objects.values_list("version", flat=True).first() != before
    assert [b.model for b in _audience_bindings([(1, audience.pk)])] == ["auth.user"]


def test_an_audience_of_fields_no_save_can_change_waits_for_the_scan(
    make_journey, immediate_tasks, django_capture_on_commit_callbacks
):
    User = get_user_model()
    audience = Audience.objects.create(name="Recent", kind=Audience.Kind.RULES, rules={"all": [
        {"field": "user.date_joined", "op": "within_days", "value": 30}]})
    journey = make_journey(entry={"kind": "audience", "audience": audience.pk})
    from notifications.journeys.entry import _audience_bindings

    assert _audience_bindings([(journey.pk, audience.pk)]) == []  # "joined within 30 days": time, not a save
    with django_capture_on_commit_callbacks(execute=True):
        User.objects.create(username="newbie", email="n@example.com")
    assert _enrolled(journey) == []
    assert scheduled_entries_scan().entered == 1


# --- Date entries in bulk, and yearly dates --------------------------------------------------------

def test_the_date_scan_enters_everyone_due_in_a_fixed_number_of_queries(make_journey, django_assert_num_queries):
    User = get_user_model()
    journey = make_journey(entry={"kind": "date", "model": "user", "field": "date_joined", "offset_days": 3})
    scheduled_entries_scan(now=T0 - timedelta(days=1))  # the watermark, a day back

    def due(n, prefix):
        people = make_people(n, prefix=prefix)
        User.objects.filter(pk__in=people).update(date_joined=T0 - timedelta(days=3, hours=1))
        return people

    due(3, "few")
    Journey.objects.filter(pk=journey.pk).update(entries_scanned_at=T0 - timedelta(days=1))
    # journeys, watermark, rows, journey refresh, savepoint, people allowed, existing, insert, release
    with django_assert_num_queries(9):
        assert scheduled_entries_scan(now=T0).entered == 3
    due(60, "many")  # (SQLite inserts ~90 rows a statement; one row used to cost ~5 queries)
    Journey.objects.filter(pk=journey.pk).update(entries_scanned_at=T0 - timedelta(days=1))
    with django_assert_num_queries(9):
        assert scheduled_entries_scan(now=T0).entered == 60  # the 3 from before are not entered again
    assert JourneyEnrollment.objects.filter(journey=journey).count() == 63


def test_a_birthday_enters_three_days_before_each_year_once(make_journey):
    from notifications.journeys.entries import scheduled_entry_problems

    # Customers' "created_at" stands in for a birthday: any date field of a registered model.
    from tests.factories import CustomerFactory

    born = CustomerFactory()
    other = CustomerFactory()
    from demo_shop.models import Customer

    Customer.objects.filter(pk=born.pk).update(created_at=T0.replace(year=1990) + timedelta(days=3))
    Customer.objects.filter(pk=other.pk).update(created_at=T0.replace(year=1990) + timedelta(days=40))
    entry = {"kind": "date", "model": "demo_shop.customer", "field": "created_at", "offset_days": -3,
             "yearly": True, "recipient_path": "user"}
    assert "yearly date enters people each year" in scheduled_entry_problems(entry, reentry="once")[0]
    journey = make_journey(entry=entry, reentry=Journey.Reentry.ALWAYS)

    assert scheduled_entries_scan(now=T0 + timedelta(hours=1)).entered == 1  # three days before her birthday
    assert scheduled_entries_scan(now=T0 + timedelta(hours=2)).entered == 0  # the tick again: once a year
    Journey.objects.filter(pk=journey.pk).update(entries_scanned_at=None)
    assert scheduled_entries_scan(now=T0 + timedelta(hours=3)).entered == 0  # a lost watermark: still once
    assert scheduled_entries_scan(now=T0 + timedelta(days=20)).entered == 0
    next_year = T0.replace(year=2027) + timedelta(hours=1)
    Journey.objects.filter(pk=journey.pk).update(entries_scanned_at=next_year - timedelta(minutes=5))
    assert scheduled_entries_scan(now=next_year).entered == 1  # and again the next year
    keys = sorted(JourneyEnrollment.objects.filter(journey=journey).values_list("entry_key", flat=True))
    assert [k.rsplit(":", 1)[1] for k in keys] == ["year2026", "year2027"]
    assert set(JourneyEnrollment.objects.values_list("user_id", flat=True)) == {born.user_id}
    # Each year's enrollment names the row and the field its date came from.
    assert {tuple(sorted(c["date"].items())) for c in JourneyEnrollment.objects.values_list("context", flat=True)} == {
        (("field", "created_at"), ("model", "demo_shop.customer"), ("pk", born.pk))}


@pytest.mark.parametrize("scan_day, entered, year", [
    ((2027, 2, 28), 1, "year2027"),  # no 29 February in 2027: the 28th stands in for it
    ((2028, 2, 28), 0, None),  # a leap year has its own 29th: not the 28th
    ((2028, 2, 29), 1, "year2028"),
])
def test_a_29_february_anniversary_falls_on_the_28th_in_other_years(make_journey, scan_day, entered, year):
    from datetime import datetime
    from datetime import timezone as dt_timezone

    from demo_shop.models import Customer
    from tests.factories import CustomerFactory

    leapling = CustomerFactory()
    Customer.objects.filter(pk=leapling.pk).update(created_at=datetime(2000, 2, 29, 12, tzinfo=dt_timezone.utc))
    journey = make_journey(entry={"kind": "date", "model": "demo_shop.customer", "field": "created_at",
                                  "offset_days": 0, "yearly": True, "recipient_path": "user"},
                           reentry=Journey.Reentry.ALWAYS)
    now = datetime(*scan_day, 9, tzinfo=dt_timezone.utc)
    Journey.objects.filter(pk=journey.pk).update(entries_scanned_at=now - timedelta(hours=1))
    assert scheduled_entries_scan(now=now).entered == entered
    keys = list(JourneyEnrollment.objects.filter(journey=journey).values_list("entry_key", flat=True))
    assert [k.rsplit(":", 1)[1] for k in keys] == ([year] if year else [])


def test_a_scan_after_more_than_a_year_names_the_latest_anniversary(make_journey):
    from datetime import datetime
    from datetime import timezone as dt_timezone

    from demo_shop.models import Customer
    from tests.factories import CustomerFactory

    born = CustomerFactory()
    Customer.objects.filter(pk=born.pk).update(created_at=datetime(1990, 6, 1, 12, tzinfo=dt_timezone.utc))
    journey = make_journey(entry={"kind": "date", "model": "demo_shop.customer", "field": "created_at",
                                  "offset_days": 0, "yearly": True, "recipient_path": "user"},
                           reentry=Journey.Reentry.ALWAYS)
    now = datetime(2027, 6, 1, 9, tzinfo=dt_timezone.utc)  # the window holds 1 June 2026 and 1 June 2027
    Journey.objects.filter(pk=journey.pk).update(entries_scanned_at=now - timedelta(days=400))
    assert scheduled_entries_scan(now=now).entered == 1
    assert JourneyEnrollment.objects.get(journey=journey).entry_key.endswith(":year2027")
