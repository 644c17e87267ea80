"""The bench harness runs a benchmark and prints one JSON line (figures are not asserted)."""

import subprocess
import sys

import pytest

from tests.bench_runner import run_bench
from tests.conftest import ROOT
from tests.e2e.conftest import CHROMIUM


def test_unread_count_bench_prints_one_json_line(tmp_path):
    figures = run_bench(tmp_path, "unread_count", "--notifications", "500", "--unread", "7", "--calls", "20", timeout=120)
    assert next(iter(figures)) == "median_ms"
    assert figures["notifications"] == 500 and figures["unread"] == 7
    assert figures["median_ms"] > 0


def test_unknown_bench_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "bench", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_dashboard_bench_prints_one_json_line(tmp_path):
    figures = run_bench(tmp_path, "dashboard", "--deliveries", "3000", "--receipts", "9000", "--recipients", "200",
                        "--days", "10", "--calls", "2")
    assert next(iter(figures)) == "analytics_page_ms"
    assert figures["deliveries"] == 3000 and figures["receipts"] == 9000
    assert figures["analytics_page_ms"] > 0
    assert all(value > 0 for key, value in figures.items() if key.endswith("_ms"))


@pytest.mark.slow
@pytest.mark.e2e
def test_analytics_page_load_bench_prints_one_json_line(tmp_path):
    """Seeds, serves and loads the page in Chromium at a tiny scale, the new bundle and the baseline."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    figures = run_bench(
        tmp_path, "analytics_page_load", "--deliveries", "2000", "--days", "20", "--loads", "1",
        env={"HOME": str(tmp_path), "SIGNALBOX_CHROMIUM": str(CHROMIUM)},
        timeout=900,  # the first run brotli-compresses the baseline's full plotly bundle (kept in var/)
    )
    assert next(iter(figures)) == "analytics_interactive_ms"
    assert figures["deliveries"] == 2000 and figures["receipts"] > 2000
    assert all(figures[key] > 0 for key in ("analytics_interactive_ms", "charts_drawn_ms", "baseline_interactive_ms"))
    assert figures["charts_drawn_ms"] >= figures["analytics_interactive_ms"]
    assert 0 < figures["plotly_bytes"] < figures["baseline_js_bytes"]  # the basic bundle, not the full one
    assert figures["console_errors"] == 0 and figures["csp_violations"] == 0
