"""Bulk SQL for the import: compiled ``IN`` lookups and multi-row writes, without per-value ORM cost.

``bulk_create``/``bulk_update`` spend ~80 % of an import's write time compiling SQL: every value
goes through its field's preparation, and SQLite's 999-parameter assumption cuts inserts into
statements of ~90 rows. The rows written here are plain strings and ints plus a few per-batch
constants (adapted once through their field by :func:`db_values`), so one parametrised
statement run with ``executemany`` (``COPY`` on PostgreSQL) writes them ~5x faster. Signals are
not sent, exactly as with ``bulk_create``. Table and column names come from the models' ``_meta``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection


class InQuery:
    """A ``values_list`` query filtered by ``field__in=values``, compiled once per list size.

    Django prepares each value of an ``__in`` list through the field on every call (~3 µs a
    value); an import runs such lookups for every row. Here the ORM builds the SQL once for a
    list of a given length and the statement is re-run with new values. Lists are padded up to a
    multiple of ``SIZE_STEP`` by repeating a value (harmless in ``IN``), so a handful of sizes
    cover every chunk. On PostgreSQL the list is one array parameter (``= ANY(%s)``) instead.
    Values must already be in database form (strings, ints) and the selected columns must need
    no conversion from the database (text, integers).
    """

    SIZE_STEP = 256

    def __init__(self, make_queryset: Callable[[list], object]):
        self.make_queryset = make_queryset
        self.statements: dict[int, str] = {}

    def __call__(self, values: list) -> list[tuple]:
        if not values:
            return []
        if connection.vendor == "postgresql":
            return self._any(values)
        size = -(-len(values) // self.SIZE_STEP) * self.SIZE_STEP
        values = [*values, *[values[-1]] * (size - len(values))]
        sql = self.statements.get(size)
        if sql is None:
            placeholders = [f"in-query-{i}" for i in range(size)]
            sql, params = self.make_queryset(placeholders).query.sql_with_params()
            if list(params) != placeholders:  # the query has other parameters: cannot be reused
                raise ValueError("InQuery needs a query whose only parameters are the IN list.")
            self.statements[size] = sql
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            return cursor.fetchall()

    def _any(self, values: list) -> list[tuple]:
        """PostgreSQL: ``= ANY(%s)`` with the list as one array parameter, the same for every size."""
        sql = self.statements.get(0)
        if sql is None:
            sql, params = self.make_queryset(["in-query-0"]).query.sql_with_params()
            if list(params) != ["in-query-0"] or sql.count(" IN (%s)") != 1:
                raise ValueError("InQuery needs a query whose only parameters are the IN list.")
            sql = self.statements[0] = sql.replace(" IN (%s)", " = ANY(%s)")
        with connection.cursor() as cursor:
            cursor.execute(sql, [values])
            return cursor.fetchall()


def db_values(model, **values) -> dict:
    """Field name -> value in database form, through the field (datetimes, JSON, booleans)."""
    return {name: model._meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()}


def insert_many(model, field_names: list[str], rows: list[tuple]) -> None:
    """INSERT rows whose values are already in database form, in one ``executemany``."""
    if not rows:
        return
    opts = model._meta
    fields = [opts.get_field(name) for name in field_names]
    missing = [
        f.name for f in opts.concrete_fields
        if not (f.null or f.primary_key or f.has_db_default() or f in fields)
    ]
    if missing:  # a NOT NULL column was added to the model: this writer must learn about it
        raise RuntimeError(f"Import writer for {opts.label} does not set {', '.join(missing)}.")
    quote = connection.ops.quote_name
    table, columns = quote(opts.db_table), ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        driver_cursor = cursor.cursor
        if connection.vendor == "postgresql" and hasattr(driver_cursor, "copy"):
            # psycopg 3: COPY is ~5x faster than executemany (which quotes every value client-side).
            # The driver's cursor is used directly, so its errors are turned into Django's here
            # (an IntegrityError a caller catches, as from executemany).
            with connection.wrap_database_errors, driver_cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})", rows)


def update_many(model, field_names: list[str], rows: list[tuple]) -> None:
    """UPDATE by primary key; each row is the new values (database form) then the pk."""
    if not rows:
        return
    opts = model._meta
    quote = connection.ops.quote_name
    sql = "UPDATE {} SET {} WHERE {} = %s".format(
        quote(opts.db_table),
        ", ".join(f"{quote(opts.get_field(name).column)} = %s" for name in field_names),
        quote(opts.pk.column),
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
