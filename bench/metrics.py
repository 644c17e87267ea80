"""One scrape of ``/metrics`` at 1M deliveries and 3M receipts (issue 11: every query cheap at 1M).

Times ``GET /metrics`` through Django's test client with the bearer token (middleware, access
check, the collector's eleven queries, the exposition): the median of ``--calls`` scrapes is
``scrape_ms``. ``ledger_count_ms`` is the scheduler's count of the ledger by channel and status,
which scrapes only read. The data is the dashboard bench's (``bench/dashboard.py``: the same
options, generated once and reused, including a campaign sending right now), plus ``--backlog``
deliveries made due and unclaimed, so the queue depth has something to count.
"""

from __future__ import annotations

import argparse
import statistics
import time


def run(argv: list[str]) -> dict:
    from . import dashboard

    parser = argparse.ArgumentParser(prog="python -m bench metrics")
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--receipts", type=int, default=3_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=20_000, help="deliveries due and unclaimed during the scrapes")
    parser.add_argument("--calls", type=int, default=15, help="scrapes (the median is reported)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--regenerate", action="store_true", help="generate the data even if it is there")
    opts = parser.parse_args(argv)

    dashboard._use_cached_sqlite()
    from django.conf import settings
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from notifications.models import Delivery, DeliveryEvent
    from ops.services import ledger_count

    generated_s = dashboard._ensure_data(opts)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    settings.SIGNALBOX_METRICS_TOKEN = token = "bench-metrics-token"
    start = time.perf_counter()
    ledger_count(now=timezone.now(), force=True)
    ledger_count_ms = (time.perf_counter() - start) * 1000

    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    # The backlog exists only while we scrape: the cached data stays as the dashboard bench left it.
    with transaction.atomic():
        settled = Delivery.objects.filter(idempotency_key__startswith=dashboard.PREFIX, status="delivered")
        backlog = list(settled.order_by("-id").values_list("id", flat=True)[: opts.backlog])
        Delivery.objects.filter(pk__in=backlog).update(status="planned", next_attempt_at=None)
        for _ in range(2):  # warm caches and the connection
            assert client.get("/metrics").status_code == 200
        samples = []
        for _ in range(opts.calls):
            start = time.perf_counter()
            response = client.get("/metrics")
            samples.append((time.perf_counter() - start) * 1000)
        with CaptureQueriesContext(connection) as captured:
            client.get("/metrics")
        transaction.set_rollback(True)
    body = response.content.decode()
    queue_depth = next(line for line in body.splitlines() if line.startswith("signalbox_queue_depth "))
    return {
        "scrape_ms": round(statistics.median(samples), 1),
        "scrape_max_ms": round(max(samples), 1),
        "scrape_queries": len(captured),
        "ledger_count_ms": round(ledger_count_ms, 1),
        "deliveries": Delivery.objects.count(),
        "receipts": DeliveryEvent.objects.count(),
        "queue_depth": int(float(queue_depth.split()[1])),
        "exposition_bytes": len(response.content),
        "generated_s": generated_s,
        "calls": opts.calls,
        "database": connection.vendor,
    }
