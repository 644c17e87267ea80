"""Receivers: the cheap check on the save path, and the enqueue after commit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.dispatch import Signal
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from demo_shop.models import Order
from notifications.triggers import cache
from notifications.triggers import registry as reg
from tests.factories import UserFactory

from .conftest import firings

pytestmark = pytest.mark.django_db


def single_firing(callbacks) -> dict:
    tasks = firings(callbacks)
    assert len(tasks) == 1 and len(tasks[0]) == 1, tasks
    return tasks[0][0]


def pay(order: Order) -> Order:
    order.status = Order.Status.PAID
    order.paid_at = timezone.now()
    order.save()
    return order


def test_paying_an_order_queues_one_firing_with_plain_fields(
    make_trigger, make_order, django_capture_on_commit_callbacks
):
    trigger = make_trigger()
    order = make_order(total=Decimal("42.50"))
    with django_capture_on_commit_callbacks() as callbacks:
        pay(order)
    firing = single_firing(callbacks)
    assert firing["trigger_id"] == trigger.pk
    assert (firing["model"], firing["pk"], firing["event"]) == ("demo_shop.order", order.pk, "updated")
    assert firing["fields"] == {
        "id": order.pk, "customer": order.customer_id, "number": order.number, "status": "paid",
        "total": "42.50", "currency": "USD", "created_at": order.created_at.isoformat(),
        "paid_at": order.paid_at.isoformat(),
    }
    assert len(firing["event_id"]) == 32


def test_only_a_change_to_the_target_value_fires(make_trigger, make_order, django_capture_on_commit_callbacks):
    make_trigger()
    pending, paid = make_order(), make_order(status=Order.Status.PAID)
    with django_capture_on_commit_callbacks() as callbacks:
        paid.total = Decimal("30.00")
        paid.save()  # still paid: no change to "paid"
        pending.total = Decimal("31.00")
        pending.save()  # a change, but not to "paid"
        pending.status = Order.Status.PAID
        pending.save(update_fields=["total"])  # status not written
    assert firings(callbacks) == []


def test_an_order_created_paid_fires_as_created(make_trigger, make_order, django_capture_on_commit_callbacks):
    make_trigger()
    with django_capture_on_commit_callbacks() as callbacks:
        order = make_order(status=Order.Status.PAID)
    firing = single_firing(callbacks)
    assert (firing["pk"], firing["event"]) == (order.pk, "created")


def test_event_filter(make_trigger, make_order, django_capture_on_commit_callbacks):
    make_trigger(name="New orders", events=["created"], changed_field="", changed_to="")
    with django_capture_on_commit_callbacks() as callbacks:
        order = make_order()
        order.total = Decimal("1.00")
        order.save()
    firing = single_firing(callbacks)
    assert (firing["pk"], firing["event"]) == (order.pk, "created")


def test_delete_fires_with_the_snapshot(make_trigger, make_order, django_capture_on_commit_callbacks):
    make_trigger(name="Order deleted", signal="model.post_delete", events=["deleted"], changed_field="", changed_to="")
    order = make_order(number="T-DEL")
    pk, customer_id = order.pk, order.customer_id
    with django_capture_on_commit_callbacks() as callbacks:
        order.delete()
    firing = single_firing(callbacks)
    assert (firing["pk"], firing["event"]) == (pk, "deleted")
    assert firing["fields"]["number"] == "T-DEL" and firing["fields"]["customer"] == customer_id


@pytest.mark.parametrize(
    ("conditions", "order_fields", "fires"),
    [
        ([{"field": "total", "op": "gte", "value": "100"}], {"total": Decimal("100.00")}, True),
        ([{"field": "total", "op": "gte", "value": 100}], {"total": Decimal("99.99")}, False),
        # An instance may hold a str until it is reloaded: compared as the field's type anyway.
        ([{"field": "total", "op": "gt", "value": 9}], {"total": "10.00"}, True),
        ([{"field": "total", "op": "lt", "value": "9.5"}], {"total": "10.00"}, False),
        ([{"field": "currency", "op": "in", "value": ["EUR", "GBP"]}], {"currency": "EUR"}, True),
        ([{"field": "currency", "op": "in", "value": ["EUR", "GBP"]}], {"currency": "USD"}, False),
        ([{"field": "currency", "op": "ne", "value": "USD"}], {"currency": "USD"}, False),
        ([{"field": "number", "op": "contains", "value": "vip"}], {"number": "T-VIP-1"}, True),
        ([{"field": "paid_at", "op": "is_empty", "value": False}], {}, True),
        ([{"field": "paid_at", "op": "is_empty", "value": True}], {}, False),
        ([{"field": "created_at", "op": "gte", "value": "2000-01-01T00:00:00"}], {}, True),
        ([{"field": "created_at", "op": "lt", "value": "2000-01-01"}], {}, False),
        ([{"field": "total", "op": "gte", "value": 10}, {"field": "currency", "op": "eq", "value": "EUR"}],
         {"total": Decimal("50"), "currency": "USD"}, False),
    ],
)
def test_conditions_compare_as_field_types(
    make_trigger, make_order, django_capture_on_commit_callbacks, conditions, order_fields, fires
):
    make_trigger(conditions=conditions)
    order = make_order(**order_fields)
    with django_capture_on_commit_callbacks() as callbacks:
        pay(order)
    assert bool(firings(callbacks)) is fires


def test_customer_conditions_on_booleans(make_trigger, customer, django_capture_on_commit_callbacks):
    make_trigger(name="VIP", model="demo_shop.customer", changed_field="", changed_to="", events=["updated"],
                 conditions=[{"field": "vip", "op": "eq", "value": "true"}], recipient_path="user")
    with django_capture_on_commit_callbacks() as callbacks:
        customer.company = "Acme Ltd"
        customer.save()  # not VIP
        customer.vip = True
        customer.save()
    assert [f["fields"]["vip"] for t in firings(callbacks) for f in t] == [True]


def test_the_save_path_reads_only_what_it_needs(settings, make_trigger, make_order, django_assert_num_queries):
    settings.SIGNALBOX_TRIGGER_VERSION_CHECK = "db"  # the token is a query (with Redis, a GET instead)
    order = make_order()
    order.save()  # load the cache
    with django_assert_num_queries(2):  # the trigger token and the UPDATE
        order.save()
    make_trigger()
    order.save()  # reload after the change
    with django_assert_num_queries(2):  # a watched field, but not at its target value: no old-value read
        order.total = Decimal("26.00")
        order.save()
    with CaptureQueriesContext(connection) as queries:
        pay(order)
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    # token, old status by primary key, the UPDATE itself: the receivers never write.
    assert statements == ["SELECT", "SELECT", "UPDATE"], queries.captured_queries


def test_several_matches_in_one_transaction_share_one_task(
    make_trigger, make_order, django_capture_on_commit_callbacks
):
    make_trigger()
    make_trigger(name="Big orders paid", conditions=[{"field": "total", "op": "gte", "value": 20}])
    orders = [make_order() for _ in range(3)]
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for order in orders:
            pay(order)
    assert len(callbacks) == 1
    (task,) = firings(callbacks)
    assert sorted((f["pk"], f["trigger_id"]) for f in task) == sorted(
        (o.pk, t) for o in orders for t in {f["trigger_id"] for f in task}
    )
    assert len(task) == 6


def test_a_rolled_back_savepoint_drops_only_its_firings(make_trigger, make_order, django_capture_on_commit_callbacks):
    make_trigger()
    kept, dropped, later = make_order(), make_order(), make_order()

    class Abort(Exception):
        pass

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        pay(kept)
        with pytest.raises(Abort), transaction.atomic():
            pay(dropped)
            raise Abort
        pay(later)
    assert sorted(f["pk"] for task in firings(callbacks) for f in task) == sorted([kept.pk, later.pk])


def test_a_rolled_back_transaction_queues_nothing(make_trigger, make_order, django_capture_on_commit_callbacks):
    make_trigger()
    order = make_order()

    class Abort(Exception):
        pass

    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(Abort), transaction.atomic():
            pay(order)
            raise Abort
    assert firings(callbacks) == []


def test_no_triggers_for_the_model_means_no_work(make_trigger, customer, django_capture_on_commit_callbacks):
    make_trigger()  # on orders
    with django_capture_on_commit_callbacks() as callbacks:
        customer.vip = True
        customer.save()
    assert callbacks == []


def test_user_signed_up(make_trigger, django_capture_on_commit_callbacks):
    make_trigger(name="Welcome", signal="auth.user_signed_up", model="", events=["fired"], changed_field="",
                 changed_to="", recipient_path="self")
    existing = UserFactory(username="old-timer")
    with django_capture_on_commit_callbacks() as callbacks:
        existing.first_name = "Olde"
        existing.save()  # not a sign-up
        user = UserFactory(username="newcomer", first_name="Nia")
    firing = single_firing(callbacks)
    assert (firing["model"], firing["pk"], firing["event"]) == (reg.model_label(get_user_model()), user.pk, "fired")
    assert firing["fields"]["first_name"] == "Nia" and "password" not in firing["fields"]


def test_user_logged_in(make_trigger, client, password, django_capture_on_commit_callbacks):
    make_trigger(name="Welcome back", signal="auth.user_logged_in", model="", events=["fired"], changed_field="",
                 changed_to="", recipient_path="self")
    user = UserFactory(username="returning")
    with django_capture_on_commit_callbacks() as callbacks:
        assert client.login(username="returning", password=password)
    firing = single_firing(callbacks)
    assert (firing["pk"], firing["event"]) == (user.pk, "fired")


class Billing:
    """A sender for the custom signal below."""


invoice_overdue = Signal()


def test_custom_signal(registry_snapshot, make_trigger, customer, django_capture_on_commit_callbacks):
    reg.register_signal(
        "billing.invoice_overdue", invoice_overdue, label="Invoice overdue", provides=["customer", "amount", "days"],
        sender=Billing, recipient_paths=["customer.user"],
    )
    trigger = make_trigger(name="Overdue", signal="billing.invoice_overdue", model="", events=["fired"],
                           changed_field="", changed_to="", conditions=[{"field": "amount", "op": "gte", "value": 100}])
    with django_capture_on_commit_callbacks() as callbacks:
        invoice_overdue.send(sender=Billing, customer=customer, amount=Decimal("99.00"), days=3)
        invoice_overdue.send(sender=object, customer=customer, amount=Decimal("500.00"), days=3)  # other sender
        invoice_overdue.send(sender=Billing, customer=customer, amount=Decimal("150.00"), days=30)
    firing = single_firing(callbacks)
    assert firing["trigger_id"] == trigger.pk and firing["event"] == "fired"
    assert firing["fields"]["amount"] == "150.00" and firing["fields"]["days"] == 30
    assert firing["fields"]["customer"]["company"] == "Acme"
    assert firing["refs"] == {"customer": ["demo_shop.customer", customer.pk]}


def test_m2m_changes_from_either_side(registry_snapshot, make_trigger, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Group

    User = get_user_model()
    reg.register_model(User, fields=["username", "first_name", "is_staff", "groups"], recipient_paths=["self"])
    make_trigger(name="Joined a group", signal="model.m2m_changed", model=reg.model_label(User), events=["updated"],
                 changed_field="groups", changed_to="", recipient_path="self",
                 conditions=[{"field": "is_staff", "op": "eq", "value": False}])
    user, staff = UserFactory(username="member"), UserFactory(username="boss", is_staff=True)
    group = Group.objects.create(name="Beta testers")
    with django_capture_on_commit_callbacks() as callbacks:
        user.groups.add(group)
        staff.groups.add(group)  # condition fails
        group.user_set.add(UserFactory(username="via-group"))  # reverse: conditions checked by the task
    tasks = firings(callbacks)
    forward, reverse = [f for t in tasks for f in t if "check_conditions" not in f], [
        f for t in tasks for f in t if f.get("check_conditions")]
    assert [(f["pk"], f["change"]["action"], f["change"]["field"]) for f in forward] == [(user.pk, "add", "groups")]
    assert [f["pk"] for f in reverse] == [User.objects.get(username="via-group").pk]


def test_raw_saves_are_ignored(make_trigger, make_order, django_capture_on_commit_callbacks):
    """Fixture loading (``raw=True``) is not a business event."""
    make_trigger()
    order = make_order()
    order.status = Order.Status.PAID
    with django_capture_on_commit_callbacks() as callbacks:
        post_save.send(sender=Order, instance=order, created=False, raw=True, using="default", update_fields=None)
    assert callbacks == []


def test_the_receivers_are_connected_once_with_senders():
    receivers = [r for r in post_save.receivers if isinstance(r[0], tuple) and "signalbox.triggers" in str(r[0][0])]
    uids = [r[0][0] for r in receivers]
    assert "signalbox.triggers.post_save:demo_shop.order" in uids
    assert len(uids) == len(set(uids))


def test_cache_snapshot_is_not_reloaded_without_a_change(make_trigger, make_order):
    make_trigger()
    first = cache.active_triggers()
    make_order().save()
    assert cache.active_triggers() is first
    make_trigger(name="Another", dedupe_window=timedelta(hours=1))
    assert cache.active_triggers() is not first
