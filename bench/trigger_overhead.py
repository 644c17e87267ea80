"""What signal triggers add to a save: N ``Order.save()`` with 0 and with 5 active triggers.

Target: <= 0.3 ms added per save with 5 active triggers (SQLite and PostgreSQL).

Each save is its own transaction, as in a request. The 5 triggers are a realistic mix on orders:
"paid -> customer" (a watched field; matches the saves that pay an order, one in
``--paid-every``), "cancelled" (a watched field that never reaches its value here), a
created-only trigger, a conditions-only trigger that does not match, and a delete trigger (no
cost on save). A matching save enqueues its task on commit, on the database task backend (what
``make run`` uses) unless the configured backend is RQ.

Phases (receivers off / on with 0 triggers / on with 5) alternate in short blocks, in rotating
order, and the median block of each is reported, so a busy machine's drift hits all three alike.
``added_ms_per_save`` is 5 triggers minus 0 triggers (the per-save token check is in both);
``receivers_ms_per_save`` is 0 triggers minus receivers off: the token check alone.
``--version-check db|redis`` picks where the token is read (``redis`` needs REDIS_URL).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta
from decimal import Decimal

PHASES = ("off", "zero", "five")


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench trigger_overhead")
    parser.add_argument("--saves", type=int, default=2_000, help="saves per phase and round (N)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=10, help="blocks the N saves are split into")
    parser.add_argument("--paid-every", type=int, default=10, help="every n-th save pays an order (a match)")
    parser.add_argument("--version-check", choices=["auto", "db", "redis"], default="auto")
    opts = parser.parse_args(argv)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.db.models.signals import post_delete, post_save, pre_save
    from django.test.utils import override_settings
    from django_tasks_db.models import DBTaskResult

    from demo_shop.models import Customer, Order
    from notifications.models import Category, MessageTemplate, SignalTrigger
    from notifications.triggers import cache, receivers
    from notifications.triggers.registry import registry
    from notifications.triggers.services import trigger_create

    settings.SIGNALBOX_TRIGGER_VERSION_CHECK = opts.version_check
    # Production runs with DEBUG off; DEBUG=1 (a local .env) logs every query, inflating both sides.
    settings.DEBUG = False
    tasks = settings.TASKS
    if tasks["default"]["BACKEND"] == "django_tasks.backends.immediate.ImmediateBackend":
        # The harness defaults to running tasks inline; here the enqueue is what a save pays for.
        tasks = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    block = max(opts.paid_every, opts.saves // opts.blocks)

    User = get_user_model()
    user, _ = User.objects.get_or_create(username="bench-trigger", defaults={"first_name": "Bench"})
    customer, _ = Customer.objects.get_or_create(user=user)
    Order.objects.filter(customer=customer).delete()
    others = 200
    Order.objects.bulk_create(
        [Order(customer=customer, number=f"BT-P{i}", total=Decimal("25.00"))
         for i in range(block // opts.paid_every + 1)]
        + [Order(customer=customer, number=f"BT-O{i}", total=Decimal("25.00"), status="shipped") for i in range(others)]
    )
    pay_pool = list(Order.objects.filter(customer=customer, number__startswith="BT-P").order_by("pk"))
    other_pool = list(Order.objects.filter(customer=customer, number__startswith="BT-O").order_by("pk"))
    category, _ = Category.objects.get_or_create(
        key="bench-orders", defaults={"name": "Bench", "kind": "transactional"}
    )
    template, _ = MessageTemplate.objects.get_or_create(
        key="bench-order-paid", defaults={"name": "Bench order paid", "inapp_title": "Paid {{ instance.number }}"}
    )
    SignalTrigger.objects.filter(name__startswith="bench:").delete()
    common = {"template": template, "category": category, "channels": ["inapp"], "model": "demo_shop.order",
              "recipient_path": "customer.user", "dedupe_window": timedelta(0), "is_active": False}
    saved = {"signal": "model.post_save"}
    triggers = [
        trigger_create(trigger=SignalTrigger(**common, **saved, name="bench: paid", events=["updated"],
                                             changed_field="status", changed_to="paid"), actor=None),
        trigger_create(trigger=SignalTrigger(**common, **saved, name="bench: cancelled", events=["updated"],
                                             changed_field="status", changed_to="cancelled"), actor=None),
        trigger_create(trigger=SignalTrigger(**common, **saved, name="bench: big new order", events=["created"],
                                             conditions=[{"field": "total", "op": "gte", "value": 1000}]), actor=None),
        trigger_create(trigger=SignalTrigger(
            **common, **saved, name="bench: big EUR update", events=["updated"],
            conditions=[{"field": "currency", "op": "eq", "value": "EUR"},
                        {"field": "total", "op": "gte", "value": 500}]), actor=None),
        trigger_create(trigger=SignalTrigger(**common, name="bench: deleted", signal="model.post_delete",
                                             events=["deleted"]), actor=None),
    ]

    def saves() -> float:
        """Milliseconds per save over one block of saves, each in its own transaction."""
        Order.objects.filter(pk__in=[o.pk for o in pay_pool]).update(status="pending", paid_at=None)
        for order in pay_pool:
            order.status, order.paid_at = "pending", None
        other, pay = iter(other_pool * (block // others + 1)), iter(pay_pool)
        with transaction.atomic():  # warm: the cache reload after a switch, statement caches
            other_pool[0].save()
        started = time.perf_counter()
        for i in range(block):
            if i % opts.paid_every == 0:
                order = next(pay)
                order.status = "paid"
            else:
                order = next(other)
                order.total += Decimal("0.01")
            with transaction.atomic():
                order.save()
        return (time.perf_counter() - started) / block * 1000

    def phase(name: str) -> None:
        if name == "off":
            for signal, uid in ((pre_save, "pre_save"), (post_save, "post_save"), (post_delete, "post_delete")):
                signal.disconnect(sender=Order, dispatch_uid=f"signalbox.triggers.{uid}:demo_shop.order")
            return
        receivers._connect(model=registry.model_for("demo_shop.order"))
        # Switched without the services (whose audit entries would pile up here); the post_save
        # safety net does not see a queryset update, so the version is moved by hand.
        SignalTrigger.objects.filter(pk__in=[t.pk for t in triggers]).update(is_active=name == "five")
        cache.trigger_state_bump()

    measured: dict[str, list[float]] = {name: [] for name in PHASES}
    task_rows_before = DBTaskResult.objects.count()
    with override_settings(TASKS=tasks):
        for n in range(opts.rounds * opts.blocks):
            for name in PHASES[n % 3:] + PHASES[:n % 3]:
                phase(name)
                measured[name].append(saves())
        phase("zero")
        enqueued = DBTaskResult.objects.count() - task_rows_before
    DBTaskResult.objects.filter(task_path__endswith="trigger_fire_task").delete()
    SignalTrigger.objects.filter(name__startswith="bench:").delete()
    Order.objects.filter(customer=customer).delete()

    per_save = {name: statistics.median(values) for name, values in measured.items()}
    return {
        "added_ms_per_save": round(per_save["five"] - per_save["zero"], 4),
        "receivers_ms_per_save": round(per_save["zero"] - per_save["off"], 4),
        "added_vs_no_receivers_ms_per_save": round(per_save["five"] - per_save["off"], 4),
        "save_no_receivers_ms": round(per_save["off"], 4),
        "save_0_triggers_ms": round(per_save["zero"], 4),
        "save_5_triggers_ms": round(per_save["five"], 4),
        "ratio_5_vs_0_triggers": round(per_save["five"] / per_save["zero"], 3),
        "saves_per_phase": block * len(measured["five"]),
        "matching_share": round(len(range(0, block, opts.paid_every)) / block, 3),
        "tasks_enqueued": enqueued if tasks["default"]["BACKEND"].endswith("DatabaseBackend") else None,
        "version_check": cache.version_source(),
        "task_backend": tasks["default"]["BACKEND"].rsplit(".", 1)[-1],
        "database": connection.vendor,
        "target_added_ms_per_save": 0.3,
    }
