"""What the operator is shown of a check: the error report, invalid rows, formula-like cells, samples.

The error report is written to a temporary file row by row. The dry run keeps a
:class:`CheckSummary` instead of the rows: counts and the first rows of each kind, taken a chunk at
a time, so previewing a big file does not keep every row in memory.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING

from django.utils.translation import gettext

from ..csvsafe import looks_like_formula, neutralise
from .fields import FIELDS_BY_KEY
from .validation import RowProblem

if TYPE_CHECKING:
    from .plan import ImportPlan

PREVIEW_PROBLEMS = 500
PREVIEW_VALUES_CHARS = 160
PREVIEW_FORMULAS = 500
PREVIEW_FORMULA_CHARS = 80
SAMPLE_SIZE = 20


class ErrorReport:
    """The downloadable CSV of rows not imported: line, reason, then the row as it was.

    UTF-8 with a BOM (so Excel shows Chinese), written to a temporary file as rows come. Every
    text cell is neutralised (:mod:`dashboard.csvsafe`): a cell like ``=HYPERLINK(…)`` gets a
    leading ``'`` so a spreadsheet shows it instead of running it. Fix the cells, delete the two
    first columns and the file can be imported again (the reader drops that ``'``).
    """

    def __init__(self, headers: Sequence[str]):
        self.rows = 0
        self._file = tempfile.TemporaryFile()
        self._text = io.TextIOWrapper(self._file, encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._text)
        self._writer.writerow([neutralise(cell) for cell in (gettext("line"), gettext("reason"), *headers)])

    def write(self, problems: Iterable[RowProblem]) -> None:
        for problem in problems:
            self._writer.writerow([problem.line, neutralise(problem.reason), *map(neutralise, problem.cells)])
            self.rows += 1

    def finished(self) -> IO[bytes]:
        """The whole report, from its start (open until :meth:`close`)."""
        self._text.flush()
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        self._text.close()  # and the temporary file under it, which is then deleted


def problems_for_preview(problems: Sequence[RowProblem], limit: int = PREVIEW_PROBLEMS) -> list[dict]:
    """The first invalid rows as plain data for the preview page (the report has all of them)."""
    return [
        {"line": p.line, "reason": p.reason, "values": " · ".join(p.cells)[:PREVIEW_VALUES_CHARS]}
        for p in problems[:limit]
    ]


def formula_rows(plan: ImportPlan, *, mapping: dict[str, int]) -> list[dict]:
    """Rows of ``plan`` that would write a value a spreadsheet reads as a formula, in line order.

    Only what is written counts: new users' email, username (when the file gives one) and names,
    and the names an update changes. Each flagged cell names the file's column and the field.
    """
    flagged: list[tuple[int, str, list[tuple[str, str]]]] = []
    for row in plan.new:
        if row.formula_fields:
            flagged.append((row.line, row.email, [(name, getattr(row, name)) for name in row.formula_fields]))
    for update in plan.updates:
        changed = [(name, update.changes[name][1]) for name in ("first_name", "last_name")
                   if name in update.changes and looks_like_formula(update.changes[name][1])]
        if changed:
            flagged.append((update.line, update.email, changed))
    flagged.sort(key=lambda item: item[0])
    return [
        {"line": line, "email": email,
         "cells": [_formula_cell(name, value, headers=plan.headers, mapping=mapping) for name, value in cells]}
        for line, email, cells in flagged
    ]


def _formula_cell(name: str, value: str, *, headers: Sequence[str], mapping: dict[str, int]) -> dict:
    index = mapping.get(name)
    if index is None:  # first or last name split from a full-name column
        index = mapping["full_name"]
    header = headers[index] if index < len(headers) else ""
    column = header or gettext("Column %(number)d") % {"number": index + 1}
    return {"column": column, "field": str(FIELDS_BY_KEY[name].label), "value": value[:PREVIEW_FORMULA_CHARS]}


def suppressed_rows(plan: ImportPlan) -> int:
    """Rows to import (new or updated) whose email or phone is suppressed, also as an erased
    person's keyed hash: they are imported, and stay unreachable there until someone lifts the
    suppression. One query per chunk."""
    from channels_adapters.features import STANDARD_FEATURES
    from channels_adapters.handler import channels
    from notifications.models import Suppression
    from notifications.querysets import normalise_address

    rows = [(row.email, row.phone) for row in plan.new] + [(u.email, u.phone) for u in plan.updates]
    if not rows:
        return 0
    aliases = dict.fromkeys([*channels.settings, *STANDARD_FEATURES])
    sources = {alias: channels.features(alias).address_source for alias in aliases}
    by_row = [
        {(alias, normalise_address(alias, value)) for alias, source in sources.items()
         for value in ({"user_email": email, "profile_phone": phone}.get(source) or "",) if value}
        for email, phone in rows
    ]
    pairs = set().union(*by_row)
    if not pairs:
        return 0
    found = Suppression.objects.reasons(pairs)
    return sum(1 for row_pairs in by_row if row_pairs & found.keys())


class CheckSummary:
    """What a dry run shows, taken from the plan after each chunk (``UserImport.check(after_chunk=…)``).

    Each call folds the chunk's rows into counts and keeps the first rows of each kind, writes
    its invalid rows to the error report, then empties the plan's lists: the dry run holds one
    chunk of rows at a time. Use it as a context manager (the report is a temporary file).
    """

    def __init__(self, *, mapping: dict[str, int]):
        self.mapping = mapping
        self.counts = {"new": 0, "updated": 0, "unchanged": 0, "invalid": 0}
        self.samples: dict[str, list[dict]] = {"new": [], "updated": []}
        self.problems: list[dict] = []
        self.formula_rows = 0
        self.formulas: list[dict] = []
        self.suppressed_rows = 0
        self.report: ErrorReport | None = None

    def __call__(self, plan: ImportPlan) -> None:
        self.counts["new"] += len(plan.new)
        self.counts["updated"] += len(plan.updates)
        self.counts["unchanged"] += len(plan.unchanged_user_ids)
        self.counts["invalid"] += len(plan.problems)
        for kind, rows in plan.samples(SAMPLE_SIZE).items():
            self.samples[kind].extend(rows[: SAMPLE_SIZE - len(self.samples[kind])])
        self.problems.extend(problems_for_preview(plan.problems, PREVIEW_PROBLEMS - len(self.problems)))
        self.suppressed_rows += suppressed_rows(plan)
        flagged = formula_rows(plan, mapping=self.mapping)
        self.formula_rows += len(flagged)
        self.formulas.extend(flagged[: PREVIEW_FORMULAS - len(self.formulas)])
        if plan.problems:
            if self.report is None:
                self.report = ErrorReport(plan.headers)
            self.report.write(plan.problems)
        plan.new.clear()
        plan.updates.clear()
        plan.unchanged_user_ids.clear()
        plan.problems.clear()

    def preview(self) -> dict:
        """Plain data for the preview page (stored on the job as JSON)."""
        return {"samples": self.samples, "problems": self.problems, "formula_rows": self.formula_rows,
                "formulas": self.formulas, "suppressed_rows": self.suppressed_rows}

    def __enter__(self) -> CheckSummary:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.report is not None:
            self.report.close()
