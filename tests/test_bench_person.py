"""The person-data bench runs and prints one JSON line (figures are not asserted)."""

from tests.bench_runner import run_bench


def test_person_data_bench_prints_one_json_line(tmp_path):
    figures = run_bench(tmp_path, "person_data", "--deliveries", "300")
    assert next(iter(figures)) == "export_peak_mb"
    assert figures["deliveries"] == 300 and figures["rows_exported"] > 750
    assert figures["rows_erased"] >= figures["rows_exported"] - 10
