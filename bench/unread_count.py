"""Unread-badge latency for a recipient with 100k notifications and 1k broadcasts (target: median
<= 1 ms).

The badge counts unread notifications (a partial index of unread rows) plus the broadcasts the
user sees and has not read (``selectors.inbox_counts``, one statement). The broadcasts are a
mix: most for everyone, a quarter in a category the user opted out of (not counted), and some
already read. ``inbox_page_ms`` is the first inbox page (notifications and broadcasts merged).
On PostgreSQL the badge's statement is prepared once per connection (``notifications.prepared``);
``unprepared_median_ms`` is the same badge planned afresh on each call, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta


def _samples_ms(call, calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _summary(samples: list[float]) -> tuple[float, float, float]:
    """Median, 95th percentile and worst of ``samples`` (ms)."""
    samples = sorted(samples)
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)], samples[-1]


def _median_ms(call, calls: int) -> tuple[float, float, float]:
    return _summary(_samples_ms(call, calls))


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench unread_count")
    parser.add_argument("--notifications", type=int, default=100_000)
    parser.add_argument("--unread", type=int, default=2_000, help="how many of them are unread")
    parser.add_argument("--broadcasts", type=int, default=1_000)
    parser.add_argument("--broadcasts-read", type=int, default=100, help="how many visible broadcasts the user read")
    parser.add_argument("--calls", type=int, default=2_000)
    opts = parser.parse_args(argv)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import override_settings
    from django.utils import timezone

    from notifications.models import Broadcast, BroadcastRead, Category, Notification, Preference
    from notifications.inbox.selectors import inbox_page, unread_count

    User = get_user_model()
    long_ago = timezone.now() - timedelta(days=400)
    user, _ = User.objects.get_or_create(username="bench-unread", defaults={"date_joined": long_ago})
    # A neighbour with a big inbox too, so the index has to pick one recipient out of many.
    neighbour, _ = User.objects.get_or_create(username="bench-unread-neighbour", defaults={"date_joined": long_ago})
    User.objects.filter(pk__in=[user.pk, neighbour.pk]).update(date_joined=long_ago)
    left, _ = Category.objects.get_or_create(key="bench-unread-left", defaults={"name": "Left", "kind": "marketing"})
    Preference.objects.update_or_create(user=user, category=left, channel="inapp", defaults={"enabled": False})
    for who in (user, neighbour):
        have = Notification.objects.filter(recipient=who).count()
        unread_have = Notification.objects.filter(recipient=who, read_at__isnull=True).count()
        if have != opts.notifications or unread_have != opts.unread:
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
    hidden = opts.broadcasts // 4
    if (Broadcast.objects.filter(title__startswith="bench-unread ").count() != opts.broadcasts
            or BroadcastRead.objects.filter(user=user).count() != opts.broadcasts_read):
        Broadcast.objects.filter(title__startswith="bench-unread ").delete()
        now = timezone.now()
        Broadcast.objects.bulk_create(
            (
                Broadcast(title=f"bench-unread {i}", body="Maintenance tonight.", category=left if i < hidden else None,
                          created_at=now - timedelta(hours=opts.broadcasts - i))
                for i in range(opts.broadcasts)
            ),
            batch_size=5_000,
        )
        visible = Broadcast.objects.filter(title__startswith="bench-unread ", category__isnull=True).order_by("id")
        BroadcastRead.objects.bulk_create(
            BroadcastRead(user=user, broadcast_id=pk) for pk in visible.values_list("id", flat=True)[: opts.broadcasts_read]
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    expected = opts.unread + (opts.broadcasts - hidden - opts.broadcasts_read)
    for _ in range(50):  # warm caches and the connection
        count = unread_count(user=user)
    assert count == expected, (count, expected)
    # The baseline, in the same run: the statement planned afresh on every call (PostgreSQL
    # without prepared statements, as behind a pooler that cannot keep them; on SQLite the two
    # are the same). The two alternate in rounds, so a change in the machine's load hits both.
    samples: dict[bool, list[float]] = {True: [], False: []}
    for _round in range(10):
        for prepared in (True, False):
            with override_settings(SIGNALBOX_PREPARED_STATEMENTS=prepared):
                samples[prepared] += _samples_ms(lambda: unread_count(user=user), max(1, opts.calls // 10))
    median, p95, worst = _summary(samples[True])
    unprepared, _p95, _worst = _summary(samples[False])
    page_median, _p95, _worst = _median_ms(lambda: list(inbox_page(user=user).page.object_list), 50)
    return {
        "median_ms": round(median, 4),
        "p95_ms": round(p95, 4),
        "max_ms": round(worst, 4),
        "unprepared_median_ms": round(unprepared, 4),
        "ratio_unprepared_to_prepared": round(unprepared / median, 2),
        "inbox_page_ms": round(page_median, 3),
        "notifications": opts.notifications,
        "unread": opts.unread,
        "broadcasts": opts.broadcasts,
        "broadcasts_hidden": hidden,
        "broadcasts_read": opts.broadcasts_read,
        "unread_total": expected,
        "calls": opts.calls,
        "database": connection.vendor,
        "target_median_ms": 1.0,
    }
