"""The demo wiring: "order paid -> notify the customer (in-app + email)" works out of the box."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from demo_shop.demo import ORDER_PAID_TEMPLATE, ORDER_PAID_TRIGGER, demo_triggers_ensure
from demo_shop.models import Order
from demo_shop.services import order_mark_paid
from notifications.models import AuditEntry, Delivery, MessageTemplate, SignalTrigger
from notifications.triggers.services import trigger_fire

from .conftest import firings

pytestmark = pytest.mark.django_db


def test_demo_triggers_ensure_is_idempotent():
    first = demo_triggers_ensure()
    assert first.created and first.trigger.is_active
    assert (first.trigger.signal, first.trigger.model, first.trigger.changed_to) == (
        "model.post_save", "demo_shop.order", "paid")
    assert first.trigger.channels == ["inapp", "email", "wechat", "mobilepush"] and first.trigger.category.key == "order-updates"
    template = MessageTemplate.objects.get(key=ORDER_PAID_TEMPLATE)
    assert "{{ instance.number }}" in template.inapp_title and template.email_subject
    assert template.variants.get(locale="zh-hans").inapp_title
    SignalTrigger.objects.filter(pk=first.trigger.pk).update(is_active=False)  # a user disabled it
    again = demo_triggers_ensure()
    assert not again.created and again.trigger.pk == first.trigger.pk and not again.trigger.is_active
    assert SignalTrigger.objects.filter(name=ORDER_PAID_TRIGGER).count() == 1
    assert MessageTemplate.objects.filter(key=ORDER_PAID_TEMPLATE).count() == 1
    assert AuditEntry.objects.filter(action="trigger.create").count() == 1


def test_the_demo_login_gets_a_pending_order_to_try_it_on():
    from demo_shop.demo import DEMO_PENDING_ORDER
    from demo_shop.models import Customer
    from demo_shop.seeding.data import DEMO_RECIPIENT

    demo_triggers_ensure()  # no demo recipient yet: nothing to add
    assert not Order.objects.exists()
    user = get_user_model().objects.create_user(DEMO_RECIPIENT.username)
    Customer.objects.create(user=user)
    demo_triggers_ensure()
    order = Order.objects.get(number=DEMO_PENDING_ORDER[0])
    assert (order.customer.user, order.status) == (user, "pending")
    assert order_mark_paid(order=order)
    demo_triggers_ensure()  # never reset
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_mark_paid_only_moves_pending_orders(make_order):
    pending, shipped = make_order(), make_order(status=Order.Status.SHIPPED)
    assert order_mark_paid(order=pending)
    pending.refresh_from_db()
    assert pending.status == "paid" and pending.paid_at is not None
    assert not order_mark_paid(order=pending)
    assert not order_mark_paid(order=shipped)
    shipped.refresh_from_db()
    assert shipped.status == "shipped" and shipped.paid_at is None


def test_mark_as_paid_in_the_admin_notifies_the_customer(client, make_order, customer,
                                                          django_capture_on_commit_callbacks):
    demo = demo_triggers_ensure()
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(staff)
    order = make_order(total=Decimal("86.40"))
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("admin:demo_shop_order_changelist"),
                               {"action": "mark_paid", "_selected_action": [order.pk]})
    assert response.status_code == 302
    (task,) = firings(callbacks)
    (firing,) = task
    assert firing["trigger_id"] == demo.trigger.pk and firing["fields"]["total"] == "86.40"
    trigger_fire(**firing)
    planned = dict(Delivery.objects.filter(trigger=demo.trigger, recipient=customer.user).values_list(
        "channel", "status_reason"))
    assert sorted(planned) == ["email", "inapp", "mobilepush", "wechat"]
    # This customer has no openid and no app: recorded as unreachable there, not silently dropped.
    assert planned["wechat"] == planned["mobilepush"] == "suppressed:no_address"
