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
