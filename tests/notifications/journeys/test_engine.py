"""The tick: each person gets each step exactly once, whatever order or how often ticks run."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from notifications.journeys.engine import journeys_tick
from notifications.journeys.services import journey_enter
from notifications.models import Delivery, JourneyEnrollment, JourneyStepRun

from .conftest import T0, make_people

pytestmark = pytest.mark.django_db


def _keys_per_person():
    return Counter(
        (recipient, key.split(":")[2]) for recipient, key in
        Delivery.objects.filter(idempotency_key__startswith="journey:").values_list("recipient_id", "idempotency_key")
    )


def test_five_thousand_people_get_each_step_once_with_duplicated_and_reordered_ticks(make_journey):
    journey = make_journey()
    people = make_people(5000)
    assert journey_enter(journey=journey, user_ids=people, now=T0).entered == 5000
    opened = set(people[::3])

    # Ticks duplicated and out of order: a late tick (now + 3 days) runs before the on-time ones.
    journeys_tick(now=T0)
    journeys_tick(now=T0)
    assert Delivery.objects.filter(idempotency_key__startswith="journey:").count() == 5000
    Delivery.objects.filter(recipient_id__in=opened, idempotency_key__contains=":welcome:").update(
        status="opened", opened_at=T0 + timedelta(hours=3)
    )
    late = journeys_tick(now=T0 + timedelta(days=3))
    journeys_tick(now=T0 + timedelta(days=1))
    journeys_tick(now=T0 + timedelta(days=3))
    journeys_tick(now=T0 + timedelta(days=2, minutes=1))
    assert late.enrollments == 5000

    counts = _keys_per_person()
    assert all(n == 1 for n in counts.values())
    steps = Counter(step for _person, step in counts)
    assert steps == {"welcome": 5000, "tip": len(opened), "reminder": 5000 - len(opened)}
    tip = set(Delivery.objects.filter(idempotency_key__contains=":tip:").values_list("recipient_id", flat=True))
    assert tip == opened
    runs = Counter(JourneyStepRun.objects.values_list("step_id", flat=True))
    assert runs == {"welcome": 5000, "pause": 5000, "opened?": 5000, "tip": len(opened), "reminder": 5000 - len(opened)}
    assert JourneyEnrollment.objects.filter(state="completed").count() == 5000


def test_a_tick_before_the_wait_is_over_does_nothing(make_journey):
    journey = make_journey()
    people = make_people(10)
    journey_enter(journey=journey, user_ids=people, now=T0)
    journeys_tick(now=T0)
    assert journeys_tick(now=T0 + timedelta(days=1, hours=23)).enrollments == 0
    assert set(JourneyEnrollment.objects.values_list("current_step", flat=True)) == {"opened?"}
    assert JourneyStepRun.objects.filter(step_id="pause", status="waiting").count() == 10
    journeys_tick(now=T0 + timedelta(days=2))
    assert JourneyStepRun.objects.filter(step_id="pause", status="done").count() == 10


def test_a_tick_that_lost_its_lease_claims_nothing_a_later_one_finishes(make_journey, django_assert_max_num_queries):
    """Claimed rows (a tick that died after claiming) are not due until the lease runs out."""
    from notifications.journeys.engine import LEASE

    journey = make_journey()
    people = make_people(20)
    journey_enter(journey=journey, user_ids=people, now=T0)
    JourneyEnrollment.objects.update(due_at=T0 + LEASE, lease_owner="dead-worker")
    assert journeys_tick(now=T0).enrollments == 0
    assert journeys_tick(now=T0 + LEASE).enrollments == 20
    assert Delivery.objects.count() == 20


def test_tick_queries_do_not_grow_with_the_number_of_people(make_journey, django_assert_max_num_queries):
    journey = make_journey()
    journey_enter(journey=journey, user_ids=make_people(300), now=T0)
    journeys_tick(now=T0)
    with django_assert_max_num_queries(30):
        result = journeys_tick(now=T0 + timedelta(days=2))
    assert result.enrollments == 300


def test_a_split_is_deterministic_per_enrollment_and_recorded(make_journey):
    graph = {"start": "ab", "steps": [
        {"id": "ab", "type": "split", "arms": [{"name": "A", "percent": 30, "next": "a"},
                                              {"name": "B", "percent": 70, "next": "b"}]},
        {"id": "a", "type": "send", "template": "j-tip", "channels": ["email"]},
        {"id": "b", "type": "send", "template": "j-reminder", "channels": ["email"]},
    ]}
    make_journey(graph=graph)
    journey_enter(journey="welcome", user_ids=make_people(1000), now=T0)
    journeys_tick(now=T0)
    variants = Counter(v["ab"] for v in JourneyEnrollment.objects.values_list("variants", flat=True))
    assert 230 < variants["A"] < 370 and variants["A"] + variants["B"] == 1000
    chosen = {e.pk: e.variants["ab"] for e in JourneyEnrollment.objects.all()}
    sent = {key.split(":")[1]: key.split(":")[2] for key in Delivery.objects.values_list("idempotency_key", flat=True)}
    assert all({"A": "a", "B": "b"}[arm] == sent[str(pk)] for pk, arm in chosen.items())


def test_wait_until_a_local_time_of_day_uses_the_recipients_zone(make_journey):
    from notifications.models import RecipientProfile

    graph = {"start": "w", "steps": [
        {"id": "w", "type": "wait", "until_time": "09:00", "next": "s"},
        {"id": "s", "type": "send", "template": "j-tip", "channels": ["email"]},
    ]}
    make_journey(graph=graph)
    tokyo, london = make_people(2)
    RecipientProfile.objects.create(user_id=tokyo, timezone="Asia/Tokyo")
    RecipientProfile.objects.create(user_id=london, timezone="Europe/London")
    journey_enter(journey="welcome", user_ids=[tokyo, london], now=T0)  # 09:00 UTC = 18:00 in Tokyo
    journeys_tick(now=T0)
    due = dict(JourneyEnrollment.objects.values_list("user_id", "due_at"))
    assert due[tokyo] == T0 + timedelta(hours=15)  # 09:00 next day in Tokyo = 00:00 UTC
    assert due[london] == T0 + timedelta(days=1)  # it is 09:00 in London already: tomorrow's


def test_wait_until_a_date_in_the_context(make_journey):
    graph = {"start": "w", "steps": [
        {"id": "w", "type": "wait", "until_field": "context.renewal", "offset_days": -3, "next": "s"},
        {"id": "s", "type": "send", "template": "j-tip", "channels": ["email"]},
    ]}
    make_journey(graph=graph, reentry="always")
    soon, past = make_people(2)
    journey_enter(journey="welcome", user_ids=[soon], context={"renewal": "2026-03-12T09:00:00+00:00"}, now=T0)
    journey_enter(journey="welcome", user_ids=[past], context={"renewal": "2026-03-01"}, now=T0)
    journeys_tick(now=T0)
    assert JourneyEnrollment.objects.get(user_id=soon).due_at == T0 + timedelta(days=7)
    assert Delivery.objects.filter(recipient_id=past).count() == 1  # the date has passed: no wait


def test_a_date_wait_with_a_date_per_person_writes_them_in_few_queries(make_journey, django_assert_max_num_queries):
    graph = {"start": "w", "steps": [
        {"id": "w", "type": "wait", "until_field": "context.renewal", "next": "s"},
        {"id": "s", "type": "send", "template": "j-tip", "channels": ["email"]},
    ]}
    make_journey(graph=graph, reentry="always")
    people = make_people(300)
    for n, user_id in enumerate(people):
        journey_enter(journey="welcome", user_ids=[user_id], context={"renewal": (T0 + timedelta(hours=n + 1)).isoformat()},
                      now=T0)
    with django_assert_max_num_queries(30):  # not an UPDATE per person, though each has their own wake time
        result = journeys_tick(now=T0)
    assert result.enrollments == 300
    due = dict(JourneyEnrollment.objects.values_list("user_id", "due_at"))
    assert all(due[user_id] == T0 + timedelta(hours=n + 1) for n, user_id in enumerate(people))
    assert set(JourneyEnrollment.objects.values_list("current_step", "lease_owner")) == {("s", "")}


def test_branches_on_the_entry_context_and_the_recipients_profile(make_journey):
    from notifications.models import RecipientProfile

    graph = {"start": "big?", "steps": [
        {"id": "big?", "type": "branch", "if": {"field": "context.total", "op": "gte", "value": 100},
         "yes": "zh?", "no": "small"},
        {"id": "zh?", "type": "branch", "if": {"field": "profile.locale", "op": "eq", "value": "zh-hans"},
         "yes": "big-zh", "no": "big-en"},
        {"id": "small", "type": "send", "template": "j-tip", "channels": ["email"]},
        {"id": "big-zh", "type": "send", "template": "j-reminder", "channels": ["email"]},
        {"id": "big-en", "type": "send", "template": "j-other", "channels": ["email"]},
    ]}
    make_journey(graph=graph, reentry="always")
    small, big_zh, big_en = make_people(3)
    RecipientProfile.objects.create(user_id=big_zh, locale="zh-hans")
    journey_enter(journey="welcome", user_ids=[small], context={"total": "20.00"}, now=T0)
    journey_enter(journey="welcome", user_ids=[big_zh, big_en], context={"total": "250.00"}, now=T0)
    journeys_tick(now=T0)
    sent = {r: k.split(":")[2] for r, k in Delivery.objects.values_list("recipient_id", "idempotency_key")}
    assert sent == {small: "small", big_zh: "big-zh", big_en: "big-en"}
    outcomes = Counter(JourneyStepRun.objects.filter(step_id="big?").values_list("outcome", flat=True))
    assert outcomes == {"yes": 2, "no": 1}
