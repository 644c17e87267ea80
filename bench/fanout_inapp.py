"""In-app fan-out: one notify() to 10k recipients, inbox rows per second WITH the ledger.

Target: >= 30k rows/s on SQLite (the simplest peer, django-notifications' ``notify.send`` with
one ``bulk_create``, does 13.5-15k here), >= 20k on PostgreSQL. Everything a notify() does is
in the figure: reading the recipients, their decisions (opt-outs, suppressions, caps), the ledger
rows, the inbox rows and the receipts, one transaction; the inbox is written while planning
(``notifications.ledger.local``), so no send task runs. A notify() to two people warms the
process up first (imports, compiled statements), and the heap is collected before the clock
starts (``gc.collect()``); collections during the run count. The start-up heap is frozen as in
every Signalbox process (``ops/heap.py``); ``--unfrozen`` measures without that.
"""

from __future__ import annotations

import argparse
import gc
import time


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench fanout_inapp")
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--unfrozen", action="store_true",
                        help="gc.unfreeze() first: the start-up heap is walked by every full collection again, as "
                             "before ops/heap.py (the comparison for SIGNALBOX_FREEZE_STARTUP_HEAP)")
    opts = parser.parse_args(argv)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from channels_adapters.handler import channels
    from notifications.api import notify
    from notifications.models import Category, Delivery, DeliveryEvent, Notification, NotificationContent

    settings.NOTIFICATION_CHANNELS = {"inapp": {"BACKEND": "channels_adapters.inapp.InappChannel", "OPTIONS": {}}}
    channels.reset()
    User = get_user_model()
    have = User.objects.filter(username__startswith="bench-fan-").count()
    if have < opts.recipients:
        password = make_password(None)
        User.objects.bulk_create(
            (User(username=f"bench-fan-{i}", password=password) for i in range(have, opts.recipients)), batch_size=2000
        )
    users = list(
        User.objects.filter(username__startswith="bench-fan-").order_by("id").values_list("id", flat=True)[: opts.recipients]
    )
    category, _ = Category.objects.get_or_create(key="bench-system", defaults={"name": "Bench", "kind": "system"})
    key = f"bench-fan-{time.time_ns()}"
    # Warm-up: the first notify() of a process imports and compiles what every later one reuses.
    notify(users[:2], title="Warm-up", category=category, idempotency_key=f"{key}-warm-up")
    contents_before = NotificationContent.objects.count()

    if opts.unfrozen:
        gc.unfreeze()
    gc.collect()
    full = []
    gc.callbacks.append(lambda phase, info: full.append(1) if phase == "stop" and info["generation"] == 2 else None)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = notify(users, title="Scheduled maintenance tonight", body="Read-only from 02:00 to 02:15 UTC.",
                    category=category, idempotency_key=key)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    gc.callbacks.pop()

    mine = Delivery.objects.filter(idempotency_key__startswith=f"notify:{key}:")
    created = Notification.objects.filter(delivery__in=mine).count()
    sent = mine.filter(status="sent").count()
    receipts = DeliveryEvent.objects.filter(delivery__in=mine, kind="sent").count()
    assert created == sent == receipts == len(users) == result.delivered, (created, sent, receipts, len(users))
    return {
        "inbox_rows_per_s": round(created / seconds, 1),
        "recipients": len(users),
        "total_ms": round(seconds * 1000, 1),
        # CPU time of this process (Python and SQLite's own work; PostgreSQL's is in its server):
        # what the fan-out costs whatever else shares the cores.
        "cpu_ms": round(cpu_seconds * 1000, 1),
        "inbox_rows_per_cpu_s": round(created / cpu_seconds, 1),
        "ledger_rows": sent,
        "receipts": receipts,
        "shared_contents": NotificationContent.objects.count() - contents_before,
        "database": connection.vendor,
        # Objects frozen at start-up (ops/heap.py; 0 with --unfrozen) and the full collections
        # that ran during the fan-out.
        "startup_heap_frozen": gc.get_freeze_count(),
        "full_collections": len(full),
        "target_rows_per_s": 30_000 if connection.vendor == "sqlite" else 20_000,
    }
