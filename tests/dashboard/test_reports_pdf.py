"""PDF reports: figures, charts without a browser, Chinese text, inline and background generation."""

from __future__ import annotations

import io
import re
import warnings
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from pypdf import PdfReader

from dashboard.models import Report
from dashboard.reports import charts, data, pdf, services
from dashboard.reports.data import ChannelRow, Outcomes, ReportFilters
from accounts.roles import roles_ensure
from notifications.models import AuditEntry, Campaign, CampaignRun, DeliveryEvent
from tests.factories import (
    AudienceFactory,
    CategoryFactory,
    DeliveryFactory,
    MessageTemplateFactory,
    UserFactory,
)

from tests.processes import worker_run_until_idle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _files_built_in_the_request(settings):
    """These tests read the files themselves: built in the request, as a deployment may choose
    (``SIGNALBOX_REPORT_INLINE_ROWS``); by default every file is built by a task (tests/polish)."""
    settings.SIGNALBOX_REPORT_INLINE_ROWS = 50_000


CHINESE_NAME = "春季促销活动"
IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
MARCH = datetime(2025, 3, 10, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def manager(db):
    roles_ensure()
    user = UserFactory(username="meg", first_name="Meg", last_name="Manager", is_staff=True)
    user.groups.add(Group.objects.get(name="Managers"))
    return user


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def chinese_campaign(db) -> Campaign:
    """7 sent (2 of them delivered, 1 of those opened and clicked), 2 failed, 1 suppressed, 1 unsubscribe."""
    category = CategoryFactory(key="newsletter", name="Newsletter")
    campaign = Campaign.objects.create(
        name=CHINESE_NAME, audience=AudienceFactory(), template=MessageTemplateFactory(), category=category,
        channels=["email", "sms"], status=Campaign.Status.COMPLETED,
    )
    run = CampaignRun.objects.create(campaign=campaign, occurrence=MARCH, status=CampaignRun.Status.COMPLETED)
    statuses = ["sent"] * 4 + ["delivered", "clicked", "read"] + ["failed", "bounced", "suppressed"]
    reasons = {"failed": "smtp_550", "bounced": "hard_bounce"}
    deliveries = [
        DeliveryFactory(run=run, category=category, status=status, status_reason=reasons.get(status, ""),
                        channel="sms" if i % 3 == 0 else "email", created_at=MARCH)
        for i, status in enumerate(statuses)
    ]
    DeliveryEvent.objects.create(delivery=deliveries[0], kind="unsubscribed", source="click")
    DeliveryEvent.objects.create(delivery=deliveries[0], kind="unsubscribed", source="anymail", provider_event_id="u2")
    DeliveryFactory(status="sent", created_at=MARCH)  # not this campaign's
    return campaign


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


# --- Figures ----------------------------------------------------------------------------------


def test_campaign_figures_are_a_cumulative_funnel(chinese_campaign):
    content = data.campaign_report_content(campaign_id=chinese_campaign.pk)

    o = content.outcomes
    assert (o.planned, o.sent, o.delivered, o.opened, o.clicked, o.failed, o.suppressed, o.waiting, o.unsubscribed) == (
        10, 7, 3, 2, 1, 2, 1, 0, 1
    )
    assert isinstance(o, Outcomes)
    assert content.outcomes.open_rate == pytest.approx(2 / 3)  # over delivered, as on the analytics page
    assert [(r.reason, r.count) for r in content.failure_reasons] == [("hard_bounce", 1), ("smtp_550", 1)]
    assert {row.channel: row.outcomes.planned for row in content.channels} == {"email": 6, "sms": 4}
    assert [(row.outcomes.sent, row.outcomes.unsubscribed) for row in content.runs.rows] == [(7, 1)]
    assert [(b.start.isoformat(), b.sent, b.failed, b.suppressed) for b in content.volume.buckets] == [
        ("2025-03-10", 7, 2, 1)
    ]


def test_report_figures_take_the_same_queries_whatever_the_size(chinese_campaign, django_assert_num_queries):
    data.campaign_report_content(campaign_id=chinese_campaign.pk)
    run = chinese_campaign.runs.get()
    DeliveryFactory.create_batch(30, run=run, status="opened", created_at=MARCH)

    # campaign; outcomes + unsubscribes; volume; channels + unsubscribes; runs: counts +
    # unsubscribes + number of runs + the runs; failure reasons; how far retention purged
    # 13: one of them asks for the campaign's A/B-tested runs (none here; with some: their variants, then two per tested run).
    with django_assert_num_queries(13):
        data.campaign_report_content(campaign_id=chinese_campaign.pk)


def test_period_volume_is_zero_filled_and_weekly_when_long():
    DeliveryFactory(status="sent", created_at=MARCH)
    daily = data.volume_over_time(
        deliveries=data.deliveries_in_scope(filters=ReportFilters()),
        first_day=MARCH.date().replace(day=9), last_day=MARCH.date().replace(day=11),
    )
    weekly = data.volume_over_time(
        deliveries=data.deliveries_in_scope(filters=ReportFilters()),
        first_day=MARCH.date().replace(month=1, day=1), last_day=MARCH.date().replace(month=12, day=31),
    )

    assert [(b.start.day, b.sent) for b in daily.buckets] == [(9, 0), (10, 1), (11, 0)]
    assert weekly.weekly and sum(b.sent for b in weekly.buckets) == 1
    assert all(b.start.weekday() == 0 for b in weekly.buckets[1:])


# --- Charts -----------------------------------------------------------------------------------


def test_charts_are_svg_drawn_without_a_browser_and_have_cjk_glyphs(chinese_campaign):
    content = data.campaign_report_content(campaign_id=chinese_campaign.pk)
    channels = [ChannelRow(channel="email", label="邮件", outcomes=content.outcomes)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        svgs = [
            charts.volume_chart_svg(content.volume),
            charts.funnel_chart_svg(content.outcomes),
            charts.channel_chart_svg(channels),
        ]

    assert all(svg.lstrip().startswith("<?xml") and "<svg" in svg for svg in svgs)
    assert not [w for w in caught if "missing from font" in str(w.message)]


# --- PDF --------------------------------------------------------------------------------------


def test_pdf_of_a_chinese_campaign_contains_its_name_and_sent_count(chinese_campaign, manager):
    report = services.report_request(
        actor=manager, kind=Report.Kind.CAMPAIGN_PDF, format=Report.Format.PDF,
        params={"campaign_id": chinese_campaign.pk}, language="en",
    )

    assert (report.status, report.rows, report.error) == ("ready", 10, "")
    with report.file.open("rb") as handle:
        text = pdf_text(handle.read())
    assert CHINESE_NAME in text
    assert re.search(r"Sent\s+7\s+70\.0% of planned", text)
    assert re.search(r"Failed\s+2\s+", text)
    assert "Meg Manager" in text  # generated by
    assert "hard_bounce" in text  # failure reasons
    assert AuditEntry.objects.filter(action="report.request", actor=manager, target_id=str(report.pk)).exists()


def test_campaign_page_button_downloads_the_pdf_at_once_when_small(chinese_campaign, manager_client):
    response = manager_client.post(reverse("reports:campaign_pdf", args=[chinese_campaign.pk]))

    report = Report.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("reports:download", args=[report.pk])
    download = manager_client.get(response["Location"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith('attachment; filename="signalbox-campaign-')
    text = pdf_text(b"".join(download.streaming_content))
    assert CHINESE_NAME in text and re.search(r"Sent\s+7\b", text)


def test_big_pdf_is_generated_in_the_background_and_listed_until_ready(
    chinese_campaign, manager_client, settings, django_capture_on_commit_callbacks
):
    settings.SIGNALBOX_REPORT_INLINE_ROWS = 5
    settings.TASKS = IMMEDIATE_TASKS

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = manager_client.post(
            reverse("reports:request_pdf"),
            {"kind": "period_pdf", "period-date_from": "2025-03-01", "period-date_to": "2025-03-31"},
        )
    report = Report.objects.get()
    assert response.status_code == 302 and report.status == "queued"
    waiting = manager_client.get(reverse("reports:mine"))
    assert 'hx-trigger="every 2s"' in waiting.content.decode()  # the list polls...
    assert 'data-testid="report-download"' not in waiting.content.decode()

    [commit] = callbacks
    commit()  # enqueue → report_generate_task runs (immediate backend)

    report.refresh_from_db()
    assert report.status == "ready" and report.rows == 11
    ready = manager_client.get(reverse("reports:mine")).content.decode()
    assert "every 2s" not in ready  # ...until nothing is pending
    assert f'href="{reverse("reports:download", args=[report.pk])}" data-testid="report-download"' in ready
    text = pdf_text(b"".join(manager_client.get(reverse("reports:download", args=[report.pk])).streaming_content))
    assert "Period report" in text and "2025-03-01 to 2025-03-31" in text
    assert CHINESE_NAME in text  # in the runs table
    assert re.search(r"Sent\s+8\b", text)


def test_period_report_without_deliveries_renders(manager):
    report = services.report_request(
        actor=manager, kind=Report.Kind.PERIOD_PDF, format=Report.Format.PDF,
        params={"date_from": "2030-01-01", "date_to": "2030-01-31"},
    )

    with report.file.open("rb") as handle:
        assert "No deliveries in this report." in pdf_text(handle.read())


def test_a_failing_report_records_why_and_a_second_run_does_nothing(chinese_campaign, manager, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("chart exploded")

    monkeypatch.setattr(data, "campaign_report_content", broken)

    report = services.report_request(
        actor=manager, kind=Report.Kind.CAMPAIGN_PDF, format=Report.Format.PDF, params={"campaign_id": chinese_campaign.pk}
    )

    assert (report.status, report.error) == ("failed", "chart exploded")
    assert f"Report {report.pk} (campaign_pdf) failed" in caplog.text
    assert services.report_generate(report_id=report.pk).status == "failed"  # claimed once only


def test_a_report_for_a_missing_campaign_is_refused(manager):
    with pytest.raises(services.ReportError):
        services.report_request(actor=manager, kind="campaign_pdf", format="pdf", params={"campaign_id": 999})
    assert not Report.objects.exists()


def test_the_renderer_fetches_nothing_but_data_urls():
    fetcher = pdf._fetcher()
    with pytest.raises(ValueError, match="disallowed protocol"):
        fetcher("file:///etc/hostname")
    with pytest.raises(ValueError, match="disallowed protocol"):
        fetcher("http://127.0.0.1/")


@pytest.mark.tasks
@pytest.mark.django_db(transaction=True)
def test_report_is_generated_by_a_real_worker(chinese_campaign, manager, settings):
    """The configured backend (DB, or RQ in CI) runs the task in another process."""
    from config import settings_test

    settings.SIGNALBOX_REPORT_INLINE_ROWS = 0
    report = services.report_request(
        actor=manager, kind=Report.Kind.CAMPAIGN_PDF, format=Report.Format.PDF, params={"campaign_id": chinese_campaign.pk}
    )
    assert report.status == "queued"

    worker_run_until_idle()

    report.refresh_from_db()
    assert report.status == "ready", report.error
    # The worker wrote under the real MEDIA_ROOT (settings in that process are not overridden).
    written = settings_test.MEDIA_ROOT / report.file.name
    try:
        text = pdf_text(written.read_bytes())
    finally:
        written.unlink(missing_ok=True)
    assert CHINESE_NAME in text and re.search(r"Sent\s+7\b", text)
