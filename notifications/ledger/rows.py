"""Inserting ledger rows without the ORM: ``insert_columns`` (column by column, what the rows
share bound once; planning, local delivery, the inbox) and ``insert_rows`` (one prepared
statement run many times; recording results).

``bulk_create`` prepares every field of every object through the ORM (about thirty fields a
delivery), which costs more per message than handing it to an SMTP server on the same host. The
ledger's hot inserts name only the columns they set, prepare only values that need it (JSON,
datetimes) and go out as one statement run many times. Conflicts on a unique key are ignored,
as ``bulk_create(ignore_conflicts=True)`` would.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Sequence

from django.db import connection, models

from ..querysets import pg_array, unsized_db_type

# Fields whose Python value the database driver takes as it is.
_PLAIN = (models.CharField, models.TextField, models.IntegerField, models.BooleanField, models.ForeignKey)


def insert_rows(model: type[models.Model], *, fields: Sequence[str], rows: Iterable[Sequence], ignore_conflicts: bool) -> None:
    """INSERT ``rows`` (tuples of values for ``fields``, in order) into ``model``'s table.

    Every NOT NULL column without a database default must be among ``fields``.
    """
    rows = list(rows)
    if not rows:
        return
    meta = model._meta
    concrete = [meta.get_field(name) for name in fields]
    prepare = [
        None if isinstance(field, _PLAIN) and not isinstance(field, models.JSONField) else field
        for field in concrete
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in concrete)
    marks = ", ".join(["%s"] * len(concrete))
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({marks}){conflict}"
    # Planned deliveries of one send share one content dict: prepare each distinct object once.
    prepared: dict[tuple[int, int], object] = {}

    def prep(position: int, field, value):
        if field is None or value is None:
            return value
        key = (position, id(value))
        if key not in prepared:
            prepared[key] = field.get_db_prep_save(value, connection)
        return prepared[key]

    params = [[prep(i, field, value) for i, (field, value) in enumerate(zip(prepare, row, strict=True))] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


class Each(list):
    """A column's values, one per row (``insert_columns``); any other value is every row's."""


def column_values(values: list, *, identical: bool = False):
    """A column for ``insert_columns``: the one value when all rows share it (equal, or with
    ``identical`` the same object, for values compared by identity such as JSON dicts), else
    the rows' values."""
    if values:
        first = values[0]
        if all(value is first for value in values) if identical else values.count(first) == len(values):
            return first
    return Each(values)


def insert_columns(
    model: type[models.Model], *, columns: dict[str, object], ignore_conflicts: bool = False,
    returning: Sequence[str] = (),
) -> list[tuple]:
    """INSERT rows given column by column: ``columns`` maps field names to an ``Each`` of the
    rows' values or to one value all rows share. Returns the ``returning`` columns of the rows
    inserted (with ``ignore_conflicts``, only those that did not exist).

    A fan-out's rows differ in two or three columns (key, recipient, address) and share the rest
    (channel, content, status, times...): the shared values are bound once per statement, not
    once per row, and nothing is built per row in Python but the parameters that differ. On
    PostgreSQL the differing columns go as one typed array each (``unnest``): no per-row
    parameter handling, no statement text per row, no staging table. On SQLite as a multi-row
    ``VALUES`` list of only those columns, as many rows per statement as its parameter limit
    allows. Values are prepared here (JSON, datetimes), each distinct object once.
    """
    meta = model._meta
    fields = [meta.get_field(name) for name in columns]
    each = [name for name, value in columns.items() if isinstance(value, Each)]
    if not each:
        raise ValueError("insert_columns needs at least one Each column (the rows).")
    count = len(columns[each[0]])
    if any(len(columns[name]) != count for name in each):
        raise ValueError("Each columns differ in length.")
    if not count:
        return []
    prepared: dict[str, object] = {}
    for field, (name, value) in zip(fields, columns.items(), strict=True):
        plain = isinstance(field, _PLAIN) and not isinstance(field, models.JSONField)
        if plain:
            prepared[name] = value
        elif isinstance(value, Each):
            cache: dict[int, object] = {}
            for item in value:
                if id(item) not in cache:
                    cache[id(item)] = None if item is None else field.get_db_prep_save(item, connection)
            prepared[name] = Each(cache[id(item)] for item in value)
        else:
            prepared[name] = None if value is None else field.get_db_prep_save(value, connection)
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = ", ".join(quote(field.column) for field in fields)
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    tail = f" RETURNING {', '.join(quote(meta.get_field(name).column) for name in returning)}" if returning else ""
    if connection.vendor == "postgresql":
        select, scalars, arrays = [], [], []
        for field, name in zip(fields, columns, strict=True):
            db_type = unsized_db_type(field, connection)
            if name in each:
                select.append(f"u.{quote(name)}")
                arrays.append((f"%s::{db_type}[]", pg_array(prepared[name])))
            else:
                select.append(f"%s::{db_type}")
                scalars.append(prepared[name])
        sql = (
            f"INSERT INTO {table} ({names}) SELECT {', '.join(select)} "
            f"FROM unnest({', '.join(mark for mark, _values in arrays)}) AS u({', '.join(quote(n) for n in each)})"
            f"{conflict}{tail}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*scalars, *(values for _mark, values in arrays)])
            return cursor.fetchall() if returning else []
    position = {name: index for index, name in enumerate(each, start=1)}
    select = [f"column{position[name]}" if name in position else "%s" for name in columns]
    scalars = [prepared[name] for name in columns if name not in position]
    step = _rows_per_statement(len(each) or 1)
    row_marks = "(" + ", ".join(["%s"] * len(each)) + ")"
    per_row = [prepared[name] for name in each]
    returned: list[tuple] = []
    for start in range(0, count, step):
        stop = min(count, start + step)
        # "WHERE true": SQLite's documented way to tell an INSERT ... SELECT's ON CONFLICT from a join's ON.
        sql = (
            f"INSERT INTO {table} ({names}) SELECT {', '.join(select)} "
            f"FROM (VALUES {', '.join([row_marks] * (stop - start))}) WHERE true{conflict}{tail}"
        )
        params = [*scalars, *itertools.chain.from_iterable(zip(*(values[start:stop] for values in per_row)))]
        returned += _execute(sql, params)
    return returned


def _execute(sql: str, params: list) -> list[tuple]:
    """Run one multi-row statement and return its rows (RETURNING), if any.

    On SQLite the statement goes to the driver with its ``?`` marks written directly: Django's
    cursor rewrites ``%s`` with a regular expression on every call, which for a thousand rows
    costs more than SQLite takes to insert them. (So these statements do not show in Django's
    query log; they run in the same connection and transaction.)
    """
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.execute(sql.replace("%s", "?"), params).fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _rows_per_statement(columns: int, *, most: int = 1000) -> int:
    """How many rows one multi-row INSERT may carry within the database's bound-parameter limit."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        try:
            limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        except AttributeError:  # Python < 3.11
            limit = 999
        limit -= 32  # the shared values' marks
    else:
        limit = 65_535  # PostgreSQL's protocol limit
    return max(1, min(most, limit // columns))
