"""Reading an uploaded CSV: encoding, delimiter, rows with their line numbers, and the caps.

Files are read whole (they are capped at ``SIGNALBOX_IMPORT_MAX_BYTES``, 20 MB by default), so the
encoding is decided once for the entire file rather than guessed from its first bytes.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.utils.translation import gettext as _g
from django.utils.translation import ngettext

DELIMITERS = ",;\t|"
SNIFF_CHARS = 64 * 1024
SAMPLE_ROWS = 3
# Control characters other than tab, CR, LF and the DOS end-of-file mark never occur in a text CSV.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x19\x1b-\x1f\x7f]")
_SIGNATURES = {
    b"PK\x03\x04": "xlsx",
    b"\xd0\xcf\x11\xe0": "xls",
    b"%PDF": "pdf",
}


class ImportFileError(ValueError):
    """The file cannot be imported at all: too big, not text, not CSV, no rows. Nothing was read in."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One CSV record. ``line`` is where it starts in the file (1-based, the header is line 1 or later)."""

    line: int
    end_line: int
    cells: list[str] | None  # None when the record is not valid CSV (``error`` says why)
    error: str = ""


@dataclass(frozen=True)
class CsvInspection:
    """What the upload step learns about a file before anything is stored or imported."""

    encoding: str
    delimiter: str
    headers: list[str]
    header_line: int
    row_count: int
    sample: list[list[str]] = field(default_factory=list)


def csv_decode(data: bytes) -> tuple[str, str]:
    """Bytes -> (text, encoding). UTF-8 (with or without Excel's BOM), else GB18030 (a superset of GBK).

    UTF-16 with a BOM ("Unicode text" from Excel) is read too. Anything else is refused with a
    message that says how to save the file properly.
    """
    for signature, kind in _SIGNATURES.items():
        if data.startswith(signature):
            if kind in ("xlsx", "xls"):
                raise ImportFileError(
                    _g("This is an Excel workbook, not a CSV file. In Excel choose File → Save As → "
                       "“CSV UTF-8 (comma delimited)” and upload that file.")
                )
            raise ImportFileError(_g("This is a PDF document, not a CSV file."))
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text, encoding = data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise ImportFileError(_g("The file says it is UTF-16 but is not valid UTF-16 text.")) from None
    elif data.startswith(codecs.BOM_UTF8):
        try:
            text, encoding = data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            raise ImportFileError(_g("The file starts like UTF-8 but is not valid UTF-8 text.")) from None
    else:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            try:
                text, encoding = data.decode("gb18030"), "gb18030"
            except UnicodeDecodeError:
                raise ImportFileError(
                    _g("The file is neither UTF-8 nor GBK text. Save it as “CSV UTF-8” and upload it again.")
                ) from None
    if _CONTROL.search(text):
        raise ImportFileError(_g("The file is not a text file (it contains binary data)."))
    return text, encoding


def csv_sniff_delimiter(text: str) -> str:
    """Comma, semicolon, tab or pipe, from the first 64 KB; a comma when there is only one column."""
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    first_line = next((line for line in sample.splitlines() if line.strip()), "")
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = ""
    if delimiter and delimiter in first_line:
        return delimiter
    # The sniffer found nothing consistent (one column, or few lines): go by the header line.
    counts = {candidate: first_line.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def csv_records(text: str, delimiter: str) -> Iterator[SourceRow]:
    """Every record with its line numbers; blank lines skipped.

    A record that is not valid CSV (a stray quote inside a value) comes back with ``cells=None``
    and the reason, and reading goes on with the next line. A quote that is never closed
    swallows the rest of the file, so that is an ``ImportFileError`` for the whole file.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = str(exc)
            if "unexpected end of data" in message or "field larger than field limit" in message:
                raise ImportFileError(
                    _g("Line %(line)d: a quoted value is never closed, so every line after it would be lost. "
                       "Close the quote (or remove it) and upload the file again.") % {"line": start}
                ) from None
            yield SourceRow(start, reader.line_num, None, _g("not valid CSV (%(error)s)") % {"error": message})
            continue
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        yield SourceRow(start, reader.line_num, cells)


def csv_split_header(records: Iterator[SourceRow]) -> tuple[SourceRow, Iterator[SourceRow]]:
    """The first record is the header; it must be valid CSV."""
    header = next(records, None)
    if header is None:
        raise ImportFileError(_g("The file is empty."))
    if header.cells is None:
        raise ImportFileError(
            _g("Line %(line)d, the header, is %(error)s.") % {"line": header.line, "error": header.error}
        )
    return header, records


def csv_inspect(data: bytes, *, max_bytes: int, max_rows: int) -> CsvInspection:
    """Decode, sniff and count a whole upload, refusing it when it breaks a cap or is not CSV."""
    if len(data) > max_bytes:
        raise ImportFileError(
            _g("The file is %(size)s; the largest file you can import is %(max)s. Split it into smaller files.")
            % {"size": _megabytes(len(data)), "max": _megabytes(max_bytes)}
        )
    if not data.strip():
        raise ImportFileError(_g("The file is empty."))
    text, encoding = csv_decode(data)
    delimiter = csv_sniff_delimiter(text)
    header, records = csv_split_header(csv_records(text, delimiter))
    rows = 0
    sample: list[list[str]] = []
    for record in records:
        rows += 1
        if rows > max_rows:
            raise ImportFileError(
                ngettext(
                    "The file has more than %(max)d row; split it into files of at most %(max)d row.",
                    "The file has more than %(max)d rows; split it into files of at most %(max)d rows.",
                    max_rows,
                ) % {"max": max_rows}
            )
        if len(sample) < SAMPLE_ROWS and record.cells is not None:
            sample.append(record.cells)
    if rows == 0:
        raise ImportFileError(_g("The file has a header but no rows to import."))
    return CsvInspection(
        encoding=encoding, delimiter=delimiter, headers=header.cells, header_line=header.line,
        row_count=rows, sample=sample,
    )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
