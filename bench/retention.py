"""Data retention at 1M old deliveries while a campaign-sized stream of messages is sent.

Inserts ``--deliveries`` deliveries spread over ``--days`` days that ended a year ago (one
INSERT ... SELECT: ``generate_series`` on PostgreSQL, a recursive CTE on SQLite), with their
receipts (sent for each one that went out, delivered, opened, clicked, failed), a tenth in a
completed campaign run; builds the analytics rollups; reads the analytics of those days; then
starts ``bench._retention_sender`` in its own process (``notify()`` to 50 people at a time,
email and inbox, through the whole pipeline) and purges with ``retention_apply`` (no time
budget, batches of ``--batch``) while it sends. Prints rows deleted per second (deliveries and
their receipts), the longest single delete transaction (and the median and 95th percentile of
all of them), whether the analytics of the purged
days read the same afterwards, and what the sender saw (errors, its slowest call).

Uses ``var/bench_retention.sqlite3`` unless ``DATABASE_URL`` is set; the purge removes what it
inserted, so every run starts from the same place.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE = ROOT / "var" / "bench.sqlite3"
OWN_SQLITE = ROOT / "var" / "bench_retention.sqlite3"
PREFIX = "bench-ret:"


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench retention")
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30, help="days the old deliveries are spread over")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--no-sender", action="store_true", help="purge without the concurrent sender")
    opts = parser.parse_args(argv)

    logging.getLogger("dashboard.analytics").setLevel(logging.WARNING)
    logging.getLogger("ops.retention").setLevel(logging.WARNING)
    _use_own_sqlite()
    from django.conf import settings
    from django.db import connection

    from dashboard.analytics import AnalyticsFilters, DayRange, analytics_figures, analytics_rollup_refresh
    from dashboard.analytics.figures import site_today
    from dashboard.models import AnalyticsRollupState
    from notifications.models import Delivery, DeliveryEvent
    from ops.retention import retention_apply

    settings.SIGNALBOX_RETAIN_DELIVERIES_DAYS = "180"
    for kind in ("OUTBOX", "IMPORTS", "REPORTS", "AUDIT"):
        setattr(settings, f"SIGNALBOX_RETAIN_{kind}_DAYS", "")
    today = site_today()
    first_day = today - timedelta(days=365 + opts.days)
    last_day = today - timedelta(days=366)
    campaign_id = _campaign()

    start = time.perf_counter()
    _insert(opts.deliveries, first_day=first_day, days=opts.days, run_id=_run(campaign_id))
    generated_s = time.perf_counter() - start
    with connection.cursor() as cursor:
        # A year-old ledger has long been vacuumed; freshly inserted rows would make the first
        # delete batches pay for setting their hint bits.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    receipts = DeliveryEvent.objects.filter(delivery__idempotency_key__startswith=PREFIX).count()

    start = time.perf_counter()
    AnalyticsRollupState.objects.all().delete()
    analytics_rollup_refresh(since=None)
    rollup_build_s = time.perf_counter() - start

    def readings() -> list:
        old = DayRange(first_day - timedelta(days=1), last_day + timedelta(days=1))
        out = []
        for filters in (AnalyticsFilters(days=old), AnalyticsFilters(days=old, campaign_id=campaign_id),
                        AnalyticsFilters(days=old, channel="email")):
            figures = analytics_figures(filters=filters)
            out.append((figures.totals.as_dict(), {str(d): c.as_dict() for d, c in figures.by_day.items()},
                        {str(k): c.as_dict() for k, c in figures.by_run.items()}, figures.opens.cells))
        return out

    before = readings()
    sender = None if opts.no_sender else _Sender()
    start = time.perf_counter()
    batch_ms: list[float] = []
    result = retention_apply(
        kinds=["deliveries"], batch=opts.batch, budget=timedelta.max, on_batch=lambda _k, _n, ms: batch_ms.append(ms)
    )
    purge_s = time.perf_counter() - start
    sent = sender.finish() if sender else {}
    after = readings()
    [deliveries] = result.kinds
    left = Delivery.objects.filter(idempotency_key__startswith=PREFIX).count()
    deleted_events = receipts - DeliveryEvent.objects.filter(delivery__idempotency_key__startswith=PREFIX).count()
    return {
        "deleted_rows_per_s": round((deliveries.deleted + deleted_events) / purge_s),
        "longest_delete_ms": round(deliveries.longest_ms, 1),
        "median_delete_ms": round(statistics.median(batch_ms), 1) if batch_ms else 0,
        "p95_delete_ms": round(sorted(batch_ms)[int(0.95 * (len(batch_ms) - 1))], 1) if batch_ms else 0,
        "analytics_unchanged": after == before,
        "deliveries_deleted": deliveries.deleted,
        "receipts_deleted": deleted_events,
        "deliveries_per_s": round(deliveries.deleted / purge_s),
        "batches": deliveries.batches,
        "batch": opts.batch,
        "purge_s": round(purge_s, 1),
        "left_of_inserted": left,
        "sender_errors": sent.get("errors"),
        "sender_messages": sent.get("messages"),
        "sender_call_p50_ms": sent.get("call_p50_ms"),
        "sender_call_max_ms": sent.get("call_max_ms"),
        "rollup_build_s": round(rollup_build_s, 1),
        "generated_s": round(generated_s, 1),
        "database": connection.vendor,
    }


class _Sender:
    """``bench._retention_sender`` in its own process against this database."""

    def __init__(self) -> None:
        from django.db import connection

        self.dir = tempfile.mkdtemp(prefix="signalbox-retention-")
        self.stop = Path(self.dir) / "stop"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TASK_BACKEND": "immediate"}
        if connection.vendor == "sqlite":
            env["DATABASE_URL"] = f"sqlite:///{connection.settings_dict['NAME']}"
        # Its log goes to a file, not a pipe nobody reads while it runs: a full pipe (64 KB of
        # task log lines) would block the sender in a write and look like a stall of the send path.
        self.log = Path(self.dir) / "sender.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench._retention_sender", "--stop-file", str(self.stop)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
            )
        deadline = time.monotonic() + 120
        while not Path(f"{self.stop}.ready").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the sender did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        time.sleep(1.0)  # let it get into its stride before the purge starts

    def finish(self) -> dict:
        self.stop.touch()
        out, _err = self.process.communicate(timeout=120)
        if self.process.returncode:
            raise RuntimeError(f"the sender failed: {self.log.read_text()[-2000:]}")
        return json.loads(out.strip().splitlines()[-1])


def _campaign() -> int:
    from notifications.models import Audience, Campaign, Category, MessageTemplate

    category, _ = Category.objects.get_or_create(key="bench-ret", defaults={"name": "Bench retention"})
    audience, _ = Audience.objects.get_or_create(name="Bench retention")
    template, _ = MessageTemplate.objects.get_or_create(key="bench-ret", defaults={"name": "Bench", "email_subject": "Hi"})
    campaign, _ = Campaign.objects.get_or_create(
        name="Bench retention: last year's sale",
        defaults={"audience": audience, "template": template, "category": category, "channels": ["email"],
                  "status": Campaign.Status.COMPLETED},
    )
    return campaign.pk


def _run(campaign_id: int) -> int:
    from notifications.models import CampaignRun

    occurrence = datetime.now(UTC) - timedelta(days=400) + timedelta(microseconds=time.time_ns() % 1_000_000)
    return CampaignRun.objects.create(
        campaign_id=campaign_id, occurrence=occurrence, status=CampaignRun.Status.COMPLETED, started_at=occurrence,
        finished_at=occurrence,
    ).pk


# Status of delivery g by g % 10: mostly delivered, some opened/clicked, failures, suppressions.
STATUSES = ["sent", "delivered", "delivered", "delivered", "opened", "opened", "clicked", "failed", "suppressed", "read"]


def _insert(n: int, *, first_day, days: int, run_id: int) -> None:
    """``n`` deliveries over ``days`` days from ``first_day`` (UTC seconds spread over each day),
    then their receipts, each with one INSERT ... SELECT."""
    from django.db import connection, transaction

    from dashboard.analytics.figures import day_start
    from notifications.models import Delivery, DeliveryEvent

    base = int(day_start(first_day).timestamp())
    table, events = Delivery._meta.db_table, DeliveryEvent._meta.db_table
    status = "CASE g % 10 " + " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(STATUSES)) + " END"
    channel = "CASE g % 5 WHEN 0 THEN 'email' WHEN 1 THEN 'email' WHEN 2 THEN 'inapp' WHEN 3 THEN 'sms' ELSE 'webpush' END"
    seconds = f"((g % {days}) * 86400 + (g * 7919) % 86000)"
    if connection.vendor == "postgresql":
        series = f"generate_series(1::bigint, {n}) AS g"
        created = f"to_timestamp({base} + {seconds})"
        later = "{created} + interval '{minutes} minutes'"
        json_empty = "'{}'::jsonb"
    else:
        series = f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) SELECT g FROM s)"
        created = f"strftime('%Y-%m-%d %H:%M:%S', {base} + {seconds}, 'unixepoch')"
        later = "strftime('%Y-%m-%d %H:%M:%S', {created}, '+{minutes} minutes')"
        json_empty = "'{}'"

    def stamp(statuses: list[str], minutes: int) -> str:
        listed = ", ".join(f"'{s}'" for s in statuses)
        return f"CASE WHEN {status} IN ({listed}) THEN {later.format(created=created, minutes=minutes)} END"

    went = ["sent", "delivered", "opened", "clicked", "read"]
    sql = f"""
        INSERT INTO {table} (idempotency_key, recipient_id, channel, category_id, address, status, status_reason,
            content, run_id, trigger_id, provider_message_id, attempts, next_attempt_at, lease_owner,
            lease_expires_at, last_error, created_at, sent_at, delivered_at, opened_at, clicked_at, read_at, failed_at)
        SELECT '{PREFIX}' || '{run_id}:' || g, NULL, {channel}, NULL, 'r' || g || '@example.com', {status}, '',
            {json_empty}, CASE WHEN g % 10 = 0 THEN {run_id} END, NULL, '', 1, NULL, '',
            NULL, '', {created}, {stamp(went, 1)}, {stamp(["delivered", "opened", "clicked", "read"], 2)},
            {stamp(["opened", "clicked"], 60)}, {stamp(["clicked"], 61)}, {stamp(["read"], 30)}, {stamp(["failed"], 1)}
        FROM {series}
    """  # noqa: S608 - numbers and constants only
    receipt = f"""
        INSERT INTO {events} (delivery_id, kind, source, provider_event_id, occurred_at, data, hits)
        SELECT id, '@KIND@', 'bench', NULL, @AT@, {json_empty}, 1 FROM {table}
        WHERE idempotency_key LIKE '{PREFIX}{run_id}:%' AND @AT@ IS NOT NULL
    """  # noqa: S608
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
        for kind, column in [("sent", "sent_at"), ("delivered", "delivered_at"), ("opened", "opened_at"),
                             ("clicked", "clicked_at"), ("read", "read_at"), ("failed", "failed_at")]:
            cursor.execute(receipt.replace("@KIND@", kind).replace("@AT@", column))


def _use_own_sqlite() -> None:
    """Without a ``DATABASE_URL`` of the caller's, work in a SQLite file of its own (the purge
    deletes every delivery older than 180 days, whoever made it)."""
    if os.environ.get("DATABASE_URL") != f"sqlite:///{DEFAULT_SQLITE}":
        return
    from django.core.management import call_command
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = str(OWN_SQLITE)
    call_command("migrate", verbosity=0, interactive=False)
