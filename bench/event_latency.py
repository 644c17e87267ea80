"""Event latency: a demo-shop ``Order`` saved as paid -> the customer's inbox row committed.

The seeded trigger "Order paid → customer" (in-app + email, ``demo_shop.demo``) is active; each
of ``--saves`` orders is saved as paid in its own transaction, as a request would, and the
clock runs from the start of the save until the inbox row can be read. Target: p50 <= 20 ms.

``--mode inline`` (default) is what Signalbox does: the save's on-commit callback delivers the
in-app part at once (``notifications.triggers.inline``) and enqueues only the email. ``--mode
queue`` is the path before it, for comparison: the whole firing waits for a worker.

A worker runs beside it either way (it sends the emails, into the capture Outbox): with the
database task backend (``TASK_BACKEND=db``, the embedded setup; the harness's default
"immediate" backend is replaced by it) that is ``manage.py db_worker --no-reload`` polling every
second, as ``make run`` starts it; with ``TASK_BACKEND=rq`` and ``REDIS_URL`` it is an RQ worker
(``config.rq.Worker``, as the README runs it). Start with an empty queue: jobs left in the Redis
database by an earlier run are worked off first and slow the saves down.
``save_ms`` is how long the save itself took, on-commit work included: what a request pays.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _worker(backend: str) -> subprocess.Popen:
    from django.db import connection

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", "DEBUG": "0", "TASKS_LOG_LEVEL": "WARNING"}
    if connection.vendor == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{connection.settings_dict['NAME']}"
    if backend == "rq":
        env["TASK_BACKEND"] = "rq"
        argv = ["manage.py", "rqworker", "default", "--with-scheduler", "--job-class", "django_tasks_rq.Job",
                "--worker-class", "config.rq.Worker"]
    else:
        env["TASK_BACKEND"] = "db"
        argv = ["manage.py", "db_worker", "--no-reload"]
    return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench event_latency")
    parser.add_argument("--saves", type=int, default=500)
    parser.add_argument("--mode", choices=["inline", "queue"], default="inline")
    parser.add_argument("--pause-ms", type=float, default=20, help="between saves, so the worker keeps up")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for one inbox row")
    opts = parser.parse_args(argv)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test.utils import override_settings

    from demo_shop.demo import demo_triggers_ensure
    from demo_shop.models import Customer, Order
    from notifications.models import Notification, RecipientProfile
    from notifications.triggers import inline

    tasks = settings.TASKS
    backend = "rq" if tasks["default"]["BACKEND"].endswith("RQBackend") else "db"
    if backend == "db":
        tasks = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    if opts.mode == "queue":
        inline.INLINE_FIRINGS_PER_TRANSACTION = 0

    seeded = demo_triggers_ensure()
    assert seeded.trigger.is_active and set(seeded.trigger.channels) == {"inapp", "email"}, seeded.trigger.channels
    user, _ = get_user_model().objects.get_or_create(
        username="bench-latency", defaults={"first_name": "Lin", "email": "bench-latency@example.com"}
    )
    RecipientProfile.objects.get_or_create(user=user)
    customer, _ = Customer.objects.get_or_create(user=user)
    have = Order.objects.filter(customer=customer, number__startswith="BL-").count()
    Order.objects.bulk_create(
        Order(customer=customer, number=f"BL-{i:06d}", total=Decimal("42.00")) for i in range(have, opts.saves)
    )
    orders = list(Order.objects.filter(customer=customer, number__startswith="BL-").order_by("pk")[: opts.saves])
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(status=Order.Status.PENDING, paid_at=None)

    worker = _worker(backend)
    latencies, save_times = [], []
    try:
        with override_settings(TASKS=tasks):
            time.sleep(2)  # the worker starts and makes its first poll
            for order in orders:
                last = Notification.objects.filter(recipient=user).order_by("-id").values_list("id", flat=True).first() or 0
                order.status = Order.Status.PENDING
                order.status = Order.Status.PAID
                started = time.perf_counter()
                with transaction.atomic():
                    order.save(update_fields=["status"])
                saved = time.perf_counter()
                deadline = saved + opts.timeout
                while not Notification.objects.filter(recipient=user, id__gt=last).exists():
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"No inbox row {opts.timeout} s after saving {order.number}; is the worker up?")
                    time.sleep(0.001)
                latencies.append((time.perf_counter() - started) * 1000)
                save_times.append((saved - started) * 1000)
                time.sleep(opts.pause_ms / 1000)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "save_p50_ms": round(statistics.median(save_times), 2),
        "save_p99_ms": round(_percentile(save_times, 0.99), 2),
        "saves": len(latencies),
        "mode": opts.mode,
        "task_backend": backend,
        "database": connection.vendor,
        "target_p50_ms": 20,
    }
