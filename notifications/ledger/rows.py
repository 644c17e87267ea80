"""Inserting ledger rows with one prepared statement (``executemany``).

``bulk_create`` prepares every field of every object through the ORM (about thirty fields a
delivery), which costs more per message than handing it to an SMTP server on the same host. The
ledger's hot inserts name only the columns they set, prepare only values that need it (JSON,
datetimes) and go out as one statement run many times. Conflicts on a unique key are ignored,
as ``bulk_create(ignore_conflicts=True)`` would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection, models

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
