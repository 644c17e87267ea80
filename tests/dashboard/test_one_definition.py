"""One campaign, every surface, the same numbers (issue 12, "one definition of every figure").

The campaign's deliveries are built so that any surface with a definition of its own disagrees:
opens and clicks without a delivery receipt, bounces after the provider accepted the message, an
outcome that never came back, a suppressed row, and rows still waiting (quiet hours, a retry).
Every surface is read as a user gets it: the analytics page (HTML), the staff home, the campaign
page's progress, the CSV and XLSX campaign exports, and the PDF report (its text).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from dashboard.models import Report
from dashboard.reports import services
from notifications.models import Campaign, CampaignRun, DeliveryEvent
from tests.factories import (
    AudienceFactory,
    CategoryFactory,
    DeliveryFactory,
    MessageTemplateFactory,
    RecipientProfileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
# What every surface must show (worked out by hand from the rows below, see the module docstring
# of notifications.ledger.outcomes): planned 16; sent = accepted by the provider at some point (10,
# the 2 bounces included); delivered 5 (opens and clicks count as delivered); opened 3 (the click
# counts); clicked 1; failed = failed + bounced (3; the unknown one is not a failure).
EXPECTED = {"planned": 16, "sent": 10, "delivered": 5, "opened": 3, "clicked": 1, "failed": 3}
OPEN_RATE, CLICK_RATE = "60.0", "20.0"  # over delivered: 3/5 and 1/5


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # XLSX and PDF files built in the request, to read them here (by default a task builds them).
    settings.SIGNALBOX_REPORT_INLINE_ROWS = 50_000


@pytest.fixture
def campaign(db) -> Campaign:
    now = timezone.now()
    category = CategoryFactory(key="newsletter", name="Newsletter")
    campaign = Campaign.objects.create(
        name="Same numbers", audience=AudienceFactory(), template=MessageTemplateFactory(), category=category,
        channels=["email"], status=Campaign.Status.RUNNING,
    )
    run = CampaignRun.objects.create(
        campaign=campaign, occurrence=now - timedelta(minutes=30), status=CampaignRun.Status.SENDING,
        started_at=now - timedelta(minutes=30),
    )
    sent_at = now - timedelta(minutes=20)

    def make(status: str, n: int = 1, **fields):
        return [
            DeliveryFactory(run=run, category=category, channel="email", status=status, created_at=now - timedelta(minutes=25),
                            **fields)
            for _ in range(n)
        ]

    make("sent", 3, sent_at=sent_at)
    delivered = make("delivered", 2, sent_at=sent_at, delivered_at=sent_at)
    make("opened", 2, sent_at=sent_at, opened_at=sent_at)  # the pixel loaded; no delivery receipt
    make("clicked", 1, sent_at=sent_at, clicked_at=sent_at)  # a click, no open, no delivery receipt
    make("bounced", 2, sent_at=sent_at, failed_at=sent_at, status_reason="hard_bounce")  # after "sent"
    make("failed", 1, failed_at=sent_at, status_reason="smtp_550")
    make("unknown", 1, status_reason="lost_in_flight")
    make("suppressed", 1, status_reason="suppressed:opted_out")
    # Waiting: two recipients in Shanghai held by quiet hours until 08:00 there, one retrying.
    eight = (now.astimezone(SHANGHAI) + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    if eight - now > timedelta(hours=24):
        eight -= timedelta(days=1)
    for _ in range(2):
        user = UserFactory()
        RecipientProfileFactory(user=user, timezone="Asia/Shanghai")
        make("planned", recipient=user, status_reason="deferred:quiet_hours", next_attempt_at=eight)
    make("deferred", 1, status_reason="timeout", next_attempt_at=now + timedelta(minutes=10))
    DeliveryEvent.objects.create(delivery=delivered[0], kind="unsubscribed", source="click")
    campaign.quiet_until = eight  # for the assertion below
    return campaign


def _attr(html: str, testid: str, attr: str = "data-value") -> int:
    match = re.search(rf'data-testid="{testid}"[^>]*?{attr}="(\d+)"', html)
    assert match, f"{testid} not found"
    return int(match.group(1))


def test_every_surface_shows_the_same_figures_for_one_campaign(campaign, manager_client, manager):
    seen: dict[str, dict] = {}

    # 1. The analytics page, narrowed to the campaign.
    html = manager_client.get(reverse("dashboard:analytics"), {"campaign": campaign.pk}).content.decode()
    seen["analytics"] = {
        name: _attr(html, f"total-{name}") for name in ("sent", "delivered", "opened", "clicked", "failed")
    } | {"planned": _attr(html, "total-planned")}
    assert f"{OPEN_RATE}% of delivered" in html and f"{CLICK_RATE}% of delivered" in html

    # 2. The staff home: the "deliveries" card and the KPI card beside it (the only campaign).
    home = manager_client.get(reverse("admin:index")).content.decode()
    card = re.search(r"([\d,]+) sent · ([\d,]+) failed", home)
    assert card, "the deliveries card"
    seen["home card"] = {"sent": int(card[1].replace(",", "")), "failed": int(card[2].replace(",", ""))}
    kpis = manager_client.get(reverse("dashboard:home_kpis"), {"days": "7"}).content.decode()
    seen["home KPIs"] = {name: _attr(kpis, f"kpi-{name}") for name in ("sent", "delivered", "opened", "clicked", "failed")}
    progress_home = manager_client.get(reverse("dashboard:runs_progress")).content.decode()
    seen["home progress"] = {
        "sent": _attr(progress_home, "run-counts", "data-sent"), "failed": _attr(progress_home, "run-counts", "data-failed"),
        "planned": _attr(progress_home, "run-counts", "data-total"),
    }

    # 3. The campaign page's progress.
    page = manager_client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()
    seen["campaign progress"] = {
        "sent": _attr(page, "run-counts", "data-sent"), "failed": _attr(page, "run-counts", "data-failed"),
        "planned": _attr(page, "run-counts", "data-total"),
    }
    assert _attr(page, "run-counts", "data-waiting") == 3
    assert 'data-testid="run-percent">81%' in page  # 13 of 16 settled; and it says why the 3 wait:
    until = campaign.quiet_until.astimezone(SHANGHAI).strftime("%H:%M")
    assert until == "08:00"
    assert "2 held for quiet hours until 08:00 Asia/Shanghai" in page
    next_try = timezone.localtime(timezone.now() + timedelta(minutes=10)).strftime("%H:")
    assert re.search(rf"1 retrying \(next attempt {next_try}\d\d\)", page)
    assert "1 retrying" in progress_home and "held for quiet hours" in progress_home

    # 4. CSV and 5. XLSX campaign exports.
    def export(fmt: str):
        form = {"kind": "campaigns", "format": fmt, "campaign": campaign.pk}
        return manager_client.post(reverse("reports:export"), {f"export-{key}": value for key, value in form.items()})

    body = b"".join(export("csv").streaming_content).decode("utf-8").lstrip("\ufeff")
    (row,) = [r for r in csv.DictReader(io.StringIO(body)) if r["Campaign id"] == str(campaign.pk)]
    seen["CSV"] = {name: int(row[name.capitalize()]) for name in EXPECTED}
    assert (row["Open rate %"], row["Click rate %"]) == (OPEN_RATE, CLICK_RATE)
    assert (row["Outcome unknown"], row["Waiting"], row["Not sent (suppressed)"]) == ("1", "3", "1")

    book = openpyxl.load_workbook(io.BytesIO(b"".join(export("xlsx").streaming_content)))
    sheet = book["campaigns"]
    rows = list(sheet.iter_rows(values_only=True))
    headers = list(rows[0])
    (xrow,) = [r for r in rows[1:] if r[0] == campaign.pk]
    seen["XLSX"] = {name: xrow[headers.index(name.capitalize())] for name in EXPECTED}
    assert (xrow[headers.index("Open rate %")], xrow[headers.index("Click rate %")]) == (float(OPEN_RATE), float(CLICK_RATE))

    # 6. The PDF report.
    report = services.report_request(
        actor=manager, kind=Report.Kind.CAMPAIGN_PDF, format=Report.Format.PDF,
        params={"campaign_id": campaign.pk}, language="en",
    )
    assert report.status == "ready", report.error
    with report.file.open("rb") as handle:
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(handle.read())).pages)
    seen["PDF"] = {}
    for name, label in [("planned", "Planned"), ("sent", "Sent"), ("delivered", "Delivered"), ("opened", "Opened"),
                        ("clicked", "Clicked"), ("failed", "Failed")]:
        match = re.search(rf"{label}\s+([\d,]+)\s", text)
        assert match, f"{label} in the PDF"
        seen["PDF"][name] = int(match[1].replace(",", ""))
    assert re.search(rf"Opened\s+3\s+{OPEN_RATE}% of delivered", text)
    assert re.search(rf"Clicked\s+1\s+{CLICK_RATE}% of delivered", text)

    for surface, figures in seen.items():
        assert figures == {name: EXPECTED[name] for name in figures}, surface
