"""A broadcast to 1M users: how long ``notifications.api.broadcast()`` takes (target <= 50 ms).

A broadcast is one row whatever the audience (fan-out on read), so the figure should not move
with ``--users``. The users are created once (raw inserts; cached in the bench database). Each
round sends one broadcast to everyone and one to a category's subscribers, each in its own
transaction with its audit entry, then asks one user's unread badge, which now counts it.
``unread_count_ms`` is that badge read, taken right after the broadcasts. Without a
``DATABASE_URL`` of the caller's the users live in ``var/bench_broadcast.sqlite3``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE = ROOT / "var" / "bench.sqlite3"
CACHED_SQLITE = ROOT / "var" / "bench_broadcast.sqlite3"


def _use_cached_sqlite() -> None:
    """Without a ``DATABASE_URL`` of the caller's, keep the million users in a file of their own,
    so the other benchmarks' shared database stays small."""
    if os.environ.get("DATABASE_URL") != f"sqlite:///{DEFAULT_SQLITE}":
        return
    from django.core.management import call_command
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = str(CACHED_SQLITE)
    call_command("migrate", verbosity=0, interactive=False)


def _ensure_users(count: int) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    User = get_user_model()
    have = User.objects.filter(username__startswith="bench-b-").count()
    if have >= count:
        return
    password = make_password(None)
    joined = User._meta.get_field("date_joined").get_db_prep_save(timezone.now(), connection)
    quote = connection.ops.quote_name
    columns = ("password", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active",
               "date_joined")
    sql = (f"INSERT INTO {quote(User._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
           f"VALUES ({', '.join(['%s'] * len(columns))})")
    step = 50_000
    for start in range(have, count, step):
        rows = [(password, False, f"bench-b-{i}", "", "", f"b{i}@example.com", False, True, joined)
                for i in range(start, min(count, start + step))]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench broadcast")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    opts = parser.parse_args(argv)

    from django.contrib.auth import get_user_model
    from django.db import connection

    from notifications.api import broadcast
    from notifications.models import Broadcast, Category
    from notifications.inbox.selectors import unread_count

    _use_cached_sqlite()
    _ensure_users(opts.users)
    users = get_user_model().objects.filter(username__startswith="bench-b-").count()
    someone = get_user_model().objects.filter(username="bench-b-0").get()
    news, _ = Category.objects.get_or_create(key="bench-news", defaults={"name": "News", "kind": "marketing"})
    Broadcast.objects.filter(title__startswith="bench-broadcast ").delete()
    broadcast(title="bench-broadcast warm-up")  # connection, caches, statements
    before = unread_count(user=someone)

    everyone, subscribers, badge = [], [], []
    for i in range(opts.rounds):
        started = time.perf_counter()
        broadcast(title=f"bench-broadcast {i}", body="Maintenance tonight, 02:00-02:15 UTC.", url="/status/")
        everyone.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        broadcast(title=f"bench-broadcast news {i}", body="What is new this week.", category=news)
        subscribers.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        count = unread_count(user=someone)
        badge.append((time.perf_counter() - started) * 1000)
    assert count == before + 2 * opts.rounds, (count, before, opts.rounds)
    Broadcast.objects.filter(title__startswith="bench-broadcast ").delete()
    return {
        "broadcast_ms": round(statistics.median(everyone), 3),
        "broadcast_max_ms": round(max(everyone), 3),
        "category_broadcast_ms": round(statistics.median(subscribers), 3),
        "unread_count_ms": round(statistics.median(badge), 3),
        "users": users,
        "rounds": opts.rounds,
        "database": connection.vendor,
        "target_ms": 50,
    }
