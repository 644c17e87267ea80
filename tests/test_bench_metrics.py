"""The /metrics bench runs and prints one JSON line (figures are not asserted)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_metrics_bench_prints_one_json_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "metrics", "--deliveries", "3000", "--receipts", "9000", "--recipients", "200",
         "--days", "10", "--calls", "2", "--backlog", "50"],
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
    assert next(iter(figures)) == "scrape_ms"
    assert figures["deliveries"] == 3000 and figures["scrape_queries"] == 9
    assert figures["queue_depth"] >= 50  # the backlog, and whatever the data's live campaign has due
