"""The delivery benchmarks run end to end and print one JSON line (figures are not asserted)."""

import pytest

from tests.bench_runner import run_bench

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
