"""CSV/XLSX exports: formula neutralisation, streaming, filters, the background path, the audit."""

from __future__ import annotations

import asyncio
import concurrent.futures
import csv
import io
import warnings
import zipfile
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dashboard.models import Report
from dashboard.reports import exports
from dashboard.reports.data import ReportFilters
from notifications.models import AuditEntry, Campaign, CampaignRun, DeliveryEvent
from tests.factories import (
    AudienceFactory,
    CategoryFactory,
    DeliveryFactory,
    MessageTemplateFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _files_built_in_the_request(settings):
    """These tests read the files themselves: built in the request, as a deployment may choose
    (``SIGNALBOX_REPORT_INLINE_ROWS``); by default every file is built by a task (tests/polish)."""
    settings.SIGNALBOX_REPORT_INLINE_ROWS = 50_000


FORMULA_NAME = '=HYPERLINK("http://x")'
IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def make_campaign(name: str = "Spring sale", **fields) -> CampaignRun:
    campaign = Campaign.objects.create(
        name=name, audience=AudienceFactory(), template=MessageTemplateFactory(),
        category=fields.pop("category", None) or CategoryFactory(key="newsletter", name="Newsletter"), **fields,
    )
    return CampaignRun.objects.create(campaign=campaign, occurrence=datetime(2025, 3, 1, 9, tzinfo=UTC))


def export(client, **data):
    form = {"kind": "deliveries", "format": "csv", **data}
    return client.post(reverse("reports:export"), {f"export-{key}": value for key, value in form.items()})


def csv_rows(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")  # so Excel reads UTF-8 (Chinese names) correctly
    return list(csv.DictReader(io.StringIO(body[1:])))


def xlsx_sheet(response, title: str = "deliveries"):
    content = b"".join(response.streaming_content)
    return openpyxl.load_workbook(io.BytesIO(content))[title], content


# --- Formula neutralisation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["=1+1", "+1415", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "  =cmd|' /C calc'!A0", FORMULA_NAME]
)
def test_text_a_spreadsheet_could_run_gets_a_leading_quote(text):
    assert exports.neutralise(text) == "'" + text


@pytest.mark.parametrize("text", ["Ada", "1+1", "", "a=b", "李雷", "'quoted"])
def test_ordinary_text_is_left_alone(text):
    assert exports.neutralise(text) == text


def test_csv_of_a_recipient_named_like_a_formula_opens_as_text(manager_client):
    recipient = UserFactory(username="=cmd", first_name=FORMULA_NAME, last_name="@evil")
    DeliveryFactory(recipient=recipient, address="+14155550100", last_error="-1+1")

    response = export(manager_client, format="csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    [row] = csv_rows(response)
    assert row["Recipient first name"] == "'" + FORMULA_NAME
    assert row["Recipient last name"] == "'@evil"
    assert row["Recipient username"] == "'=cmd"
    assert row["Address"] == "'+14155550100"
    assert row["Last error"] == "'-1+1"
    assert row["Attempts"] == "0"  # numbers stay numbers


def test_xlsx_of_a_recipient_named_like_a_formula_opens_as_text(manager_client):
    recipient = UserFactory(username="eve", first_name=FORMULA_NAME, last_name="=1+1")
    DeliveryFactory(recipient=recipient, last_error="bad \x01 byte")

    response = export(manager_client, format="xlsx")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    sheet, content = xlsx_sheet(response)
    headers = [cell.value for cell in sheet[1]]
    first_name = sheet.cell(row=2, column=headers.index("Recipient first name") + 1)
    assert first_name.value == FORMULA_NAME  # the text the recipient typed, not a formula
    assert first_name.data_type == "s"
    assert first_name.quotePrefix  # editing the cell in Excel keeps it text
    assert sheet.cell(row=2, column=headers.index("Recipient last name") + 1).data_type == "s"
    assert sheet.cell(row=2, column=headers.index("Last error") + 1).value == "bad  byte"
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "HYPERLINK" in xml  # stored as an inline string, never as a formula


def test_receipts_and_campaign_summaries_are_neutralised_too(manager_client):
    run = make_campaign(name="=cmd|' /C calc'!A0")
    recipient = UserFactory(first_name=FORMULA_NAME)
    delivery = DeliveryFactory(recipient=recipient, run=run, status="opened")
    DeliveryEvent.objects.create(delivery=delivery, kind="opened", source="pixel", data={"ua": "=1"})

    receipts = csv_rows(export(manager_client, kind="receipts"))
    campaigns = csv_rows(export(manager_client, kind="campaigns"))

    assert receipts[0]["Recipient first name"] == "'" + FORMULA_NAME
    assert receipts[0]["Campaign"] == "'=cmd|' /C calc'!A0"
    assert receipts[0]["Details"] == '{"ua": "=1"}'
    assert campaigns[0]["Name"] == "'=cmd|' /C calc'!A0"
    assert (campaigns[0]["Planned"], campaigns[0]["Sent"], campaigns[0]["Opened"]) == ("1", "1", "1")


# --- Streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["deliveries", "receipts"])
def test_csv_streams_in_chunks_with_one_query_whatever_the_size(manager_client, monkeypatch, kind):
    monkeypatch.setattr(exports, "CHUNK_SIZE", 7)
    monkeypatch.setattr(exports, "CSV_ROWS_PER_CHUNK", 10)
    for _ in range(45):
        DeliveryEvent.objects.create(delivery=DeliveryFactory(status="sent"), kind="sent", source="smtp")

    response = export(manager_client, kind=kind)
    assert response.streaming
    with CaptureQueriesContext(connection) as queries:
        chunks = list(response.streaming_content)

    assert len(queries) == 1  # one SELECT read in chunks: no per-row or per-chunk queries
    assert len(chunks) == 1 + 5  # the header, then 45 rows in chunks of 10
    assert sum(chunk.count(b"\n") for chunk in chunks) == 46


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_csv_streams_as_an_async_iterator(async_client, manager, monkeypatch):
    """Django reads a *sync* iterator whole into memory before sending it under ASGI."""
    monkeypatch.setattr(exports, "CSV_ROWS_PER_CHUNK", 10)
    DeliveryFactory.create_batch(25, recipient=UserFactory(first_name=FORMULA_NAME))
    async_client.force_login(manager)

    async def download():
        response = await async_client.post(reverse("reports:export"), {"export-kind": "deliveries", "export-format": "csv"})
        chunks = [chunk async for chunk in response.streaming_content]
        # The test client keeps connections open after a request; close the sync thread's one.
        await sync_to_async(connections.close_all)()
        return response, chunks

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "StreamingHttpResponse must consume synchronous iterators"
        # In a thread of its own: a browser test earlier in the run may have left an event loop
        # running in this one (Playwright's sync API), and asyncio.run() refuses to nest.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            response, chunks = pool.submit(asyncio.run, download()).result()

    assert response.status_code == 200 and response.is_async
    assert len(chunks) == 1 + 3
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode("utf-8")[1:])))
    assert len(rows) == 25 and rows[0]["Recipient first name"] == "'" + FORMULA_NAME


