"""What people on a journey notice: receipts steer branches, goals end it, versions, re-entry, control."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError

from channels_adapters.locmem import LocmemChannel
from notifications import api
from notifications.journeys.engine import journeys_tick
from notifications.journeys.services import (
    JourneyNotLive,
    journey_enter,
    journey_pause,
    journey_publish,
    journey_resume,
    journey_save,
    journey_stop,
)
from notifications.models import AuditEntry, Delivery, Journey, JourneyEnrollment, Notification, Preference
from tests.factories import CustomerFactory, OrderFactory, UserFactory

from .conftest import T0, make_people, welcome_graph

pytestmark = pytest.mark.django_db


def _sent_keys(user) -> set[str]:
    return {key.split(":")[2] for key in Delivery.objects.filter(recipient=user).values_list("idempotency_key", flat=True)}


def test_branch_follows_the_open_pixel_of_the_first_email(make_journey, locmem_channels, immediate_tasks, client,
                                                          django_capture_on_commit_callbacks):
    make_journey()
    reader, ignorer = UserFactory(username="reader"), UserFactory(username="ignorer")
    assert api.enter_journey("welcome", reader) and api.enter_journey("welcome", ignorer)
    JourneyEnrollment.objects.update(due_at=T0, entered_at=T0)
    with django_capture_on_commit_callbacks(execute=True):
        journeys_tick(now=T0)
    assert Delivery.objects.filter(status="sent").count() == 2
    message = next(m.message for m in LocmemChannel.outbox if m.message.address == reader.email)
    pixel = re.search(r'src="([^"]*/t/o/[^"]+)"', message.html).group(1)
    browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
    assert client.get(urlsplit(pixel).path, HTTP_USER_AGENT=browser).status_code == 200
    assert Delivery.objects.get(recipient=reader).status == "opened"

    with django_capture_on_commit_callbacks(execute=True):
        journeys_tick(now=T0 + timedelta(days=2))
    assert _sent_keys(reader) == {"welcome", "tip"}
    assert _sent_keys(ignorer) == {"welcome", "reminder"}
    assert Notification.objects.filter(recipient=reader).count() == 1  # the in-app tip
    assert [m.message.address for m in LocmemChannel.outbox].count(ignorer.email) == 2


def test_an_open_after_the_window_counts_as_not_opened(make_journey):
    graph = welcome_graph()
    graph["steps"][2]["if"]["within_hours"] = 24
    make_journey(graph=graph)
    person = UserFactory()
    journey_enter(journey="welcome", user_ids=[person.pk], now=T0)
    journeys_tick(now=T0)
    Delivery.objects.filter(recipient=person).update(status="opened", opened_at=T0 + timedelta(hours=30))
    journeys_tick(now=T0 + timedelta(days=2))
    assert _sent_keys(person) == {"welcome", "reminder"}


def test_a_goal_reached_mid_journey_stops_the_remaining_steps(make_journey, immediate_tasks,
                                                             django_capture_on_commit_callbacks):
    graph = welcome_graph(goals=[{"name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
                                  "conditions": [{"field": "status", "op": "eq", "value": "paid"}]}])
    make_journey(graph=graph)
    buyer, other = CustomerFactory(), CustomerFactory()
    journey_enter(journey="welcome", user_ids=[buyer.user_id, other.user_id], now=T0)
    journeys_tick(now=T0)
    with django_capture_on_commit_callbacks(execute=True):
        order = OrderFactory(customer=buyer, status="pending", paid_at=None)
        order.status = "paid"
        order.save()
    enrollment = JourneyEnrollment.objects.get(user=buyer.user)
    assert (enrollment.state, enrollment.state_reason) == ("converted", "goal:paid")
    journeys_tick(now=T0 + timedelta(days=3))
    assert _sent_keys(buyer.user) == {"welcome"}
    assert _sent_keys(other.user) == {"welcome", "reminder"}


def test_a_goal_met_before_entry_does_not_convert_at_the_tick(make_journey):
    graph = welcome_graph(goals=[{"name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
                                  "conditions": [{"field": "status", "op": "eq", "value": "paid"}],
                                  "since_field": "paid_at"}])
    make_journey(graph=graph)
    early, late = CustomerFactory(), CustomerFactory()
    OrderFactory(customer=early, paid_at=T0 - timedelta(days=1))
    journey_enter(journey="welcome", user_ids=[early.user_id, late.user_id], now=T0)
    journeys_tick(now=T0)
    OrderFactory(customer=late, paid_at=T0 + timedelta(hours=5))
    journeys_tick(now=T0 + timedelta(days=2))
    states = dict(JourneyEnrollment.objects.values_list("user_id", "state"))
    assert states == {early.user_id: "completed", late.user_id: "converted"}


def test_opting_out_of_the_category_exits_the_journey(make_journey, marketing):
    make_journey(graph=welcome_graph(exits=[{"kind": "opted_out"}]))
    person = UserFactory()
    journey_enter(journey="welcome", user_ids=[person.pk], now=T0)
    journeys_tick(now=T0)
    Preference.objects.create(user=person, category=marketing, channel="email", enabled=False)
    journeys_tick(now=T0 + timedelta(days=2))
    enrollment = JourneyEnrollment.objects.get()
    assert (enrollment.state, enrollment.state_reason) == ("exited", "opted_out")
    assert _sent_keys(person) == {"welcome"}


def test_editing_a_live_journey_keeps_people_in_flight_on_their_version(make_journey):
    journey = make_journey()
    early = make_people(5, prefix="early")
    journey_enter(journey=journey, user_ids=early, now=T0)
    journeys_tick(now=T0)
    journey.graph = welcome_graph(start="other", steps=[
        {"id": "other", "type": "send", "template": "j-other", "channels": ["email"]},
    ])
    journey.save()
    v2 = journey_publish(journey=journey, actor=None, now=T0 + timedelta(hours=1))
    late = make_people(5, prefix="late")
    journey_enter(journey=journey, user_ids=late, now=T0 + timedelta(hours=1))
    journeys_tick(now=T0 + timedelta(days=2))
    assert {p: _sent_keys(p) for p in early} == {p: {"welcome", "reminder"} for p in early}
    assert {p: _sent_keys(p) for p in late} == {p: {"other"} for p in late}
    assert set(JourneyEnrollment.objects.filter(user_id__in=late).values_list("version", flat=True)) == {v2.pk}
    assert v2.number == 2


@pytest.mark.parametrize(("policy", "days", "expected"), [("once", None, 1), ("per_period", 7, 2), ("always", None, 3)])
def test_reentry_policies(make_journey, policy, days, expected):
    make_journey(reentry=policy, reentry_days=days)
    person = UserFactory()
    for offset in (0, 1, 8):  # days after T0
        journey_enter(journey="welcome", user_ids=[person.pk], now=T0 + timedelta(days=offset))
    assert JourneyEnrollment.objects.filter(user=person).count() == expected


def test_the_same_entry_key_enters_once_whatever_the_policy(make_journey):
    make_journey(reentry="always")
    person = UserFactory()
    assert api.enter_journey("welcome", person, entry_key="order-7") is True
    assert api.enter_journey("welcome", person, entry_key="order-7") is False
    assert api.enter_journey("welcome", person, entry_key="order-8") is True


def test_pause_holds_and_stop_ends_every_active_enrollment(make_journey):
    journey = make_journey()
    people = make_people(4)
    journey_enter(journey=journey, user_ids=people, now=T0)
    assert journey_pause(journey=journey, actor=None)
    assert journeys_tick(now=T0).enrollments == 0
    with pytest.raises(JourneyNotLive):
        journey_enter(journey=journey, user_ids=people, now=T0)
    assert journey_resume(journey=journey, actor=None)
    assert journeys_tick(now=T0).enrollments == 4
    assert journey_stop(journey=journey, actor=None) == 4
    assert journeys_tick(now=T0 + timedelta(days=3)).enrollments == 0
    assert set(JourneyEnrollment.objects.values_list("state", flat=True)) == {"stopped"}
    assert Delivery.objects.count() == 4
    assert list(AuditEntry.objects.filter(action__startswith="journey.").order_by("id").values_list("action", flat=True)) == [
        "journey.create", "journey.publish", "journey.pause", "journey.resume", "journey.stop"]


def test_a_signal_entry_enrolls_the_customer_after_commit(make_journey, immediate_tasks,
                                                         django_capture_on_commit_callbacks):
    entry = {"kind": "signal", "signal": "model.post_save", "model": "demo_shop.order", "events": ["updated"],
             "changed_field": "status", "changed_to": "paid", "conditions": [], "recipient_path": "customer.user"}
    make_journey(entry=entry, reentry="always")
    customer = CustomerFactory()
    order = OrderFactory(customer=customer, status="pending", paid_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        order.total = "30.00"
        order.save()  # not paid: no entry
    assert not JourneyEnrollment.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        order.status = "paid"
        order.save()
    with django_capture_on_commit_callbacks(execute=True):
        order.save()  # saved again, still paid: no second entry
    enrollment = JourneyEnrollment.objects.get()
    assert enrollment.user_id == customer.user_id
    assert enrollment.context["instance"]["number"] == order.number


def test_a_marketer_may_edit_but_not_everyone_may_publish(make_journey):
    from django.core.exceptions import PermissionDenied

    from tests.factories import staff_in

    journey = make_journey(publish=False)
    operator = staff_in("Operators", "op")
    with pytest.raises(PermissionDenied):
        journey_publish(journey=journey, actor=operator)
    marketer = staff_in("Marketers", "mk")
    assert journey_publish(journey=journey, actor=marketer).number == 1
    assert Journey.objects.get().status == "live"


def test_publishing_a_broken_graph_is_refused_with_its_problems(make_journey):
    journey = make_journey(publish=False, graph={"start": "a", "steps": [{"id": "a", "type": "wait", "next": "b"}]})
    with pytest.raises(ValidationError) as caught:
        journey_publish(journey=journey, actor=None)
    text = " ".join(caught.value.messages)
    assert "waits without an end" in text and "b, which does not exist" in text
    assert not journey.versions.exists()


def test_step_counters_of_a_version(make_journey, django_assert_num_queries, marketing):
    from notifications.journeys.selectors import version_step_counts

    journey = make_journey(graph=welcome_graph(exits=[{"kind": "opted_out"}]))
    people = make_people(6)
    journey_enter(journey=journey, user_ids=people, now=T0)
    journeys_tick(now=T0)
    Preference.objects.create(user_id=people[0], category=marketing, channel="email", enabled=False)
    JourneyEnrollment.objects.filter(user_id=people[1]).update(due_at=T0 + timedelta(days=3))  # still waiting
    journeys_tick(now=T0 + timedelta(days=2))
    journey_enter(journey=journey, user_ids=make_people(2, prefix="new"), now=T0)  # not ticked yet
    version = journey.current_version
    with django_assert_num_queries(4):
        counts = version_step_counts(version=version)
    assert (counts["welcome"].now, counts["welcome"].passed) == (2, 6)
    assert (counts["pause"].now, counts["pause"].passed) == (1, 5)
    assert counts["opened?"].exited == 1 and counts["opened?"].passed == 4
    assert (counts["reminder"].passed, counts["tip"].passed) == (4, 0)


def test_an_exit_condition_on_a_model_ends_the_journey_when_it_is_saved(make_journey, immediate_tasks,
                                                                        django_capture_on_commit_callbacks):
    graph = welcome_graph(exits=[{"kind": "condition", "name": "cancelled", "model": "demo_shop.order",
                                  "recipient_path": "customer.user",
                                  "conditions": [{"field": "status", "op": "eq", "value": "cancelled"}]}])
    make_journey(graph=graph)
    customer = CustomerFactory()
    order = OrderFactory(customer=customer)
    journey_enter(journey="welcome", user_ids=[customer.user_id], now=T0)
    journeys_tick(now=T0)
    with django_capture_on_commit_callbacks(execute=True):
        order.status = "cancelled"
        order.save()
    enrollment = JourneyEnrollment.objects.get()
    assert (enrollment.state, enrollment.state_reason) == ("exited", "exit:cancelled")
    journeys_tick(now=T0 + timedelta(days=3))
    assert _sent_keys(customer.user) == {"welcome"}


def test_a_persons_journeys_are_exported_and_their_context_erased(make_journey):
    import io
    import json
    import zipfile

    from notifications.privacy import person_erase, person_export, person_find
    from tests.factories import staff_in

    make_journey()
    ada = UserFactory(username="ada-j", email="ada-j@example.com")
    journey_enter(journey="welcome", user_ids=[ada.pk], context={"note": "ada's order 42"}, entry_key="order-42",
                  now=T0)
    manager = staff_in("Managers", "meg-j")
    out = io.BytesIO()
    person_export(person=person_find(ada.email), actor=manager, out=out)
    rows = json.loads(zipfile.ZipFile(io.BytesIO(out.getvalue())).read("journey_enrollments.json"))
    assert [(r["journey_key"], r["context"]) for r in rows] == [("welcome", {"note": "ada's order 42"})]
    person_erase(person=person_find(ada.email), actor=manager)
    enrollment = JourneyEnrollment.objects.get(user=ada)
    assert enrollment.context == {} and enrollment.entry_key.startswith("erased:")


def test_a_goal_of_the_version_someone_entered_still_counts_after_a_new_version(make_journey, immediate_tasks,
                                                                               django_capture_on_commit_callbacks):
    goal = {"name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
            "conditions": [{"field": "status", "op": "eq", "value": "paid"}]}
    journey = make_journey(graph=welcome_graph(goals=[goal]))
    early, late = CustomerFactory(), CustomerFactory()
    journey_enter(journey=journey, user_ids=[early.user_id], now=T0)
    journey.graph = welcome_graph()  # the goal is dropped in version 2
    journey.save()
    journey_publish(journey=journey, actor=None, now=T0)
    journey_enter(journey=journey, user_ids=[late.user_id], now=T0)
    with django_capture_on_commit_callbacks(execute=True):
        OrderFactory(customer=early, status="paid")
        OrderFactory(customer=late, status="paid")
    states = dict(JourneyEnrollment.objects.values_list("user_id", "state"))
    assert states == {early.user_id: "converted", late.user_id: "active"}


def test_a_signal_entry_every_time_enters_once_per_event(make_journey, immediate_tasks,
                                                         django_capture_on_commit_callbacks):
    entry = {"kind": "signal", "signal": "model.post_save", "model": "demo_shop.order", "events": ["created"],
             "changed_field": "", "changed_to": "", "conditions": [{"field": "total", "op": "gte", "value": 100}],
             "recipient_path": "customer.user"}
    make_journey(entry=entry, reentry="always")
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        OrderFactory(customer=customer, total="150.00")
        OrderFactory(customer=customer, total="20.00")  # below the condition
    with django_capture_on_commit_callbacks(execute=True):
        OrderFactory(customer=customer, total="300.00")
    totals = sorted(e.context["instance"]["total"] for e in JourneyEnrollment.objects.filter(user=customer.user))
    assert totals == ["150.00", "300.00"]


def test_a_rolled_back_save_enters_nobody(make_journey, immediate_tasks, django_capture_on_commit_callbacks):
    from django.db import transaction

    entry = {"kind": "signal", "signal": "model.post_save", "model": "demo_shop.order", "events": ["created"],
             "conditions": [], "recipient_path": "customer.user"}
    make_journey(entry=entry)
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                OrderFactory(customer=customer)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert not JourneyEnrollment.objects.exists()


def test_only_a_live_journeys_entry_change_moves_the_trigger_token(make_journey, immediate_tasks,
                                                                  django_capture_on_commit_callbacks):
    from notifications.models import TriggerState

    def version():
        return TriggerState.objects.order_by("pk").values_list("version", flat=True).first()

    entry = {"kind": "signal", "signal": "model.post_save", "model": "demo_shop.order", "events": ["updated"],
             "changed_field": "status", "changed_to": "paid", "conditions": [], "recipient_path": "customer.user"}
    journey = make_journey(entry=entry, reentry="always")
    before = version()
    journey.graph = welcome_graph(start="pause")  # a draft edit: nothing bound changes
    journey.name = "Renamed"
    journey_save(journey=journey, actor=None)
    assert version() == before
    journey.entry = {**entry, "changed_to": "shipped"}  # the live entry changes: every process rebinds
    journey_save(journey=journey, actor=None)
    assert version() == before + 1
    order = OrderFactory(customer=CustomerFactory(), status="pending", paid_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        order.status = "paid"
        order.save()
    assert not JourneyEnrollment.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        order.status = "shipped"
        order.save()
    assert JourneyEnrollment.objects.get().user_id == order.customer.user_id


def test_a_goal_queues_no_task_while_nobody_is_in_the_journey(make_journey, django_capture_on_commit_callbacks,
                                                              settings):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    goal = {"name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
            "conditions": [{"field": "status", "op": "eq", "value": "paid"}]}
    journey = make_journey(graph=welcome_graph(goals=[goal]))
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        OrderFactory(customer=customer, status="paid")  # a paid order, nobody in the journey
    assert not DBTaskResult.objects.filter(task_path__contains="journey_firings").exists()
    journey_enter(journey=journey, user_ids=[customer.user_id], now=T0)
    with django_capture_on_commit_callbacks(execute=True):
        OrderFactory(customer=customer, status="paid")  # now someone is: the goal is checked
    assert DBTaskResult.objects.filter(task_path__contains="journey_firings").count() == 1


def test_a_batch_of_goal_firings_reads_its_journey_version_once(make_journey):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.journeys.entry import journey_firings_run

    goal = {"name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
            "conditions": [{"field": "status", "op": "eq", "value": "paid"}]}
    journey = make_journey(graph=welcome_graph(goals=[goal]))
    buyers = [CustomerFactory() for _ in range(3)]
    journey_enter(journey=journey, user_ids=[b.user_id for b in buyers], now=T0)
    orders = [OrderFactory(customer=b, status="paid") for b in buyers]
    journey.refresh_from_db()
    firings = [{"journey_id": journey.pk, "role": "goal", "model": "demo_shop.order", "pk": order.pk,
                "event": "updated", "fields": {"status": "paid"}, "fired_at": (T0 + timedelta(hours=1)).isoformat(),
                "event_id": f"e{order.pk}", "version_id": journey.current_version_id, "rule": 0}
               for order in orders]
    with CaptureQueriesContext(connection) as queries:
        done = journey_firings_run(firings=firings)
    assert done["converted"] == 3
    assert set(JourneyEnrollment.objects.values_list("state", flat=True)) == {"converted"}
    version_reads = [q["sql"] for q in queries.captured_queries
                     if q["sql"].startswith("SELECT") and 'FROM "notifications_journeyversion"' in q["sql"]]
    assert len(version_reads) == 1


def test_goal_and_exit_firings_are_kept_only_for_versions_someone_is_active_on(make_journey,
                                                                                django_assert_num_queries):
    from notifications.journeys.entry import journey_firings_worth_running

    busy, quiet = make_journey(key="busy"), make_journey(key="quiet")
    people = make_people(3)
    journey_enter(journey=busy, user_ids=people[:2], now=T0)
    journey_enter(journey=quiet, user_ids=people[2:], now=T0)
    JourneyEnrollment.objects.filter(journey=quiet).update(state=JourneyEnrollment.State.CONVERTED)  # ended
    busy_version, quiet_version = busy.current_version_id, quiet.current_version_id
    firings = [{"role": "goal", "version_id": busy_version}, {"role": "exit", "version_id": quiet_version},
               {"role": "goal", "version_id": quiet_version}, {"role": "entry", "journey_id": quiet.pk}]
    with django_assert_num_queries(1):
        kept = journey_firings_worth_running(firings)
    assert kept == [firings[0], firings[3]]
    with django_assert_num_queries(0):
        assert journey_firings_worth_running([firings[3]]) == [firings[3]]
