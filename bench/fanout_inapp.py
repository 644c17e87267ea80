"""In-app fan-out: one notify() to 10k recipients through the pipeline, inbox rows per second."""

from __future__ import annotations

import argparse
import time


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench fanout_inapp")
    parser.add_argument("--recipients", type=int, default=10_000)
    opts = parser.parse_args(argv)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from channels_adapters.handler import channels
    from notifications.api import notify
    from notifications.models import Category, Delivery, Notification

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

    # Immediate task backend: every send batch runs as its task would on one worker.
    started = time.perf_counter()
    notify(users, title="Scheduled maintenance tonight", body="Read-only from 02:00 to 02:15 UTC.",
           category=category, idempotency_key=key)
    seconds = time.perf_counter() - started

    created = Notification.objects.filter(delivery__idempotency_key__startswith=f"notify:{key}:").count()
    sent = Delivery.objects.filter(idempotency_key__startswith=f"notify:{key}:", status="sent").count()
    assert created == sent == len(users), (created, sent, len(users))
    return {
        "inbox_rows_per_s": round(created / seconds, 1),
        "recipients": len(users),
        "total_ms": round(seconds * 1000, 1),
        "database": connection.vendor,
    }