def test_xlsx_is_written_by_the_write_only_workbook(manager_client, monkeypatch):
    written = []
    real = exports.write_xlsx
    monkeypatch.setattr(exports, "write_xlsx", lambda table, target, **kw: written.append(1) or real(table, target, **kw))
    DeliveryFactory.create_batch(3)

    response = export(manager_client, format="xlsx")

    sheet, _content = xlsx_sheet(response)
    assert written and sheet.max_row == 4


# --- Filters ----------------------------------------------------------------------------------


@pytest.fixture
def ledger():
    """Deliveries that differ in one way each from a "base" one."""
    news = CategoryFactory(key="newsletter", name="Newsletter")
    orders = CategoryFactory(key="orders", name="Orders", kind="transactional")
    run = make_campaign(category=news)
    march = datetime(2025, 3, 10, 12, tzinfo=UTC)
    return {
        "base": DeliveryFactory(category=news, run=run, channel="email", status="sent", created_at=march),
        "sms": DeliveryFactory(category=news, run=run, channel="sms", status="sent", created_at=march),
        "failed": DeliveryFactory(category=news, run=run, channel="email", status="failed", created_at=march),
        "orders": DeliveryFactory(category=orders, channel="email", status="sent", created_at=march),
        "april": DeliveryFactory(category=news, run=run, channel="email", status="sent", created_at=march + timedelta(days=30)),
        "campaign": run.campaign,
        "news": news,
        "orders_category": orders,
    }


def exported_ids(client, **filters) -> set[int]:
    return {int(row["Delivery id"]) for row in csv_rows(export(client, **filters))}


