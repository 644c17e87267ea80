"""The person-data bench runs and prints one JSON line (figures are not asserted)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_person_data_bench_prints_one_json_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "person_data", "--deliveries", "300"],
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
    assert next(iter(figures)) == "export_peak_mb"
    assert figures["deliveries"] == 300 and figures["rows_exported"] > 750
    assert figures["rows_erased"] >= figures["rows_exported"] - 10
