"""The bench harness runs a benchmark and prints one JSON line (figures are not asserted)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_unread_count_bench_prints_one_json_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "unread_count", "--notifications", "500", "--unread", "7", "--calls", "20"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'bench.sqlite3'}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert next(iter(figures)) == "median_ms"
    assert figures["notifications"] == 500 and figures["unread"] == 7
    assert figures["median_ms"] > 0


def test_unknown_bench_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "bench", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_dashboard_bench_prints_one_json_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "dashboard", "--deliveries", "3000", "--receipts", "9000", "--recipients", "200",
         "--days", "10", "--calls", "2"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'bench.sqlite3'}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert next(iter(figures)) == "analytics_page_ms"
    assert figures["deliveries"] == 3000 and figures["receipts"] == 9000
    assert figures["analytics_page_ms"] > 0
    assert all(value > 0 for key, value in figures.items() if key.endswith("_ms"))
