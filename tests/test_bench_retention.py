"""``python -m bench retention`` at tiny scale prints one JSON line (figures are not asserted)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_retention_bench_prints_one_json_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "retention", "--deliveries", "3000", "--days", "3", "--batch", "500"],
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
    assert next(iter(figures)) == "deleted_rows_per_s"
    assert figures["deliveries_deleted"] == 3000 and figures["left_of_inserted"] == 0
    assert figures["batches"] == 6
    assert figures["analytics_unchanged"] is True
    assert figures["sender_errors"] == 0 and figures["sender_messages"] > 0
    assert figures["longest_delete_ms"] > 0
