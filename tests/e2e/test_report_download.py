"""Asking for an XLSX returns at once; the page shows its status and downloads it when a worker
has built it, without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from dashboard.models import Report
from dashboard.reports import services
from tests.factories import PASSWORD, DeliveryFactory, staff_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_xlsx_downloads_by_itself_when_ready(browser: Browser, live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    manager = staff_in("Managers", "meg")
    manager.set_password(PASSWORD)
    manager.save()
    DeliveryFactory.create_batch(3)
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(error.message))
    try:
        page.goto("/admin/login/?next=/admin/reports/")
        page.locator("input[name=username]").fill("meg")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        page.locator("select[name=export-format]").select_option("xlsx")
        page.get_by_test_id("export-submit").click()
        progress = page.get_by_test_id("report-progress")
        expect(progress).to_have_attribute("data-status", "queued")  # the request did not build it
        loaded = page.evaluate("performance.timeOrigin")

        report = Report.objects.get()
        with page.expect_download(timeout=30_000) as download:
            services.report_generate(report_id=report.pk)  # the worker
        assert download.value.suggested_filename.endswith(".xlsx")
        expect(progress).to_have_attribute("data-status", "ready")
        expect(page.get_by_test_id("report-ready-download")).to_be_visible()
        assert page.evaluate("performance.timeOrigin") == loaded  # no reload
    finally:
        context.close()
    assert errors == []
