"""The /metrics bench runs and prints one JSON line (figures are not asserted)."""

from tests.bench_runner import run_bench


def test_metrics_bench_prints_one_json_line(tmp_path):
    figures = run_bench(tmp_path, "metrics", "--deliveries", "3000", "--receipts", "9000", "--recipients", "200",
                        "--days", "10", "--calls", "2", "--backlog", "50")
    assert next(iter(figures)) == "scrape_ms"
    assert figures["deliveries"] == 3000 and figures["scrape_queries"] == 11
    assert figures["queue_depth"] >= 50  # the backlog, and whatever the data's live campaign has due
