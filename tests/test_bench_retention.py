"""``python -m bench retention`` at tiny scale prints one JSON line (figures are not asserted)."""

from tests.bench_runner import run_bench


def test_retention_bench_prints_one_json_line(tmp_path):
    figures = run_bench(tmp_path, "retention", "--deliveries", "3000", "--days", "3", "--batch", "500")
    assert next(iter(figures)) == "deleted_rows_per_s"
    assert figures["deliveries_deleted"] == 3000 and figures["left_of_inserted"] == 0
    assert figures["batches"] == 6
    assert figures["analytics_unchanged"] is True
    assert figures["sender_errors"] == 0 and figures["sender_messages"] > 0
    assert figures["longest_delete_ms"] > 0
