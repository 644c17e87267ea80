"""Unread-badge latency for a recipient with 100k notifications (target: median <= 2 ms)."""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench unread_count")
    parser.add_argument("--notifications", type=int, default=100_000)
    parser.add_argument("--unread", type=int, default=2_000, help="how many of them are unread")
    parser.add_argument("--calls", type=int, default=2_000)
    opts = parser.parse_args(argv)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from notifications.models import Notification
    from notifications.selectors import unread_count

    User = get_user_model()
    user, _ = User.objects.get_or_create(username="bench-unread")
    # A neighbour with a big inbox too, so the index has to pick one recipient out of many.
    neighbour, _ = User.objects.get_or_create(username="bench-unread-neighbour")
    for who in (user, neighbour):
        have = Notification.objects.filter(recipient=who).count()
        if have != opts.notifications or unread_count(user=who) != opts.unread:
            Notification.objects.filter(recipient=who).delete()
            now = timezone.now()
            read_from = opts.unread
            Notification.objects.bulk_create(
                (
                    Notification(
                        recipient=who,
                        title=f"Notification {i}",
                        body="Your order has shipped.",
                        created_at=now - timedelta(minutes=i),
                        read_at=None if i < read_from else now,
                    )
                    for i in range(opts.notifications)
                ),
                batch_size=5_000,
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    for _ in range(50):  # warm caches and the connection
        unread_count(user=user)
    samples = []
    for _ in range(opts.calls):
        start = time.perf_counter()
        count = unread_count(user=user)
        samples.append((time.perf_counter() - start) * 1000)
    assert count == opts.unread, (count, opts.unread)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 4),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 4),
        "max_ms": round(samples[-1], 4),
        "notifications": opts.notifications,
        "unread": opts.unread,
        "calls": opts.calls,
        "database": connection.vendor,
        "target_median_ms": 2.0,
    }
