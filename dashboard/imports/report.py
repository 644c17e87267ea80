"""The downloadable error report: every row that was not imported, why, and its original cells."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Sequence

from django.utils.translation import gettext as _g

from .validation import RowProblem

PREVIEW_PROBLEMS = 500
PREVIEW_VALUES_CHARS = 160


def error_report_csv(*, headers: Sequence[str], problems: Sequence[RowProblem]) -> bytes:
    """UTF-8 with a BOM (so Excel shows Chinese correctly): line, reason, then the row as it was.

    Fix the cells, delete the two first columns and the file can be imported again.
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([_g("line"), _g("reason"), *headers])
    for problem in problems:
        writer.writerow([problem.line, problem.reason, *problem.cells])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


def problems_for_preview(problems: Sequence[RowProblem], limit: int = PREVIEW_PROBLEMS) -> list[dict]:
    """The first invalid rows as plain data for the preview page (the report has all of them)."""
    return [
        {"line": p.line, "reason": p.reason, "values": " · ".join(p.cells)[:PREVIEW_VALUES_CHARS]}
        for p in problems[:limit]
    ]