def test_filters_select_the_exported_deliveries(manager_client, ledger):
    ids = {name: d.pk for name, d in ledger.items() if hasattr(d, "status") and hasattr(d, "channel")}
    everything = set(ids.values())

    assert exported_ids(manager_client) == everything
    assert exported_ids(manager_client, channel="sms") == {ids["sms"]}
    assert exported_ids(manager_client, status="failed") == {ids["failed"]}
    assert exported_ids(manager_client, category=ledger["orders_category"].pk) == {ids["orders"]}
    assert exported_ids(manager_client, campaign=ledger["campaign"].pk) == everything - {ids["orders"]}
    assert exported_ids(manager_client, date_from="2025-03-10", date_to="2025-03-10") == everything - {ids["april"]}
    assert exported_ids(manager_client, date_from="2025-04-01") == {ids["april"]}
    assert exported_ids(manager_client, channel="email", status="sent", date_to="2025-03-31") == {ids["base"], ids["orders"]}


def test_receipt_kind_filter(manager_client, ledger):
    DeliveryEvent.objects.create(delivery=ledger["base"], kind="sent", source="smtp")
    clicked = DeliveryEvent.objects.create(delivery=ledger["base"], kind="clicked", source="click")

    rows = csv_rows(export(manager_client, kind="receipts", receipt_kind="clicked"))

    assert [int(row["Receipt id"]) for row in rows] == [clicked.pk]


def test_an_inverted_date_range_is_a_form_error(manager_client):
    response = export(manager_client, date_from="2025-03-10", date_to="2025-03-01")

    assert response.status_code == 200
    assert not response.streaming
    assert "The end date is before the start date." in response.content.decode()


# --- Big XLSX in the background ---------------------------------------------------------------


def test_big_xlsx_is_generated_by_the_task_and_downloadable_when_ready(
    manager_client, manager, settings, django_capture_on_commit_callbacks
):
    settings.SIGNALBOX_REPORT_INLINE_ROWS = 2
    settings.TASKS = IMMEDIATE_TASKS
    recipient = UserFactory(first_name=FORMULA_NAME)
    DeliveryFactory.create_batch(3, recipient=recipient)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = export(manager_client, format="xlsx")
    report = Report.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('reports:index')}?watch={report.pk}#report-{report.pk}"
    assert (report.status, report.kind, report.format, report.created_by) == ("queued", "deliveries", "xlsx", manager)
    assert len(callbacks) == 1  # enqueued on commit, not before

    callbacks[0]()  # the commit: the (immediate) backend runs report_generate_task

    report.refresh_from_db()
    assert (report.status, report.rows) == ("ready", 3)
    download = manager_client.get(reverse("reports:download", args=[report.pk]))
    sheet, _content = xlsx_sheet(download)
    assert sheet.max_row == 4
    assert sheet["F2"].value == FORMULA_NAME and sheet["F2"].data_type == "s"


def test_xlsx_sheets_roll_over_at_excels_row_limit(monkeypatch):
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS_PER_SHEET", 2)
    table = exports.Table(kind="deliveries", headers=["n"], rows=iter([(1,), (2,), (3,)]))
    target = io.BytesIO()

    assert exports.write_xlsx(table, target) == 3

    workbook = openpyxl.load_workbook(io.BytesIO(target.getvalue()))
    assert workbook.sheetnames[:2] == ["deliveries", "deliveries 2"]
    assert [c.value for c in workbook["deliveries 2"]["A"]] == ["n", 3]


# --- Audit ------------------------------------------------------------------------------------


def test_every_export_is_audited(manager_client, manager, ledger):
    b"".join(export(manager_client, channel="sms").streaming_content)
    b"".join(export(manager_client, format="xlsx", kind="campaigns").streaming_content)

    entries = list(AuditEntry.objects.filter(action="data.export").order_by("id"))
    assert [(e.actor, e.changes["kind"], e.changes["format"]) for e in entries] == [
        (manager, "deliveries", "csv"), (manager, "campaigns", "xlsx"),
    ]
    assert entries[0].changes["filters"] == {"channel": "sms"}


def test_filters_round_trip_through_report_params():
    filters = ReportFilters(date_from=datetime(2025, 1, 2).date(), campaign_id=3, channel="sms", receipt_kind="opened")
    assert ReportFilters.from_params(filters.to_params()) == filters
