"""In CI a skipped test (a missing service or browser) fails the run."""

import os
import subprocess
import sys

from tests.conftest import ROOT

SKIPPING_TEST = """
import pytest

def test_needs_a_browser():
    pytest.skip("Chromium not found")
"""


def run_pytest(tmp_path, *, require: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_skips.py").write_text(SKIPPING_TEST)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SIGNALBOX_REQUIRE_SERVICES", None)
    if require:
        env["SIGNALBOX_REQUIRE_SERVICES"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.require_services", "-p", "no:django", "-p", "no:playwright",
         "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path / "test_skips.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )


def test_skip_is_a_skip_locally(tmp_path):
    result = run_pytest(tmp_path, require=False)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout


def test_skip_is_a_failure_when_services_are_required(tmp_path):
    result = run_pytest(tmp_path, require=True)
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout
    assert "skipping is a failure here" in result.stdout
