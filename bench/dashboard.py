"""Server time of the staff analytics at 1M deliveries and 3M receipts (target: <= 300 ms).

Times the analytics page (``/admin/analytics/``, the last 30 days, no filter) through Django's
test client as a logged-in Marketer: middleware, permission checks, the selectors (daily
rollups for past days, the ledger's indexes for the rest) and the template with its chart JSON.
The rollups are left one day behind, so that whatever the time of day at least a full day
(yesterday and today, ``live_days``) is computed live from the ledger.
The median of ``--calls`` requests is ``analytics_page_ms``; the other ``*_ms`` figures are the
filtered htmx fragment, a campaign's page, its recipient table, the live progress fragment and
the dashboard home, measured the same way.

Data: ``--deliveries`` over the last ``--days`` days up to now (campaign runs of ~8,000
recipients plus a steady stream of ``notify()`` traffic over five channels, one campaign sending
right now), with ``--receipts`` receipts (sent, delivered, opened, read, clicked, bounced,
failed, unsubscribed, repeat and machine opens). It is bulk-inserted (``COPY`` on PostgreSQL)
and reused while its counts match and it was generated today; on SQLite without
``DATABASE_URL`` it lives in ``var/bench_dashboard.sqlite3``. The rollups are rebuilt from
scratch (``rollup_build_s``) and, after the measurements, the scheduler's next incremental tick
is timed (``rollup_tick_ms``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE = ROOT / "var" / "bench.sqlite3"
CACHED_SQLITE = ROOT / "var" / "bench_dashboard.sqlite3"
MARKER = "bench-dashboard"  # Category key whose description records what was generated
PREFIX = "bench-dash:"
CHANNELS = ["email", "inapp", "sms", "webpush", "chat"]
CHANNEL_WEIGHTS = [45, 30, 12, 8, 5]
CATEGORIES = ["newsletter", "promotions", "order-updates", "security", "product-news"]
CAMPAIGN_SIZE = 8_000


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench dashboard")
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--receipts", type=int, default=3_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=15, help="requests per figure (the median is reported)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--regenerate", action="store_true", help="generate the data even if it is there")
    opts = parser.parse_args(argv)

    logging.getLogger("dashboard.analytics").setLevel(logging.WARNING)
    _use_cached_sqlite()
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from dashboard.analytics import analytics_rollup_refresh, analytics_rollup_tick
    from dashboard.analytics.figures import site_today
    from dashboard.models import AnalyticsRollupState

    generated_s = _ensure_data(opts)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    # The rollups as the scheduler leaves them, but one day behind, so that whatever the time of
    # day at least a full day (yesterday and today) is computed live from the ledger.
    start = time.perf_counter()
    AnalyticsRollupState.objects.all().delete()
    analytics_rollup_refresh(since=None, until=site_today() - timedelta(days=2))
    rollup_build_s = time.perf_counter() - start

    client = Client(HTTP_HOST="localhost")
    client.force_login(_marketer())
    campaign_id, big_run_ids = _biggest_campaign()
    htmx = {"HTTP_HX_REQUEST": "true"}
    analytics = reverse("dashboard:analytics")
    figures = {}
    queries = {}
    for name, url, params, headers in [
        ("analytics_page_ms", analytics, {}, {}),
        ("analytics_filtered_ms", analytics, {"start": _days_ago(89), "end": _days_ago(0), "channel": "email"}, htmx),
        ("campaign_page_ms", reverse("dashboard:campaign", args=[campaign_id]), {}, {}),
        ("recipients_ms", reverse("dashboard:campaign_recipients", args=[campaign_id]), {"status": "failed"}, htmx),
        ("progress_ms", reverse("dashboard:runs_progress"), {}, htmx),
        ("home_ms", reverse("admin:index"), {}, {}),
    ]:
        figures[name], queries[name] = _time(client, url, params, headers, calls=opts.calls)

    start = time.perf_counter()
    analytics_rollup_tick(force=True)  # what the scheduler does next: yesterday into the rollups
    rollup_tick_ms = (time.perf_counter() - start) * 1000

    from notifications.models import Delivery, DeliveryEvent

    return {
        "analytics_page_ms": figures.pop("analytics_page_ms"),
        "deliveries": Delivery.objects.count(),
        "receipts": DeliveryEvent.objects.count(),
        **figures,
        "analytics_page_queries": queries["analytics_page_ms"],
        "live_days": 2,
        "rollup_build_s": round(rollup_build_s, 2),
        "rollup_tick_ms": round(rollup_tick_ms, 1),
        "generated_s": generated_s,
        "calls": opts.calls,
        "database": connection.vendor,
        "target_ms": 300,
    }


def _time(client, url: str, params: dict, headers: dict, *, calls: int) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):  # warm caches and the connection
        response = client.get(url, params, **headers)
        assert response.status_code == 200, (url, response.status_code)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        client.get(url, params, **headers)
        samples.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as captured:
        client.get(url, params, **headers)
    return round(statistics.median(samples), 1), len(captured)


def _days_ago(n: int) -> str:
    from dashboard.analytics.figures import site_today

    return (site_today() - timedelta(days=n)).isoformat()


def _use_cached_sqlite() -> None:
    """Without a ``DATABASE_URL`` of the caller's, keep this data in its own SQLite file."""
    if os.environ.get("DATABASE_URL") != f"sqlite:///{DEFAULT_SQLITE}":
        return
    from django.core.management import call_command
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = str(CACHED_SQLITE)
    call_command("migrate", verbosity=0, interactive=False)


