"""Firing: recipients (paths and audiences), dedupe windows, counters — the task body."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.dispatch import Signal
from django.utils import timezone

from demo_shop.models import Customer, Order
from notifications.models import Audience, AudienceMember, Delivery, SignalTrigger
from notifications.triggers import registry as reg
from notifications.triggers.services import trigger_fire, trigger_key_prefix, trigger_set_active
from notifications.triggers.tasks import trigger_fire_task
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def fire(trigger, instance, *, event="updated", at=None, event_id="e1", **extra):
    return trigger_fire(
        trigger_id=trigger.pk, model=reg.model_label(instance), pk=instance.pk, event=event,
        fields=reg.instance_fields(instance), fired_at=(at or timezone.now()).isoformat(), event_id=event_id, **extra,
    )


def planned(trigger) -> list[tuple[int, str]]:
    return sorted(Delivery.objects.filter(trigger=trigger).values_list("recipient_id", "channel"))


def test_fk_path_reaches_the_customer_on_each_channel(make_trigger, make_order, customer):
    trigger = make_trigger(channels=["inapp", "email"])
    order = make_order(status="paid")
    fire(trigger, order)
    assert planned(trigger) == [(customer.user_id, "email"), (customer.user_id, "inapp")]
    delivery = Delivery.objects.get(trigger=trigger, channel="inapp")
    # Keyed by event and template (one message per template per event, whichever trigger sends it).
    assert delivery.idempotency_key == (
        f"trigger-event:demo_shop.order:{order.pk}:e1:template:{trigger.template_id}:{customer.user_id}:inapp"
    )
    assert delivery.category == trigger.category
    context = delivery.content["context"]
    assert context["instance"]["number"] == order.number and context["instance"]["total"] == "25.00"
    assert context["event"] == "updated" and context["trigger"] == {"id": trigger.pk, "name": trigger.name}


def test_to_many_path(registry_snapshot, make_trigger):
    reg.register_model(Group, fields=["name"], recipient_paths=["user"])
    members = [UserFactory(username=f"m{i}") for i in range(3)]
    outsider = UserFactory(username="outsider")
    inactive = UserFactory(username="gone", is_active=False)
    group = Group.objects.create(name="Launch team")
    group.user_set.add(*members, inactive)
    trigger = make_trigger(name="Team renamed", model="auth.group", changed_field="", changed_to="",
                           recipient_path="user")
    fire(trigger, group)
    assert [r for r, _ in planned(trigger)] == sorted(m.pk for m in members)
    assert outsider.pk not in [r for r, _ in planned(trigger)]


def test_audience_recipients(make_trigger, make_order):
    users = [UserFactory(username=f"a{i}") for i in range(2)]
    audience = Audience.objects.create(name="Ops team", kind=Audience.Kind.STATIC)
    AudienceMember.objects.bulk_create(AudienceMember(audience=audience, user=u) for u in users)
    trigger = make_trigger(recipient_path="", audience=audience)
    fire(trigger, make_order(status="paid"))
    assert [r for r, _ in planned(trigger)] == sorted(u.pk for u in users)


def test_deleted_instance_reaches_recipients_through_its_snapshot(make_trigger, make_order, customer):
    trigger = make_trigger(signal="model.post_delete", events=["deleted"], changed_field="", changed_to="")
    order = make_order()
    fields, pk = reg.instance_fields(order), order.pk
    order.delete()
    trigger_fire(trigger_id=trigger.pk, model="demo_shop.order", pk=pk, event="deleted", fields=fields,
                 fired_at=timezone.now().isoformat(), event_id="gone")
    assert planned(trigger) == [(customer.user_id, "inapp")]
    assert Delivery.objects.get(trigger=trigger).content["context"]["instance"]["number"] == fields["number"]


def test_inactive_recipients_get_nothing(make_trigger, make_order, customer):
    get_user_model().objects.filter(pk=customer.user_id).update(is_active=False)
    trigger = make_trigger()
    fire(trigger, make_order(status="paid"))
    assert planned(trigger) == []


def test_a_trigger_disabled_before_the_task_runs_sends_nothing(make_trigger, make_order):
    trigger = make_trigger()
    order = make_order(status="paid")
    trigger_set_active(trigger=trigger, active=False, actor=None)
    assert fire(trigger, order) is None
    assert planned(trigger) == []
    trigger.refresh_from_db()
    assert trigger.fired_count == 0


def test_dedupe_window_folds_firings_for_the_same_instance(make_trigger, make_order, customer):
    trigger = make_trigger(dedupe_window=timedelta(hours=1))
    order, other = make_order(status="paid"), make_order(status="paid")
    start = timezone.now().replace(minute=0, second=0, microsecond=0)

    def sent_for(instance) -> int:
        prefix = f"trigger:{trigger.pk}:demo_shop.order:{instance.pk}:"
        return Delivery.objects.filter(idempotency_key__startswith=prefix).count()

    fire(trigger, order, at=start + timedelta(minutes=5), event_id="a")
    assert sent_for(order) == 1
    fire(trigger, order, at=start + timedelta(minutes=50), event_id="b")  # same window: nothing new
    assert sent_for(order) == 1
    fire(trigger, other, at=start + timedelta(minutes=50), event_id="c")  # another instance
    assert sent_for(other) == 1
    fire(trigger, order, at=start + timedelta(hours=2), event_id="d")  # a later window
    assert sent_for(order) == 2
    assert Delivery.objects.filter(trigger=trigger, recipient=customer.user).count() == 3


def test_without_a_window_each_event_is_its_own_but_a_retry_is_harmless(make_trigger, make_order):
    trigger = make_trigger()
    order = make_order(status="paid")
    fire(trigger, order, event_id="first")
    fire(trigger, order, event_id="first")  # the same task again
    assert Delivery.objects.filter(trigger=trigger).count() == 1
    fire(trigger, order, event_id="second")
    assert Delivery.objects.filter(trigger=trigger).count() == 2


def test_key_prefix_buckets():
    at = timezone.now()
    window = timedelta(minutes=10)
    key = trigger_key_prefix(trigger_id=7, model="demo_shop.order", pk=3, fired_at=at, window=window, event_id="x")
    assert key == f"trigger:7:demo_shop.order:3:{int(at.timestamp() // 600)}"
    assert trigger_key_prefix(trigger_id=7, model="m", pk=None, fired_at=at, window=timedelta(0), event_id="x") == (
        "trigger:7:m:-:x"
    )


def test_fired_count_and_last_fired(make_trigger, make_order):
    trigger = make_trigger()
    order = make_order(status="paid")
    later = timezone.now()
    fire(trigger, order, at=later, event_id="1")
    fire(trigger, order, at=later - timedelta(minutes=5), event_id="2")  # an older event finishing last
    trigger.refresh_from_db()
    assert trigger.fired_count == 2
    assert trigger.last_fired_at == later


def test_custom_signal_recipients_from_provided_objects_and_user_ids(make_trigger, customer):
    with mock.patch.dict(reg.registry.signals):
        reg.register_signal("tests.pinged", Signal(), label="Pinged",
                            provides=["customer", "user_id"], recipient_paths=["customer.user", "user_id"])
        via_object = make_trigger(name="Pinged customer", signal="tests.pinged", model="", events=["fired"],
                                  changed_field="", changed_to="", recipient_path="customer.user")
        via_id = make_trigger(name="Pinged id", signal="tests.pinged", model="", events=["fired"],
                              changed_field="", changed_to="", recipient_path="user_id")
        other = UserFactory(username="pinged")
        for trigger in (via_object, via_id):
            trigger_fire(trigger_id=trigger.pk, model="tests.pinged", pk=None, event="fired",
                         fields={"customer": {"id": customer.pk}, "user_id": other.pk},
                         refs={"customer": ["demo_shop.customer", customer.pk]}, fired_at=timezone.now().isoformat(),
                         event_id="p")
    assert planned(via_object) == [(customer.user_id, "inapp")]
    assert planned(via_id) == [(other.pk, "inapp")]


def test_reverse_m2m_firings_check_conditions_in_the_task(registry_snapshot, make_trigger):
    User = get_user_model()
    reg.register_model(User, fields=["username", "is_staff", "groups"], recipient_paths=["self"])
    trigger = make_trigger(name="Joined", signal="model.m2m_changed", model="auth.user", events=["updated"],
                           changed_field="groups", changed_to="", recipient_path="self",
                           conditions=[{"field": "is_staff", "op": "eq", "value": False}])
    member, boss = UserFactory(username="member"), UserFactory(username="boss", is_staff=True)
    for user in (member, boss):
        trigger_fire(trigger_id=trigger.pk, model="auth.user", pk=user.pk, event="updated", fields={},
                     fired_at=timezone.now().isoformat(), event_id=f"r{user.pk}", check_conditions=True,
                     change={"field": "groups", "action": "add", "ids": [1]})
    assert planned(trigger) == [(member.pk, "inapp")]
    context = Delivery.objects.get(trigger=trigger).content["context"]
    assert context["instance"]["username"] == "member" and context["change"]["action"] == "add"


def test_task_fires_each_and_reports_the_first_error(make_trigger, make_order):
    trigger = make_trigger()
    order = make_order(status="paid")
    good = {"trigger_id": trigger.pk, "model": "demo_shop.order", "pk": order.pk, "event": "updated",
            "fields": reg.instance_fields(order), "fired_at": timezone.now().isoformat(), "event_id": "ok"}
    bad = {**good, "fired_at": "not a date", "event_id": "bad"}
    with pytest.raises(ValueError, match="fired_at"):
        trigger_fire_task.call(firings=[bad, good])
    assert planned(trigger) == [(order.customer.user_id, "inapp")]  # the good one still went through
    assert trigger_fire_task.call(firings=[{**good, "event_id": "ok2"}]) == {"firings": 1, "planned": 1, "skipped": 0}


def test_a_customer_without_orders_path(registry_snapshot, make_trigger, customer):
    """Customer -> its user: the one-step path ends at an object with a ``user``."""
    trigger = make_trigger(name="Customer saved", model="demo_shop.customer", changed_field="", changed_to="",
                           recipient_path="user")
    fire(trigger, Customer.objects.get(pk=customer.pk))
    assert planned(trigger) == [(customer.user_id, "inapp")]
    assert SignalTrigger.objects.get(pk=trigger.pk).fired_count == 1
    assert Order.objects.count() == 0

