"""Everything about one person as a ZIP: per kind, ``<kind>.json`` (every field, as stored) and
``<kind>.csv`` (the same rows for a spreadsheet: text cells neutralised against formulas), plus
``manifest.json`` (who, when, how many rows of each kind).

Streamed: rows are read a chunk at a time and the archive is written as it goes (ZIP data
descriptors, no seeking), so a person with 100,000 deliveries costs a chunk of rows of memory,
whether the archive goes to a file or, a piece at a time, into an HTTP response.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import allows
from dashboard.csvsafe import neutralise

from ..services import audit_record
from .kinds import Kind, kinds
from .people import Person

EXPORT_ACTION = "person.export"
ROWS_PER_PIECE = 500  # rows between hand-overs of the bytes written so far


def person_export(*, person: Person, actor, out: IO[bytes]) -> dict[str, int]:
    """Write the person's archive to ``out`` (a file; need not be seekable); rows per kind.

    ``actor`` must be allowed ``person.export`` (``PermissionDenied``); the export is audited
    (who, whose id, how many rows), never with the data itself.
    """
    pieces = person_export_stream(person=person, actor=actor, sink=out)
    for _piece in pieces:
        pass
    return pieces.counts


class _Pieces:
    """The archive's bytes as they are written (an iterator), and the rows counted on the way."""

    def __init__(self, person: Person, sink: IO[bytes] | None):
        self.person = person
        self.buffer = _Buffer() if sink is None else None
        self.sink = sink if sink is not None else self.buffer
        self.counts: dict[str, int] = {}
        self._run = self._write()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._run)

    def _hand_over(self) -> Iterator[bytes]:
        if self.buffer is not None:
            data = self.buffer.take()
            if data:
                yield data
        else:
            yield b""

    def _write(self) -> Iterator[bytes]:
        with zipfile.ZipFile(self.sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for kind in kinds():
                self.counts[kind.name] = yield from self._kind_json(archive, kind)
                yield from self._kind_csv(archive, kind)
            manifest = {
                "person_id": self.person.pk,
                "exported_at": timezone.now().isoformat(),
                "rows": self.counts,
                "files": _("Each kind twice: <kind>.json with every field as stored, <kind>.csv for spreadsheets."),
            }
            archive.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        yield from self._hand_over()

    def _kind_json(self, archive: zipfile.ZipFile, kind: Kind) -> Iterator[bytes]:
        count = 0
        with archive.open(f"{kind.name}.json", "w") as member:
            lines = ["["]
            for row in kind.rows(self.person):
                lines.append(("," if count else "") + "\n" + json.dumps(row, cls=DjangoJSONEncoder, ensure_ascii=False))
                count += 1
                if count % ROWS_PER_PIECE == 0:  # one compressor call per piece, not per row
                    member.write("".join(lines).encode())
                    lines.clear()
                    yield from self._hand_over()
            lines.append("\n]\n")
            member.write("".join(lines).encode())
        yield from self._hand_over()
        return count

    def _kind_csv(self, archive: zipfile.ZipFile, kind: Kind) -> Iterator[bytes]:
        with archive.open(f"{kind.name}.csv", "w") as member:
            text = io.TextIOWrapper(member, encoding="utf-8-sig", newline="")
            writer = csv.writer(text)
            columns = kind.columns()
            writer.writerow([neutralise(c) for c in columns])
            for count, row in enumerate(kind.rows(self.person), start=1):
                writer.writerow([csv_cell(row.get(c)) for c in columns])
                if count % ROWS_PER_PIECE == 0:
                    text.flush()
                    yield from self._hand_over()
            text.flush()
            text.detach()
        yield from self._hand_over()


class _Buffer(io.RawIOBase):
    """Where the archive is written when it goes out in pieces: handed over and forgotten."""

    def __init__(self):
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def person_export_stream(*, person: Person, actor, sink: IO[bytes] | None = None) -> _Pieces:
    """The archive as an iterator of byte pieces (for a streaming response); checked and audited
    now, before the first byte, so a refused export sends nothing."""
    if not allows(actor, EXPORT_ACTION):
        raise PermissionDenied(_("You may not export a person's data."))
    audit_record(actor=actor, action="person.exported", target=person.user, changes={"person_id": person.pk})
    return _Pieces(person, sink)


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell a spreadsheet shows as it is (never runs as a formula)."""
    kind = type(value)  # exact types first: this runs for every cell of 100,000s of rows
    if kind is str:
        return neutralise(value)
    if value is None:
        return ""
    if kind is int or kind is float:
        return value
    if kind is bool:
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return neutralise(value)
    return neutralise(json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True))
