"""Rows of uploaded CSV files that mention a person (``notifications.privacy`` kind "import_rows").

An import keeps its file (and its error report) as history, so a person's row stays in it after
the import. The export lists every such row with the file and line; erasure rewrites the files
without those rows (same encoding and delimiter) and drops them from the samples the job keeps
for its preview page. Files are read a record at a time, so any size costs one row of memory.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterator

from django.core.files.base import File

from notifications.privacy.kinds import Kind
from notifications.privacy.people import Person, phone_e164

from .. import conf
from ..models import ImportJob
from .reading import ImportFileError, csv_open_records, csv_split_header

_NOT_DIGITS = re.compile(r"\D")


class _Mentions:
    """Whether a cell is one of the person's addresses (email any case, phone in any form)."""

    def __init__(self, person: Person):
        self.email = person.email
        self.phone = person.phone
        self.phone_tail = _NOT_DIGITS.sub("", person.phone)[-7:] if person.phone else ""

    def cell(self, value: str) -> bool:
        value = value.strip().lstrip("'")  # error reports neutralise cells with a leading '
        if not value:
            return False
        if self.email and "@" in value and value.lower() == self.email:
            return True
        if self.phone_tail and _NOT_DIGITS.sub("", value).endswith(self.phone_tail):
            return phone_e164(value) == self.phone
        return False

    def row(self, cells) -> bool:
        return any(self.cell(str(c)) for c in cells)

    def anywhere(self, value) -> bool:
        if isinstance(value, dict):
            return any(self.anywhere(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(self.anywhere(v) for v in value)
        return isinstance(value, str) and self.cell(value)


def _files(job: ImportJob):
    """(what, file field, encoding, delimiter) of each file the job keeps."""
    if job.file:
        yield "upload", job.file, job.encoding or "utf-8", job.delimiter or ","
    if job.error_report:
        yield "error_report", job.error_report, "utf-8-sig", ","


def _records(field, encoding: str, delimiter: str):
    with field.open("rb") as handle:
        records = csv_open_records(
            handle, encoding=encoding, delimiter=delimiter, max_bytes=max(conf.import_max_bytes(), field.size * 2),
            max_columns=conf.import_max_columns() + 2, max_line_chars=conf.import_max_line_chars() * 2,
        )
        header, rows = csv_split_header(records)
        yield header
        yield from rows


class ImportRowsKind(Kind):
    name = "import_rows"

    def columns(self) -> list[str]:
        return ["import_job_id", "file", "file_name", "line", "row"]

    def rows(self, person: Person) -> Iterator[dict]:
        mentions = _Mentions(person)
        if not (mentions.email or mentions.phone):
            return
        for job in ImportJob.objects.order_by("pk").iterator(chunk_size=200):
            for what, field, encoding, delimiter in _files(job):
                try:
                    records = _records(field, encoding, delimiter)
                    header = next(records).cells
                    for record in records:
                        if record.cells is not None and mentions.row(record.cells):
                            yield {
                                "import_job_id": job.pk, "file": what, "file_name": job.original_name,
                                "line": record.line, "row": dict(zip(header, record.cells, strict=False)),
                            }
                except (OSError, ImportFileError, StopIteration):
                    continue  # a file gone from storage, or unreadable: nothing of theirs can be read in it

    def erase(self, person: Person) -> int:
        mentions = _Mentions(person)
        if not (mentions.email or mentions.phone):
            return 0
        removed = 0
        for job in ImportJob.objects.order_by("pk").iterator(chunk_size=200):
            for what, field, encoding, delimiter in list(_files(job)):
                removed += _rewrite_without(field, encoding, delimiter, mentions)
            if mentions.anywhere(job.details):
                ImportJob.objects.filter(pk=job.pk).update(details=_scrub(job.details, mentions))
        return removed


def _rewrite_without(field, encoding: str, delimiter: str, mentions: _Mentions) -> int:
    """Write the file again without the person's rows; how many went (0: the file is untouched)."""
    try:
        found = any(r.cells is not None and mentions.row(r.cells) for r in _records(field, encoding, delimiter))
        if not found:
            return 0
        removed = 0
        with tempfile.TemporaryFile() as out:
            text = io.TextIOWrapper(out, encoding=encoding, newline="")
            writer = csv.writer(text, delimiter=delimiter)
            records = _records(field, encoding, delimiter)
            writer.writerow(next(records).cells)  # the header
            for record in records:
                if record.cells is None:
                    continue  # not CSV: it was never imported, and it might be theirs
                if mentions.row(record.cells):
                    removed += 1
                    continue
                writer.writerow(record.cells)
            text.flush()
            out.seek(0)
            name = field.name.rsplit("/", 1)[-1]
            storage, old_name = field.storage, field.name
            field.save(name, File(out, name=name), save=False)  # the new file first: never neither
            storage.delete(old_name)
            text.detach()
        type(field.instance).objects.filter(pk=field.instance.pk).update(**{field.field.name: field.name})
        return removed
    except (OSError, ImportFileError, StopIteration):
        return 0


def _scrub(value, mentions: _Mentions):
    """``value`` (a job's JSON details) without the rows that mention the person."""
    if isinstance(value, dict):
        return {k: _scrub(v, mentions) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, mentions) for v in value if not (isinstance(v, dict | list) and mentions.anywhere(v))]
    if isinstance(value, str) and mentions.cell(value):
        return ""
    return value
