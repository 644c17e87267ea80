"""Reading an uploaded CSV: encoding, delimiter, rows with their line numbers, and the caps.

Files are **streamed** from wherever they are stored (the upload's temporary file, then the job's
file): bytes are read and decoded a chunk at a time and split into lines a chunk at a time, so the
memory reading needs does not grow with the file. Every cap is enforced while reading, before
anything is kept: bytes (``max_bytes``), characters on one line (``max_line_chars``; a record
that spans lines is bounded too), values on one line (``max_columns``) and data rows
(``max_rows``).

The encoding is decided for the whole file: a UTF-16 or UTF-8 byte-order mark says which; without
one the file is read as UTF-8 and, if any byte of it is not UTF-8, read again from the start as
GB18030 (a superset of GBK). Anything else is refused.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import operator
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from django.utils.translation import gettext
from django.utils.translation import ngettext

from ..csvsafe import looks_like_formula

DELIMITERS = ",;\t|"
SNIFF_CHARS = 64 * 1024
SAMPLE_ROWS = 3
READ_CHUNK_BYTES = 64 * 1024
TEXT_CHUNK_CHARS = 262144
# Defaults of the caps that have no setting of their own here (``dashboard.conf`` has the settings).
DEFAULT_MAX_COLUMNS = 200
DEFAULT_MAX_LINE_CHARS = 100_000
# Control characters other than tab, CR, LF and the DOS end-of-file mark never occur in a text CSV.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x19\x1b-\x1f\x7f]")
_SIGNATURES = {
    b"PK\x03\x04": "xlsx",
    b"\xd0\xcf\x11\xe0": "xls",
    b"%PDF": "pdf",
}


class ImportFileError(ValueError):
    """The file cannot be imported at all: too big, not text, not CSV, no rows. Nothing was read in."""


class _Undecodable(ImportFileError):
    """The bytes are not text in the encoding being tried (the reader may try the next one)."""


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
    size: int = 0  # bytes


# --- bytes -> lines ------------------------------------------------------------------------------


class _CappedReader(io.RawIOBase):
    """A binary file read no further than ``max_bytes``: one byte more refuses the file.

    Counting what is actually read (not trusting a declared size) is what makes the cap hold for
    any source. Closing this reader leaves the underlying file open: its owner closes it.
    """

    def __init__(self, handle: IO[bytes], max_bytes: int):
        self.handle = handle
        self.max_bytes = max_bytes
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.handle.read(len(buffer))
        self.count += len(data)
        if self.count > self.max_bytes:
            raise ImportFileError(
                gettext("The file is larger than %(max)s, the largest file you can import. "
                        "Split it into smaller files.")
                % {"max": _megabytes(self.max_bytes)}
            )
        buffer[: len(data)] = data
        return len(data)


def csv_sniff_encoding(handle: IO[bytes]) -> str:
    """The encoding the first bytes promise: ``utf-16`` or ``utf-8-sig`` by their BOM, else ``utf-8``.

    ``utf-8`` is only a first guess (:func:`csv_inspect` falls back to GB18030). Workbooks and PDF
    documents are refused here, by their signature. The file is left at its start.
    """
    handle.seek(0)
    head = handle.read(4)
    handle.seek(0)
    for signature, kind in _SIGNATURES.items():
        if head.startswith(signature):
            if kind in ("xlsx", "xls"):
                raise ImportFileError(
                    gettext("This is an Excel workbook, not a CSV file. In Excel choose File → Save As → "
                            "“CSV UTF-8 (comma delimited)” and upload that file.")
                )
            raise ImportFileError(gettext("This is a PDF document, not a CSV file."))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    return "utf-8"


def csv_line_batches(
    handle: IO[bytes], *, encoding: str, max_bytes: int, max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
    chunk_chars: int = TEXT_CHUNK_CHARS,
) -> Iterator[list[str]]:
    """The file's lines (with their line endings) in batches, decoded a chunk at a time from the start.

    Raises :class:`ImportFileError` as soon as the file passes ``max_bytes``, a line passes
    ``max_line_chars``, a byte is not text in ``encoding`` or a control character shows it is
    not a text file. At most one chunk of the file and one line are held at a time. Batches
    rather than single lines, so that splitting and checking run in C, a chunk at a time.
    """
    handle.seek(0)
    raw = _CappedReader(handle, max_bytes)
    stream = io.TextIOWrapper(io.BufferedReader(raw, READ_CHUNK_BYTES), encoding=encoding, newline="")
    try:
        yield from _line_batches(stream, max_line_chars, chunk_chars)
    except UnicodeDecodeError:
        raise _Undecodable(_undecodable_message(encoding)) from None
    finally:
        stream.close()  # closes the buffer and the capped reader; the caller's file stays open


def _line_batches(stream: IO[str], max_line_chars: int, chunk_chars: int = TEXT_CHUNK_CHARS) -> Iterator[list[str]]:
    r"""The complete lines of each chunk of a text stream; a line longer than ``max_line_chars`` is refused.

    Lines end in ``\n``, ``\r\n`` or ``\r`` (kept), as the csv module expects. A line that
    runs past a chunk is carried into the next one, and refused as soon as what is carried is
    longer than a line may be, so a line is never read whole to find it is too long.
    """
    number = 0  # lines handed out so far
    carry = ""
    # A chunk holds more than two of the longest lines: see the batches bound in csv_records.
    chunk_chars = max(chunk_chars, 2 * max_line_chars + 2)
    while True:
        chunk = stream.read(chunk_chars)
        if _CONTROL.search(chunk):
            raise ImportFileError(gettext("The file is not a text file (it contains binary data)."))
        if not chunk:
            if carry:
                yield [carry]
            return
        text = carry + chunk
        if "\x85" in text or "\u2028" in text or "\u2029" in text:  # str.splitlines splits there, csv does not
            lines = io.StringIO(text, newline="").readlines()
        else:
            lines = text.splitlines(keepends=True)
        del text
        carry = lines.pop()
        if carry.endswith("\n"):  # complete; one ending in "\r" may still get its "\n" from the next chunk
            lines.append(carry)
            carry = ""
        elif len(carry) - carry.endswith("\r") > max_line_chars:
            raise ImportFileError(_line_too_long(number + len(lines) + 1, max_line_chars))
        if lines and max(map(len, lines)) > max_line_chars:  # endings included: look closer
            for index, line in enumerate(lines):
                if len(line.rstrip("\r\n")) > max_line_chars:
                    raise ImportFileError(_line_too_long(number + index + 1, max_line_chars))
        number += len(lines)
        yield lines


def _undecodable_message(encoding: str) -> str:
    if encoding == "utf-16":
        return gettext("The file says it is UTF-16 but is not valid UTF-16 text.")
    if encoding == "utf-8-sig":
        return gettext("The file starts like UTF-8 but is not valid UTF-8 text.")
    return gettext("The file is neither UTF-8 nor GBK text. Save it as “CSV UTF-8” and upload it again.")


def _line_too_long(line: int, max_chars: int) -> str:
    return gettext(
        "Line %(line)d is longer than %(max)s characters, the most one line may hold. A CSV file has one "
        "user per line: check that this is the right file and that it was saved as CSV."
    ) % {"line": line, "max": f"{max_chars:,}"}


def csv_decode(data: bytes) -> tuple[str, str]:
    """Bytes -> (text, encoding), for small texts in memory (tests, the shell); uploads are streamed.

    UTF-8 (with or without Excel's BOM), UTF-16 with a BOM, else GB18030; anything else is
    refused with a message that says how to save the file properly.
    """
    handle = io.BytesIO(data)
    encoding = csv_sniff_encoding(handle)
    caps = {"max_bytes": len(data), "max_line_chars": max(len(data), 1)}
    try:
        return "".join(itertools.chain.from_iterable(csv_line_batches(handle, encoding=encoding, **caps))), encoding
    except _Undecodable:
        if encoding != "utf-8":
            raise
    return "".join(itertools.chain.from_iterable(csv_line_batches(handle, encoding="gb18030", **caps))), "gb18030"


# --- lines -> records ----------------------------------------------------------------------------


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


class _RecordTooLong(Exception):
    pass


_starts_with_apostrophe = operator.methodcaller("startswith", "'")


def csv_records(
    source: str | Iterable[list[str]], delimiter: str, *, max_columns: int = DEFAULT_MAX_COLUMNS,
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
) -> Iterator[SourceRow]:
    """Every record of CSV text (a string, or line batches from :func:`csv_line_batches`) with its line numbers.

    Blank lines are skipped. A record that is not valid CSV (a stray quote inside a value) comes
    back with ``cells=None`` and the reason, and reading goes on with the next line. A quote that
    is never closed swallows the rest of the file, so that is an :class:`ImportFileError` for the
    whole file, as are a line or a record longer than ``max_line_chars`` and a line with more than
    ``max_columns`` values. What a record holds is bounded before the csv module builds it.
    """
    if isinstance(source, str):
        source = _line_batches(io.StringIO(source, newline=""), max_line_chars)
    record = [0]  # lines read before the record being read
    apostrophes = [False]  # whether any line so far holds a "'" (most files have none)

    def checked(batches: Iterable[list[str]]) -> Iterator[list[str]]:
        # A quoted value may span lines; without this, one never closed would gather the rest of
        # the file into one record. A record may run on into the next batch of lines (a batch is
        # more than twice as long as a line may be) but not past it: memory stays bounded, and
        # the csv module still reads the lines in C, with no Python code per line.
        spanning = -1
        for batch in batches:
            if reader.line_num > record[0]:  # the record being read goes on into this batch
                if spanning == record[0]:
                    raise _RecordTooLong
                spanning = record[0]
            if not apostrophes[0]:
                apostrophes[0] = any(map(operator.contains, batch, itertools.repeat("'")))
            yield batch

    reader = csv.reader(itertools.chain.from_iterable(checked(source)), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        record[0] = reader.line_num
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _RecordTooLong:
            raise ImportFileError(_never_closed(start)) from None
        except csv.Error as exc:
            message = str(exc)
            if "field larger than field limit" in message and reader.line_num <= start:
                raise ImportFileError(_line_too_long(start, csv.field_size_limit())) from None
            if "unexpected end of data" in message or "field larger than field limit" in message:
                raise ImportFileError(_never_closed(start)) from None
            yield SourceRow(start, reader.line_num, None, gettext("not valid CSV (%(error)s)") % {"error": message})
            continue
        if len(cells) > max_columns:
            raise ImportFileError(
                ngettext(
                    "Line %(line)d has %(count)s value; a file may have at most %(max)s column.",
                    "Line %(line)d has %(count)s values; a file may have at most %(max)s columns.",
                    len(cells),
                ) % {"line": start, "count": f"{len(cells):,}", "max": f"{max_columns:,}"}
                + " " + gettext("Delete the columns you do not need and upload the file again.")
            )
        cells = list(map(str.strip, cells))
        if apostrophes[0] and any(map(_starts_with_apostrophe, cells)):
            # A leading "'" before a formula-like value is how Signalbox's own CSV files (the error
            # report, exports) keep spreadsheets from running it: read it back as it was typed.
            cells = [cell[1:] if cell[:1] == "'" and looks_like_formula(cell[1:]) else cell for cell in cells]
        if not any(cells):
            continue
        yield SourceRow(start, reader.line_num, cells)


def _never_closed(line: int) -> str:
    return gettext(
        "Line %(line)d: a quoted value is never closed, so every line after it would be lost. "
        "Close the quote (or remove it) and upload the file again."
    ) % {"line": line}


def csv_split_header(records: Iterator[SourceRow]) -> tuple[SourceRow, Iterator[SourceRow]]:
    """The first record is the header; it must be valid CSV."""
    header = next(records, None)
    if header is None:
        raise ImportFileError(gettext("The file is empty."))
    if header.cells is None:
        raise ImportFileError(
            gettext("Line %(line)d, the header, is %(error)s.") % {"line": header.line, "error": header.error}
        )
    return header, records


def csv_open_records(
    handle: IO[bytes], *, encoding: str, delimiter: str, max_bytes: int,
    max_columns: int = DEFAULT_MAX_COLUMNS, max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
) -> Iterator[SourceRow]:
    """The records of a stored file whose encoding and delimiter are known, streamed with every cap."""
    batches = csv_line_batches(handle, encoding=encoding, max_bytes=max_bytes, max_line_chars=max_line_chars)
    return csv_records(batches, delimiter, max_columns=max_columns, max_line_chars=max_line_chars)


# --- the upload check ----------------------------------------------------------------------------


def csv_inspect(
    source: bytes | IO[bytes], *, max_bytes: int, max_rows: int, max_columns: int = DEFAULT_MAX_COLUMNS,
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
) -> CsvInspection:
    """Decide the encoding and delimiter and count the rows of an upload, streaming it.

    Refuses the file (:class:`ImportFileError`) when it breaks a cap or is not CSV. A file that
    is not UTF-8 is read a second time, from the start, as GB18030.
    """
    handle = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    size = handle.seek(0, io.SEEK_END)  # a stored file knows its size: refuse a big one unread
    if size > max_bytes:
        raise ImportFileError(
            gettext("The file is %(size)s; the largest file you can import is %(max)s. Split it into smaller files.")
            % {"size": _megabytes(size), "max": _megabytes(max_bytes)}
        )
    encoding = csv_sniff_encoding(handle)
    caps = {"max_bytes": max_bytes, "max_rows": max_rows, "max_columns": max_columns, "max_line_chars": max_line_chars}
    try:
        return _inspect(handle, encoding, size=size, **caps)
    except _Undecodable:
        if encoding != "utf-8":
            raise
    return _inspect(handle, "gb18030", size=size, **caps)


def _inspect(handle: IO[bytes], encoding: str, *, size: int, max_bytes: int, max_rows: int, max_columns: int,
             max_line_chars: int) -> CsvInspection:
    batches = csv_line_batches(handle, encoding=encoding, max_bytes=max_bytes, max_line_chars=max_line_chars)
    head: list[str] = []
    for batch in batches:  # whole lines, at least 64 KB of them, for the delimiter sniffer
        head.extend(batch)
        if sum(map(len, head)) > SNIFF_CHARS:
            break
    delimiter = csv_sniff_delimiter("".join(head))
    records = csv_records(itertools.chain([head], batches), delimiter, max_columns=max_columns,
                          max_line_chars=max_line_chars)
    header, records = csv_split_header(records)
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
        raise ImportFileError(gettext("The file has a header but no rows to import."))
    return CsvInspection(
        encoding=encoding, delimiter=delimiter, headers=header.cells, header_line=header.line,
        row_count=rows, sample=sample, size=size,
    )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
