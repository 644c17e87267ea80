"""pytest plugin: with ``SIGNALBOX_REQUIRE_SERVICES=1`` every skip is reported as a failure.

CI sets it (``.ci/run`` under ``CI=true``) so that a missing PostgreSQL, Redis or Chromium can
never turn into a quietly skipped test.
"""

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("SIGNALBOX_REQUIRE_SERVICES") == "1" and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"SIGNALBOX_REQUIRE_SERVICES=1: skipping is a failure here ({reason})"
