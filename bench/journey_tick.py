"""Journey tick throughput: N enrolments due at once, steps advanced per second.

Target (issue 13): >= 10,000 steps/s on SQLite and PostgreSQL with 100,000 enrolments.

The journey is the welcome flow with an A/B split in front: split (50/50) -> send email ->
wait 2 days -> branch on "opened the first email" -> send in-app tip / send reminder email. The
first tick (``first_tick_ms``) runs split, send and the start of the wait for everyone (3 steps
each); the second, at the clock moved two days on, runs the end of the wait, the branch on the
ledger's receipts (a third of the first emails are marked opened beforehand) and the last send
(2 steps each). Every send is planned through the ledger (preferences, suppression, quiet hours,
caps), its send tasks enqueued on the database task backend, not run. ``steps_per_s`` counts the
steps of both ticks over their time and ``cpu_ms`` this process's CPU time over them; ``enter_ms``
is ``journey_enter`` for everyone at once.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench journey_tick")
    parser.add_argument("--enrolments", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1000, help="enrolments per tick chunk (transaction)")
    opts = parser.parse_args(argv)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import override_settings
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from notifications.journeys import engine as _engine
    journeys_tick = _engine.journeys_tick  # looked up at run time (a profiler may wrap it)
    from notifications.journeys.services import journey_enter, journey_publish, journey_save
    from notifications.models import Category, Delivery, Journey, JourneyEnrollment, JourneyStepRun, MessageTemplate

    settings.DEBUG = False
    User = get_user_model()
    n = opts.enrolments
    # A clean slate: earlier runs' journey rows and deliveries.
    JourneyStepRun.objects.filter(enrollment__journey__key="bench-journey").delete()
    JourneyEnrollment.objects.filter(journey__key="bench-journey").delete()
    Journey.objects.filter(key="bench-journey").delete()
    Delivery.objects.filter(idempotency_key__startswith="journey:").delete()
    # On PostgreSQL that clean-up leaves hundreds of thousands of dead rows in the tables and
    # indexes the ticks write (autovacuum, at its default naptime, has not run yet): a running
    # system's tables have been vacuumed, so each run starts from that state, not from the
    # bloat of the one before.
    _vacuum_analyze()
    have = User.objects.filter(username__startswith="bench-j-").count()
    if have < n:
        User.objects.bulk_create(
            [User(username=f"bench-j-{i}", email=f"bench-j-{i}@example.com") for i in range(have, n)], batch_size=5000
        )
    people = list(User.objects.filter(username__startswith="bench-j-").order_by("pk").values_list("pk", flat=True)[:n])
    category, _ = Category.objects.get_or_create(key="bench-journeys", defaults={"name": "Bench journeys", "kind": "marketing"})
    for key in ("bench-j-welcome", "bench-j-tip", "bench-j-reminder"):
        MessageTemplate.objects.get_or_create(key=key, defaults={"name": key, "email_subject": "Hello", "email_body": "Hi",
                                                                 "inapp_title": "Tip"})
    graph = {"start": "ab", "steps": [
        {"id": "ab", "type": "split", "arms": [{"name": "A", "percent": 50, "next": "welcome"},
                                              {"name": "B", "percent": 50, "next": "welcome"}]},
        {"id": "welcome", "type": "send", "template": "bench-j-welcome", "channels": ["email"], "next": "pause"},
        {"id": "pause", "type": "wait", "days": 2, "next": "opened?"},
        {"id": "opened?", "type": "branch", "if": {"step": "welcome", "event": "opened"}, "yes": "tip", "no": "reminder"},
        {"id": "tip", "type": "send", "template": "bench-j-tip", "channels": ["inapp"]},
        {"id": "reminder", "type": "send", "template": "bench-j-reminder", "channels": ["email"]},
    ]}
    journey = journey_save(journey=Journey(key="bench-journey", name="Bench journey", category=category, graph=graph,
                                           reentry=Journey.Reentry.ALWAYS), actor=None)
    journey_publish(journey=journey, actor=None)
    now = timezone.now()
    tasks = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    with override_settings(TASKS=tasks):
        started = time.perf_counter()
        journey_enter(journey=journey, user_ids=people, now=now)
        enter_ms = (time.perf_counter() - started) * 1000
        started, cpu_started = time.perf_counter(), time.process_time()
        first = journeys_tick(now=now, chunk_size=opts.chunk)
        first_ms = (time.perf_counter() - started) * 1000
        cpu_seconds = time.process_time() - cpu_started
        Delivery.objects.filter(idempotency_key__startswith="journey:", recipient_id__in=people[::3]).update(
            status="opened", opened_at=now + timedelta(hours=2)
        )
        # Two days pass before the second tick: autovacuum's analyze has seen the new rows by then.
        _vacuum_analyze(vacuum=False)
        started, cpu_started = time.perf_counter(), time.process_time()
        second = journeys_tick(now=now + timedelta(days=2, seconds=1), chunk_size=opts.chunk)
        second_ms = (time.perf_counter() - started) * 1000
        cpu_seconds += time.process_time() - cpu_started
    steps = first.steps + second.steps
    DBTaskResult.objects.filter(task_path__endswith="deliveries_send_task").delete()
    return {
        "steps_per_s": round(steps / ((first_ms + second_ms) / 1000), 1),
        "first_tick_ms": round(first_ms, 1),
        # CPU time of this process over both ticks (PostgreSQL's own work is in its server): what
        # the ticks cost whatever else shares the cores.
        "cpu_ms": round(cpu_seconds * 1000, 1),
        "second_tick_ms": round(second_ms, 1),
        "enter_ms": round(enter_ms, 1),
        "enrolments": n,
        "steps": steps,
        "deliveries": first.sends + second.sends,
        "completed": second.finished,
        "database": connection.vendor,
    }


def _vacuum_analyze(*, vacuum: bool = True) -> None:
    """PostgreSQL only: VACUUM ANALYZE (or ANALYZE) the tables a tick reads and writes."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    tables = ("notifications_journeyenrollment", "notifications_journeysteprun", "notifications_delivery",
              "notifications_deliveryevent", "notifications_notification", "notifications_trackedlink",
              "django_tasks_database_dbtaskresult")
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"{'VACUUM ANALYZE' if vacuum else 'ANALYZE'} {table}")
