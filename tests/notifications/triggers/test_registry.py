"""The trigger registry: what may be bound, and what it exposes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

from demo_shop.models import Customer, Order
from notifications.triggers import registry as reg
from notifications.triggers.conditions import TriggerConfigError, compile_trigger


def test_builtins_and_the_demo_shop_are_registered():
    keys = [key for key, _label in reg.signal_choices()]
    assert keys[:5] == ["model.post_save", "model.post_delete", "model.m2m_changed", "auth.user_signed_up",
                        "auth.user_logged_in"]
    models = dict(reg.model_choices())
    assert {"demo_shop.order", "demo_shop.customer", reg.model_label(get_user_model())} <= set(models)
    order = reg.registry.model_for("demo_shop.order")
    assert order.fields == ("customer", "number", "status", "total", "currency", "created_at", "paid_at")
    assert order.recipient_paths == ("customer.user",)
    assert reg.subject_recipient_paths(signal="auth.user_logged_in", model="") == ("self",)
    assert "password" not in reg.subject_fields(signal="auth.user_signed_up", model="")


def test_choices_group_fields_and_paths_by_model():
    fields = dict(reg.field_choices())
    order_group = next(group for label, group in fields.items() if "demo_shop.order" in label)
    assert ("status", "status") in order_group
    paths = dict(reg.recipient_path_choices())
    assert ("customer.user", "customer.user") in next(g for label, g in paths.items() if "demo_shop.order" in label)


@pytest.mark.django_db
def test_instance_fields_are_plain_json_of_the_allow_list(customer):
    order = Order.objects.create(customer=customer, number="SB-1", total=Decimal("19.90"), currency="EUR")
    fields = reg.instance_fields(order)
    assert fields == {
        "id": order.pk, "customer": customer.pk, "number": "SB-1", "status": "pending", "total": "19.90",
        "currency": "EUR", "created_at": order.created_at.isoformat(), "paid_at": None,
    }
    assert json.loads(json.dumps(fields)) == fields
    user_fields = reg.instance_fields(customer.user)
    assert "password" not in user_fields and "email" not in user_fields
    with pytest.raises(LookupError):
        reg.instance_fields(Group(name="not registered"))


def test_json_safe():
    import datetime

    assert reg.json_safe(Decimal("1.50")) == "1.50"
    assert reg.json_safe(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert reg.json_safe(datetime.timedelta(minutes=2)) == 120.0
    assert reg.json_safe({"a": [Decimal("1")]}) == {"a": ["1"]}


def test_recipient_lookups():
    User = get_user_model()
    assert reg.recipient_lookup(Order, "customer.user") == "customer__user"
    assert reg.recipient_lookup(Order, "customer") == "customer__user"  # an object with a user
    assert reg.recipient_lookup(Customer, "user") == "user"
    assert reg.recipient_lookup(Customer, "self") == "user"
    assert reg.recipient_lookup(User, "self") == "pk"
    assert reg.recipient_lookup(Group, "user") == "user"  # to-many (reverse of User.groups)
    for model, path in ((Order, "number"), (Order, "customer.company"), (Order, "nope"), (Customer, "orders")):
        with pytest.raises(ValueError):
            reg.recipient_lookup(model, path)


def test_registration_is_checked_at_start_up(registry_snapshot):
    with pytest.raises(ImproperlyConfigured, match="no field"):
        reg.register_model(Order, fields=["colour"], recipient_paths=[])
    with pytest.raises(ImproperlyConfigured, match="reverse relation"):
        reg.register_model(Customer, fields=["orders"], recipient_paths=[])
    with pytest.raises(ImproperlyConfigured, match="register_model"):
        reg.register_model(Order, fields=["number"], recipient_paths=["customer.company"])
    with pytest.raises(ImproperlyConfigured, match="built-in"):
        reg.register_signal("model.post_save", Signal(), label="x", provides=[])
    with pytest.raises(ImproperlyConfigured, match="app_label.name"):
        reg.register_signal("overdue", Signal(), label="x", provides=[])
    with pytest.raises(ImproperlyConfigured, match="provided argument"):
        reg.register_signal("billing.overdue", Signal(), label="x", provides=["invoice"], recipient_paths=["user"])


def test_a_trigger_on_something_unregistered_cannot_be_compiled():
    row = {"id": 1, "signal": "model.post_save", "model": "auth.group", "events": ["created"], "conditions": [],
           "changed_field": "", "changed_to": ""}
    with pytest.raises(TriggerConfigError) as error:
        compile_trigger(row)
    assert error.value.field == "model"
    with pytest.raises(TriggerConfigError) as error:
        compile_trigger({**row, "signal": "billing.gone"})
    assert error.value.field == "signal"
