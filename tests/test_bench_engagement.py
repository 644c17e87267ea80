"""The engagement-audience bench prints one JSON line with a count, a time and a plan per condition."""

from tests.bench_runner import run_bench


def test_audience_engagement_bench_prints_counts_times_and_plans(tmp_path):
    figures = run_bench(tmp_path, "audience_engagement", "--users", "200", "--deliveries", "1500", "--runs", "3",
                        "--calls", "1", "--plans", timeout=180)
    assert figures["vendor"] and figures["deliveries"] == 1500
    assert 0 < figures["campaign_received_count"] <= 200
    assert figures["run_not_opened_count"] <= figures["campaign_received_count"]
    assert "delivery_recipient_idx" in figures["plans"]["not_sent_14d"] or figures["vendor"] == "postgresql"
    assert set(figures["plans"]) == {name[: -len("_ms")] for name in figures if name.endswith("_ms")}