# --- Data ----------------------------------------------------------------------------------


def _ensure_data(opts) -> float | None:
    """Generate the data unless what is there matches; returns the seconds spent, or None."""
    from django.utils import timezone

    from dashboard.analytics.figures import site_today
    from notifications.models import Category, Delivery, DeliveryEvent

    wanted = {"deliveries": opts.deliveries, "receipts": opts.receipts, "days": opts.days, "seed": opts.seed, "layout": 2}
    marker = Category.objects.filter(key=MARKER).first()
    if marker and not opts.regenerate:
        have = json.loads(marker.description or "{}")
        if (
            {k: have.get(k) for k in wanted} == wanted
            and have.get("generated_on") == site_today().isoformat()
            and Delivery.objects.filter(idempotency_key__startswith=PREFIX).count() == opts.deliveries
            and DeliveryEvent.objects.filter(source__startswith="bench").count() == opts.receipts
        ):
            return None
    start = time.perf_counter()
    _wipe()
    _generate(opts, now=timezone.now())
    described = json.dumps({**wanted, "generated_on": site_today().isoformat()})
    Category.objects.update_or_create(key=MARKER, defaults={"name": "Bench marker", "description": described})
    return round(time.perf_counter() - start, 1)


def _wipe() -> None:
    from django.db import connection, transaction

    from notifications.models import Campaign, CampaignRun, Delivery, DeliveryEvent, Notification, TrackedLink

    tables = {m: m._meta.db_table for m in (Delivery, DeliveryEvent, Notification, TrackedLink, CampaignRun, Campaign)}
    with transaction.atomic(), connection.cursor() as cursor:
        like = f"{PREFIX}%"
        mine = f"SELECT id FROM {tables[Delivery]} WHERE idempotency_key LIKE %s"
        for model in (DeliveryEvent, Notification, TrackedLink):
            cursor.execute(f"DELETE FROM {tables[model]} WHERE delivery_id IN ({mine})", [like])
        cursor.execute(f"DELETE FROM {tables[Delivery]} WHERE idempotency_key LIKE %s", [like])
        cursor.execute(
            f"DELETE FROM {tables[CampaignRun]} WHERE campaign_id IN (SELECT id FROM {tables[Campaign]} WHERE name LIKE %s)",
            ["Bench %"],
        )
        cursor.execute(f"DELETE FROM {tables[Campaign]} WHERE name LIKE %s", ["Bench %"])


