"""Reports are built by a task: the request returns at once, the page shows the report's status
while it is built, downloads it when ready (once) and shows a failure with its reason."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dashboard.models import Report
from dashboard.reports import services
from tests.factories import DeliveryFactory, UserFactory, staff_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def manager_client(client):
    client.force_login(staff_in("Managers", "meg"))
    return client


def export_xlsx(client):
    return client.post(reverse("reports:export"), {"export-kind": "deliveries", "export-format": "xlsx"})


def test_an_xlsx_export_returns_at_once_and_the_page_watches_it(manager_client, django_capture_on_commit_callbacks):
    DeliveryFactory.create_batch(3, recipient=UserFactory(first_name="Ada"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = export_xlsx(manager_client)
    report = Report.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('reports:index')}?watch={report.pk}#report-{report.pk}"
    assert report.status == "queued" and not report.file  # nothing built in the request
    assert len(callbacks) == 1  # the task, enqueued on commit

    page = manager_client.get(response["Location"]).content.decode()
    assert 'data-testid="report-progress" data-status="queued"' in page and 'role="status"' in page
    assert f'hx-get="{reverse("reports:mine")}?watch={report.pk}" hx-trigger="every 2s"' in page
    assert "signalbox/reports.js" in page
    assert "data-auto-download" not in page

    services.report_generate(report_id=report.pk)  # what the worker does
    ready = manager_client.get(f"{reverse('reports:mine')}?watch={report.pk}").content.decode()
    assert 'data-status="ready"' in ready and "every 2s" not in ready
    download_url = reverse("reports:download", args=[report.pk])
    assert f'href="{download_url}" data-auto-download data-report-id="{report.pk}"' in ready
    download = manager_client.get(download_url)
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")


def test_a_pdf_report_is_requested_without_waiting_for_it(manager_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = manager_client.post(reverse("reports:request_pdf"), {
            "kind": "period_pdf", "period-date_from": "2025-03-01", "period-date_to": "2025-03-31"})
    report = Report.objects.get()
    assert response.status_code == 302 and f"watch={report.pk}" in response["Location"]
    assert report.status == "queued" and len(callbacks) == 1


def test_the_page_downloads_only_the_report_it_watches(manager_client):
    export_xlsx(manager_client)
    report = Report.objects.get()
    services.report_generate(report_id=report.pk)
    page = manager_client.get(reverse("reports:index")).content.decode()
    assert 'data-testid="report-download"' in page and "data-auto-download" not in page


def test_a_failure_is_shown_with_its_reason(manager_client, monkeypatch):
    export_xlsx(manager_client)
    report = Report.objects.get()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "_build", explode)
    services.report_generate(report_id=report.pk)
    shown = manager_client.get(f"{reverse('reports:mine')}?watch={report.pk}").content.decode()
    assert 'role="alert"' in shown and "The report could not be generated: disk full" in shown
    assert "every 2s" not in shown


def test_the_status_speaks_chinese(manager_client):
    export_xlsx(manager_client)
    report = Report.objects.get()
    page = manager_client.get(f"{reverse('reports:index')}?watch={report.pk}", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "正在等待" in page.content.decode()


def test_the_request_that_starts_a_report_does_not_count_its_rows(manager_client, django_capture_on_commit_callbacks):
    """By default (SIGNALBOX_REPORT_INLINE_ROWS = 0) every file is built by a task, so the request
    has no reason to wait for a count over the whole scope (deliveries can be millions)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    DeliveryFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=False), CaptureQueriesContext(connection) as queries:
        assert export_xlsx(manager_client).status_code == 302
    counted = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "delivery" in q["sql"].lower()]
    assert counted == [], counted
