"""The journey tick bench runs and prints one JSON line (figures are not asserted)."""

from tests.bench_runner import run_bench


def test_journey_tick_bench_prints_one_json_line(tmp_path):
    figures = run_bench(tmp_path, "journey_tick", "--enrolments", "300", "--chunk", "100", timeout=180)
    assert next(iter(figures)) == "steps_per_s"
    assert figures["enrolments"] == 300
    # split, send, wait for everyone; then the wait's end, the branch and one more send.
    assert figures["steps"] == 300 * 5 and figures["deliveries"] == 600 and figures["completed"] == 300
    assert all(figures[key] > 0 for key in figures if key.endswith("_ms"))
