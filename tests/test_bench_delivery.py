"""The delivery benchmarks run end to end and print one JSON line (figures are not asserted)."""

import os

import pytest

from tests.bench_runner import run_bench
from tests.processes import empty_redis, fresh_postgres_database

pytestmark = pytest.mark.slow


def test_send_email_bench_compares_the_pipeline_with_raw_smtplib(tmp_path):
    figures = run_bench(tmp_path, "send_email", "--emails", "60", "--raw-emails", "20", "--rounds", "2",
                        "--latency-ms", "2", "--concurrency", "4")
    assert next(iter(figures)) == "ratio_pipeline_to_raw"
    assert (figures["emails"], figures["raw_emails"], figures["concurrency"]) == (60, 20, 4)
    assert figures["pipeline_per_s"] > 0 and figures["raw_smtplib_per_s"] > 0


def test_send_sms_bench_compares_the_pipeline_with_sequential_sdk_calls(tmp_path):
    figures = run_bench(tmp_path, "send_sms", "--messages", "40", "--sequential-messages", "10", "--rounds", "2",
                        "--latency-ms", "5")
    assert next(iter(figures)) == "ratio_pipeline_to_sequential"
    assert (figures["messages"], figures["sequential_messages"]) == (40, 10)
    assert figures["pipeline_per_s"] > 0 and figures["sequential_sdk_per_s"] > 0


def test_fanout_inapp_bench_writes_every_inbox_row_with_the_start_up_heap_frozen(tmp_path):
    figures = run_bench(tmp_path, "fanout_inapp", "--recipients", "300", timeout=180)
    assert next(iter(figures)) == "inbox_rows_per_s"
    assert figures["recipients"] == figures["ledger_rows"] == figures["receipts"] == 300
    assert figures["startup_heap_frozen"] > 0
    unfrozen = run_bench(tmp_path, "fanout_inapp", "--recipients", "300", "--unfrozen", timeout=180)
    assert unfrozen["startup_heap_frozen"] == 0 and unfrozen["ledger_rows"] == 300


# Redis database of its own: the bench's RQ workers take every job on its "default" queue.
BENCH_REDIS = os.environ.get("SIGNALBOX_BENCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")


def test_campaign_scale_bench_sends_a_campaign_through_two_rq_workers(tmp_path):
    empty_redis(BENCH_REDIS)
    try:
        with fresh_postgres_database("signalbox_bench_scale") as database:
            # The bench exits with an error unless the workers send every delivery of the run.
            figures = run_bench(tmp_path, "campaign_scale", "--recipients", "120", "--baseline", "40",
                                "--latency-ms", "2", "--timeout", "120",
                                env={"DATABASE_URL": database, "REDIS_URL": BENCH_REDIS}, timeout=300)
    finally:
        empty_redis(BENCH_REDIS)
    assert next(iter(figures)) == "ratio_workers_to_one_process"
    assert (figures["recipients"], figures["workers"], figures["latency_ms"]) == (120, 2, 2.0)
    assert figures["workers_per_s"] > 0 and figures["one_process_per_s"] > 0
    assert len(figures["worker_peak_rss_mb"]) == 2 and min(figures["worker_peak_rss_mb"]) > 0
    assert figures["cpu_s_per_1k_messages"]["workers"]["workers"] > 0
