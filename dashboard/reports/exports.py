"""CSV and XLSX exports of deliveries, receipts and campaign summaries, streamed row by row.

Rows come from ``values_list(...).iterator(chunk_size=...)``: one query, read in chunks, never a
list of a million model instances. CSV is generated as the response is sent; XLSX is written
with openpyxl's write-only workbook (rows go straight to a temporary file on disk).

Formula injection (OWASP "CSV Injection"): a recipient may call themselves
``=HYPERLINK("http://x")``. In CSV every text cell that starts with ``= + - @``, a tab or a
carriage return (after leading spaces) gets a leading ``'`` so a spreadsheet shows it as text.
XLSX has real cell types: every text cell is written as a string cell (never a formula, whatever
it starts with), and those that look like formulas also get Excel's "quote prefix" style, so
editing the cell keeps it text. The text itself is left as it was: an XLSX shows the name the
recipient typed, not a mangled one.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

from ..csvsafe import looks_like_formula, neutralise
from . import data
from .data import ReportFilters

CHUNK_SIZE = 2000
CSV_ROWS_PER_CHUNK = 500
XLSX_MAX_ROWS_PER_SHEET = 1_048_575  # Excel's 1,048,576 rows, less the header
XLSX_MAX_CELL_CHARS = 32_767

DELIVERIES = "deliveries"
RECEIPTS = "receipts"
CAMPAIGNS = "campaigns"
KINDS = (DELIVERIES, RECEIPTS, CAMPAIGNS)


def _local(value: datetime) -> datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


# --- What is exported ------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """Headers and a lazy iterator of rows of plain values (str, int, float, datetime, None)."""

    kind: str
    headers: list[str]
    rows: Iterable[tuple]


def _deliveries(filters: ReportFilters) -> Table:
    columns = [
        (_("Delivery id"), "id"),
        (_("Created"), "created_at"),
        (_("Campaign"), "run__campaign__name"),
        (_("Campaign run id"), "run_id"),
        (_("Recipient username"), "recipient__username"),
        (_("Recipient first name"), "recipient__first_name"),
        (_("Recipient last name"), "recipient__last_name"),
        (_("Recipient email"), "recipient__email"),
        (_("Channel"), "channel"),
        (_("Category"), "category__key"),
        (_("Address"), "address"),
        (_("Status"), "status"),
        (_("Reason"), "status_reason"),
        (_("Provider id"), "provider_message_id"),
        (_("Attempts"), "attempts"),
        (_("Sent"), "sent_at"),
        (_("Delivered"), "delivered_at"),
        (_("Opened"), "opened_at"),
        (_("Clicked"), "clicked_at"),
        (_("Read"), "read_at"),
        (_("Failed"), "failed_at"),
        (_("Last error"), "last_error"),
    ]
    rows = (
        data.deliveries_in_scope(filters=filters)
        .order_by("created_at", "id")
        .values_list(*(name for _header, name in columns), "idempotency_key")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    headers = [header for header, _name in columns]
    # Journey columns go last: spreadsheets built on the earlier columns keep their letters.
    return Table(kind=DELIVERIES, headers=[*headers, *_journey_headers()], rows=_with_journey(rows, at=len(headers)))


def _receipts(filters: ReportFilters) -> Table:
    columns = [
        (_("Receipt id"), "id"),
        (_("Occurred"), "occurred_at"),
        (_("Kind"), "kind"),
        (_("Source"), "source"),
        (_("Provider event id"), "provider_event_id"),
        (_("Delivery id"), "delivery_id"),
        (_("Channel"), "delivery__channel"),
        (_("Address"), "delivery__address"),
        (_("Recipient username"), "delivery__recipient__username"),
        (_("Recipient first name"), "delivery__recipient__first_name"),
        (_("Recipient last name"), "delivery__recipient__last_name"),
        (_("Campaign"), "delivery__run__campaign__name"),
        (_("Details"), "data"),
    ]
    rows = (
        data.receipts_in_scope(filters=filters)
        .order_by("occurred_at", "id")
        .values_list(*(name for _header, name in columns), "delivery__idempotency_key")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    headers = [header for header, _name in columns]
    return Table(kind=RECEIPTS, headers=[*headers, *_journey_headers()], rows=_with_journey(rows, at=len(headers)))


def _journey_headers() -> list[str]:
    return [_("Journey"), _("Journey step")]


def _with_journey(rows: Iterable[tuple], *, at: int) -> Iterator[tuple]:
    """Rows whose last value is the delivery's ledger key, with the journey's name and the step
    put in at ``at`` in its place (empty outside journeys).

    A journey delivery's key is ``journey:<enrollment>:<step>:<channel>``; the journeys of a batch
    of rows are read in one query per ``CHUNK_SIZE`` rows that have any, not one per row.
    """
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK_SIZE:
            yield from _journey_batch(batch, at=at)
            batch = []
    if batch:
        yield from _journey_batch(batch, at=at)


def _journey_batch(batch: list[tuple], *, at: int) -> Iterator[tuple]:
    from notifications.models import JourneyEnrollment

    parsed: list[tuple[int, str] | None] = []
    for row in batch:
        parts = (row[-1] or "").split(":")
        parsed.append((int(parts[1]), parts[2]) if len(parts) >= 4 and parts[0] == "journey" and parts[1].isdigit()
                      else None)
    wanted = {p[0] for p in parsed if p}
    names = dict(JourneyEnrollment.objects.filter(pk__in=wanted).values_list("pk", "journey__name")) if wanted else {}
    for row, found in zip(batch, parsed, strict=True):
        journey, step = (names.get(found[0], ""), found[1]) if found else ("", "")
        values = row[:-1]
        yield (*values[:at], journey, step, *values[at:])


def _campaigns(filters: ReportFilters) -> Table:
    headers = [
        _("Campaign id"), _("Name"), _("Status"), _("Category"), _("Channels"), _("Author"), _("Created"),
        _("Runs"), _("Planned"), _("Sent"), _("Delivered"), _("Opened"), _("Clicked"), _("Failed"),
        _("Not sent (suppressed)"), _("Outcome unknown"), _("Waiting"), _("Unsubscribed"), _("Open rate %"),
        _("Click rate %"),
    ]

    def percent(rate: float | None) -> float | None:
        return round(rate * 100, 1) if rate is not None else None

    def rows() -> Iterator[tuple]:
        for summary in data.campaign_summaries(filters=filters):
            campaign, outcomes = summary.campaign, summary.outcomes
            yield (
                campaign.pk, campaign.name, campaign.status, campaign.category.key if campaign.category_id else None,
                ", ".join(campaign.channels or []), campaign.author.get_username() if campaign.author_id else None,
                campaign.created_at, summary.runs, outcomes.planned, outcomes.sent, outcomes.delivered,
                outcomes.opened, outcomes.clicked, outcomes.failed, outcomes.suppressed, outcomes.unknown,
                outcomes.waiting, outcomes.unsubscribed,
                percent(outcomes.open_rate), percent(outcomes.click_rate),
            )

    return Table(kind=CAMPAIGNS, headers=headers, rows=rows())


TABLES: dict[str, Callable[[ReportFilters], Table]] = {
    DELIVERIES: _deliveries,
    RECEIPTS: _receipts,
    CAMPAIGNS: _campaigns,
}


def export_table(*, kind: str, filters: ReportFilters) -> Table:
    return TABLES[kind](filters)


def export_row_count(*, kind: str, filters: ReportFilters) -> int:
    """How many rows an export will have: one ``COUNT`` (campaigns are few, counted as zero)."""
    if kind == DELIVERIES:
        return data.deliveries_in_scope(filters=filters).count()
    if kind == RECEIPTS:
        return data.receipts_in_scope(filters=filters).count()
    return 0


def export_filename(*, kind: str, filters: ReportFilters, extension: str, suffix: str = "") -> str:
    if filters.date_from or filters.date_to:
        span = f"{filters.date_from or 'start'}_{filters.date_to or 'now'}"
    else:
        span = timezone.localdate().isoformat()
    return f"signalbox-{kind}-{span}{'-' + suffix if suffix else ''}.{extension}"


# --- CSV --------------------------------------------------------------------------------------


def csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _local(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return value
    return neutralise(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


class _Line:
    """A file-like object for ``csv.writer`` that hands back what was written."""

    def write(self, value: str) -> str:
        return value


def csv_chunks(table: Table) -> Iterator[bytes]:
    """The CSV as UTF-8 byte chunks, starting with a BOM so Excel reads Chinese correctly."""
    writer = csv.writer(_Line())
    yield ("\ufeff" + writer.writerow([neutralise(h) for h in table.headers])).encode("utf-8")
    lines: list[str] = []
    for row in table.rows:
        lines.append(writer.writerow([csv_value(value) for value in row]))
        if len(lines) >= CSV_ROWS_PER_CHUNK:
            yield "".join(lines).encode("utf-8")
            lines = []
    if lines:
        yield "".join(lines).encode("utf-8")


async def async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The same chunks for ASGI servers, pulled one at a time.

    Given a plain iterator, Django under ASGI reads it whole into a list before sending anything
    (a million-row export in memory). Each ``next`` runs in the request's sync thread
    (``thread_sensitive``), where the query's cursor lives.
    """
    pull = sync_to_async(next, thread_sensitive=True)
    done = object()
    while (chunk := await pull(chunks, done)) is not done:
        yield chunk


