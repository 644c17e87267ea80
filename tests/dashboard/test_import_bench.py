"""`python -m bench import_users` runs end to end and prints one JSON line (figures are not asserted)."""

import pytest

from tests.bench_runner import run_bench


@pytest.mark.slow
def test_import_users_bench_prints_one_json_line(tmp_path):
    figures = run_bench(tmp_path, "import_users", "--rows", "300")
    assert next(iter(figures)) == "committed_rows_per_s"
    assert figures["rows"] == 300 and figures["committed_rows_per_s"] > 0
    assert figures["database"] == "sqlite"
