"""Trigger fixtures: a shop customer and orders, the order-paid template, and a trigger factory."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from demo_shop.models import Customer, Order
from notifications.models import Category, MessageTemplate, SignalTrigger
from notifications.triggers.cache import triggers_cache_clear
from notifications.triggers.services import trigger_create
from tests.factories import RecipientProfileFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_trigger_cache():
    """Each test starts with no cached copy, as a newly started process would."""
    triggers_cache_clear()
    yield
    triggers_cache_clear()


@pytest.fixture
def registry_snapshot():
    """Registrations made by a test are undone after it (receivers stay connected, harmlessly)."""
    from notifications.triggers import registry as reg

    models, signals = dict(reg.registry.models), dict(reg.registry.signals)
    yield
    reg.registry.models.clear()
    reg.registry.models.update(models)
    reg.registry.signals.clear()
    reg.registry.signals.update(signals)


@pytest.fixture
def order_updates(db) -> Category:
    return Category.objects.get_or_create(
        key="order-updates", defaults={"name": "Order updates", "kind": "transactional", "user_can_opt_out": False}
    )[0]


@pytest.fixture
def paid_template(db, order_updates) -> MessageTemplate:
    return MessageTemplate.objects.create(
        key="order-paid-test", name="Order paid", category=order_updates,
        inapp_title="Order {{ instance.number }} paid", inapp_body="{{ instance.total }}",
        email_subject="Order {{ instance.number }} paid", email_body="Thanks {{ recipient.first_name }}",
    )


@pytest.fixture
def customer(db) -> Customer:
    user = RecipientProfileFactory(user=UserFactory(username="cora", first_name="Cora")).user
    return Customer.objects.create(user=user, company="Acme")


_numbers = iter(range(1, 10**6))


@pytest.fixture
def make_order(customer):
    def make(**fields) -> Order:
        values = {"customer": customer, "number": f"T-{next(_numbers):05d}", "total": Decimal("25.00"),
                  "status": Order.Status.PENDING, **fields}
        return Order.objects.create(**values)

    return make


@pytest.fixture
def make_trigger(db, paid_template, order_updates):
    """A trigger saved through the service (audited, version bumped); active unless told otherwise."""

    def make(**fields) -> SignalTrigger:
        values = {
            "name": "Order paid", "signal": "model.post_save", "model": "demo_shop.order",
            "events": ["created", "updated"], "changed_field": "status", "changed_to": "paid",
            "recipient_path": "customer.user", "template": paid_template, "category": order_updates,
            "channels": ["inapp"], "dedupe_window": timedelta(0), "is_active": True, **fields,
        }
        return trigger_create(trigger=SignalTrigger(**values), actor=None)

    return make


def firings(callbacks) -> list[list[dict]]:
    """Run captured on_commit callbacks with the task's enqueue recorded instead: one list per task.

    The in-app part that the callback delivers at once (``notifications.triggers.inline``) is
    left out, so every matched firing reaches the recorded task whole; the inline delivery has
    its own tests (tests/notifications/triggers/test_inline_inapp.py).
    """
    from unittest import mock

    tasks: list[list[dict]] = []
    fake = mock.Mock()
    fake.enqueue.side_effect = lambda *, firings: tasks.append(firings)
    with mock.patch("notifications.triggers.tasks.trigger_fire_task", fake), \
            mock.patch("notifications.triggers.inline.trigger_fire_local", lambda *, firing: dict(firing)):
        for callback in callbacks:
            callback()
    return tasks
