"""Formula injection in CSV (OWASP "CSV Injection"), decided in one place for every CSV Signalbox writes.

A spreadsheet runs a cell that starts with ``= + - @``, a tab or a carriage return (after leading
spaces) as a formula: a recipient who calls themselves ``=HYPERLINK("http://x")`` becomes a link
in a manager's spreadsheet. Every text cell Signalbox writes to a CSV file goes through
:func:`neutralise`, which puts a ``'`` in front so the spreadsheet shows the text as it is.

Values are **stored** as typed: the database is not a spreadsheet, and names like "-Bob" are
real. Only writers neutralise (the report exports and the import error report), and the import
preview flags such cells so the operator sees them before they are imported.
"""

from __future__ import annotations

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula (leading spaces are no protection)."""
    return text.lstrip(" ")[:1] in FORMULA_TRIGGERS


def neutralise(text: str) -> str:
    """The CSV form of a text cell: a leading ``'`` when it could be read as a formula."""
    return "'" + text if looks_like_formula(text) else text
