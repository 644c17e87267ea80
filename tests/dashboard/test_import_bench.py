"""`python -m bench import_users` runs end to end and prints one JSON line (figures are not asserted)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_import_users_bench_prints_one_json_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "import_users", "--rows", "300"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'bench.sqlite3'}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    figures = json.loads(lines[0])
    assert next(iter(figures)) == "committed_rows_per_s"
    assert figures["rows"] == 300 and figures["committed_rows_per_s"] > 0
    assert figures["database"] == "sqlite"