def _generate(opts, *, now: datetime) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from notifications.models import Audience, Campaign, CampaignRun, Category, Delivery, DeliveryEvent, MessageTemplate

    rng = random.Random(opts.seed)
    User = get_user_model()
    if User.objects.filter(username__startswith="bench-dash-").count() < opts.recipients:
        User.objects.filter(username__startswith="bench-dash-").delete()
        password = make_password(None)
        User.objects.bulk_create(
            (User(username=f"bench-dash-{i}", email=f"bd{i}@example.com", password=password) for i in range(opts.recipients)),
            batch_size=5_000,
        )
    users = list(User.objects.filter(username__startswith="bench-dash-").values_list("id", flat=True)[: opts.recipients])
    categories = [
        Category.objects.get_or_create(key=f"bench-{key}", defaults={"name": key.replace("-", " ").title()})[0].pk
        for key in CATEGORIES
    ]
    audience, _ = Audience.objects.get_or_create(name="Bench dashboard audience")
    template, _ = MessageTemplate.objects.get_or_create(key="bench-dashboard", defaults={"name": "Bench", "email_subject": "Hi"})

    span = timedelta(days=opts.days)
    first = now - span
    n_campaigns = max(1, int(opts.deliveries * 0.48) // CAMPAIGN_SIZE) if opts.deliveries >= 4 * CAMPAIGN_SIZE else 2
    size = min(CAMPAIGN_SIZE, max(1, int(opts.deliveries * 0.48) // n_campaigns))
    runs = []  # (run id, start, channels, category, live)
    for k in range(n_campaigns):
        live = k == n_campaigns - 1  # the last one is sending right now
        start = now - timedelta(minutes=20) if live else first + span * (k + 0.5) / n_campaigns
        channels = rng.sample(["email", "inapp", "sms"], k=rng.choice([1, 1, 2]))
        category = categories[k % 2]  # newsletter / promotions
        campaign = Campaign.objects.create(
            name=f"Bench campaign {k + 1}", audience=audience, template=template, category_id=category, channels=channels,
            status=Campaign.Status.RUNNING if live else Campaign.Status.COMPLETED, created_at=start - timedelta(days=1),
        )
        run = CampaignRun.objects.create(
            campaign=campaign, occurrence=start, started_at=start, planned=size,
            status=CampaignRun.Status.SENDING if live else CampaignRun.Status.COMPLETED,
            finished_at=None if live else start + timedelta(hours=1),
        )
        runs.append((run.pk, start, channels, category, live))

    delivery_cols = [f.column for f in Delivery._meta.concrete_fields]
    event_cols = [f.column for f in DeliveryEvent._meta.concrete_fields]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {Delivery._meta.db_table}")
        next_id = cursor.fetchone()[0] + 1
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {DeliveryEvent._meta.db_table}")
        next_event_id = cursor.fetchone()[0] + 1

    vendor = connection.vendor
    # Ids grow with time, as in a live ledger (rows are inserted when they happen), so a day's
    # rows sit together in the table as they would in production.
    plan = []
    campaign_total = size * len(runs)
    for i in range(opts.deliveries):
        if i < campaign_total:
            _run_id, start, _channels, _category, live = runs[i // size]
            plan.append((start + timedelta(seconds=rng.uniform(0, 1200 if live else 1800)), i // size))
        else:
            plan.append((first + timedelta(seconds=rng.uniform(0, span.total_seconds() - 60)), None))
    plan.sort(key=lambda item: item[0])
    deliveries, events, openable = [], [], []
    for i, (created, slot) in enumerate(plan):
        pk = next_id + i
        if slot is not None:
            run_id, _start, channels, category, live = runs[slot]
            channel = channels[i % len(channels)]
        else:
            run_id, live, category = None, False, rng.choice(categories)
            channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
        row, steps = _outcome(rng, channel=channel, created=created, now=now, live=live)
        user = users[i % len(users)]
        deliveries.append(_delivery_row(delivery_cols, vendor, pk=pk, i=i, user=user, channel=channel, category=category,
                                        run_id=run_id, created=created, **row))
        for kind, when, data in steps:
            events.append((kind, pk, when, data))
        if row["status"] in ("opened", "read", "clicked"):
            openable.append((pk, row["opened_at"] or row["read_at"] or row["clicked_at"]))
    del plan
    # Repeat opens (the pixel loads again) make up the receipts asked for; a few are machine opens.
    while len(events) < opts.receipts and openable:
        pk, when = openable[rng.randrange(len(openable))]
        repeat = min(now, when + timedelta(seconds=rng.expovariate(1 / 7200)))
        events.append(("opened", pk, repeat, {"machine_open": True} if rng.random() < 0.1 else {}))
    del events[opts.receipts :]
    events.sort(key=lambda event: event[2])
    event_rows = [
        _event_row(event_cols, vendor, pk=next_event_id + n, kind=kind, delivery_id=pk, when=when, data=data)
        for n, (kind, pk, when, data) in enumerate(events)
    ]
    with transaction.atomic():
        _bulk_insert(Delivery._meta.db_table, delivery_cols, deliveries)
        _bulk_insert(DeliveryEvent._meta.db_table, event_cols, event_rows)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (Delivery, DeliveryEvent):
                table = model._meta.db_table
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")


# Per channel: bounces after a send (of every send, failures included), what a seen message is
# recorded as, unsubscribes after a click, the address shape.
BOUNCE_RATE = {"email": 0.06}
SEEN_KIND = {"inapp": "read"}
UNSUBSCRIBE_RATE = {"email": 0.02}
ADDRESS = {"email": "bd{user}@example.com"}


def _outcome(rng: random.Random, *, channel: str, created: datetime, now: datetime, live: bool):
    """What became of one delivery: its status, timestamps and receipts (kind, when, data)."""
    row = dict(status="sent", sent_at=None, delivered_at=None, opened_at=None, read_at=None, clicked_at=None,
               failed_at=None, reason="")
    steps = []
    if live and rng.random() < 0.45:
        row["status"] = "planned"  # not sent yet
        return row, steps
    roll = rng.random()
    if roll < 0.02:
        row.update(status="suppressed", reason="suppressed:opted_out")
        return row, steps
    at = min(now, created + timedelta(seconds=rng.uniform(0.5, 40)))
    if roll < 0.035:
        row.update(status="failed", failed_at=at, reason="timeout")
        return row, [("failed", at, {"reason": "timeout"})]
    row["sent_at"] = at
    steps.append(("sent", at, {}))
    if roll < BOUNCE_RATE.get(channel, 0.0):
        bounced = min(now, at + timedelta(seconds=rng.uniform(5, 600)))
        row.update(status="bounced", reason="hard_bounce:550")
        steps.append(("bounced", bounced, {"reason": "550 5.1.1 user unknown"}))
        return row, steps
    at = min(now, at + timedelta(seconds=rng.uniform(0.1, 90)))
    row.update(status="delivered", delivered_at=at)
    steps.append(("delivered", at, {}))
    engage = rng.random()
    opens = {"email": 0.55, "inapp": 0.75, "sms": 0.0, "webpush": 0.0, "chat": 0.0}[channel]
    if engage < opens:
        opened = at + timedelta(seconds=rng.expovariate(1 / 10800))
        if opened <= now:
            kind = SEEN_KIND.get(channel, "opened")
            row.update(status=kind, **{f"{kind}_at": opened})
            steps.append((kind, opened, {}))
            at = opened
    if engage < 0.14:
        clicked = at + timedelta(seconds=rng.uniform(5, 900))
        if clicked <= now:
            row.update(status="clicked", clicked_at=clicked)
            steps.append(("clicked", clicked, {}))
            if channel in UNSUBSCRIBE_RATE and rng.random() < UNSUBSCRIBE_RATE[channel]:
                steps.append(("unsubscribed", min(now, clicked + timedelta(seconds=30)), {}))
    return row, steps


def _value(column: str, value, vendor: str):
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ") if vendor == "sqlite" else value
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def _delivery_row(columns, vendor, *, pk, i, user, channel, category, run_id, created, status, reason, **stamps):
    values = {
        "id": pk, "idempotency_key": f"{PREFIX}{i}", "recipient_id": user, "channel": channel, "category_id": category,
        "address": ADDRESS.get(channel, "{channel}:{user}").format(channel=channel, user=user), "status": status,
        "status_reason": reason, "content": {}, "run_id": run_id, "trigger_id": None, "webhook_endpoint_id": None,
        "provider_message_id": "",
        "attempts": 1 if stamps.get("sent_at") else 0, "next_attempt_at": None, "lease_owner": "",
        "lease_expires_at": None, "last_error": reason if status in ("failed", "bounced") else "", "created_at": created,
        **stamps,
    }
    return tuple(_value(column, values[column], vendor) for column in columns)


def _event_row(columns, vendor, *, pk, kind, delivery_id, when, data):
    values = {"id": pk, "delivery_id": delivery_id, "kind": kind, "source": "bench", "provider_event_id": None,
              "occurred_at": when, "data": data, "hits": 1}
    return tuple(_value(column, values[column], vendor) for column in columns)


def _bulk_insert(table: str, columns: list[str], rows: list[tuple]) -> None:
    from django.db import connection

    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join(["%s"] * len(columns))
        for start in range(0, len(rows), 50_000):
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows[start : start + 50_000])


# --- Who looks, and at what -----------------------------------------------------------------


def _marketer():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from accounts.roles import roles_ensure

    roles_ensure()
    user, created = get_user_model().objects.get_or_create(username="bench-dash-marketer", defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name="Marketers"))
    return user


def _biggest_campaign() -> tuple[int, list[int]]:
    from notifications.models import CampaignRun

    # The campaign sending now: its figures are computed live from the ledger, the costlier path.
    run = CampaignRun.objects.filter(campaign__name__startswith="Bench campaign").order_by("-started_at").first()
    return run.campaign_id, [run.pk]