class _CountedRows:
    """Iterates the rows of a table and counts them on the way."""

    def __init__(self, rows: Iterable[tuple]) -> None:
        self.rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[tuple]:
        for row in self.rows:
            self.count += 1
            yield row


def write_csv(table: Table, target: IO[bytes]) -> int:
    """Write the CSV to a binary file; returns the number of data rows."""
    counted = _CountedRows(table.rows)
    for chunk in csv_chunks(replace(table, rows=counted)):
        target.write(chunk)
    return counted.count


# --- XLSX -------------------------------------------------------------------------------------


def xlsx_cell(sheet, value: Any) -> Any:
    """A write-only cell for ``value``; text is always a string cell, never a formula."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        # Excel has no time zones: write local wall time (the header says which zone).
        cell = WriteOnlyCell(sheet, value=_local(value).replace(tzinfo=None))
        cell.number_format = "yyyy-mm-dd hh:mm:ss"
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = ILLEGAL_CHARACTERS_RE.sub("", value)[:XLSX_MAX_CELL_CHARS]
    cell = WriteOnlyCell(sheet, value=text)
    # openpyxl makes any text starting with "=" a formula cell; force a string cell instead.
    cell.data_type = "s"
    if looks_like_formula(text):
        cell.quotePrefix = True
    return cell


def _header_cells(sheet, headers: list[str]) -> list:
    cells = []
    for header in headers:
        cell = WriteOnlyCell(sheet, value=header)
        cell.data_type = "s"
        cell.font = Font(bold=True)
        cells.append(cell)
    return cells


def write_xlsx(table: Table, target: str | IO[bytes], *, sheet_title: str | None = None) -> int:
    """Write the XLSX (write-only workbook: rows stream to disk); returns the number of data rows.

    Past Excel's row limit the rows continue on a second sheet, and so on.
    """
    workbook = Workbook(write_only=True)
    title = (sheet_title or table.kind)[:28]
    tz_name = timezone.get_current_timezone_name()
    headers = [*table.headers]
    sheet = None
    sheets = 0
    in_sheet = rows = 0
    for row in table.rows:
        if sheet is None or in_sheet >= XLSX_MAX_ROWS_PER_SHEET:
            sheets += 1
            sheet = workbook.create_sheet(title if sheets == 1 else f"{title} {sheets}")
            sheet.freeze_panes = "A2"
            sheet.append(_header_cells(sheet, headers))
            in_sheet = 0
        sheet.append([xlsx_cell(sheet, value) for value in row])
        in_sheet += 1
        rows += 1
    if sheet is None:
        sheet = workbook.create_sheet(title)
        sheet.append(_header_cells(sheet, headers))
    info = workbook.create_sheet(_("About"))
    info.append([_("Times are local time in %(zone)s.") % {"zone": tz_name}])
    info.append([_("Rows"), rows])
    workbook.save(target)
    return rows
