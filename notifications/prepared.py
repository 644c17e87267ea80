"""Statements PostgreSQL prepares once per connection, for the few asked all the time.

The unread badge and every open live inbox run one statement over and over with only a user id
changing. PostgreSQL plans each statement Django sends afresh, and planning the badge's took
0.6 ms of its 1.1 (``bench unread_count``). ``fetchone_prepared`` runs such a statement on a
server-side binding psycopg cursor with ``prepare=True``: the first run on a connection stores it
on the server, later runs execute the stored plan, each in one round trip and counted like any
other query (``assertNumQueries``, the query log with its parameters filled in).

Django turns psycopg's prepared statements off (``prepare_threshold=None``) so that poolers in
transaction mode keep working. They are allowed for these calls only, and not at all when
``SIGNALBOX_PREPARED_STATEMENTS`` is off (``DATABASE_PREPARED_STATEMENTS=0``: behind PgBouncer
before 1.21 or another pooler that cannot keep them). psycopg forgets what it prepared when a
rollback or a schema change could have invalidated it, and prepares again on the next run.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper

# Any number allows preparing; counting never reaches this one while only our call runs.
_PREPARE_ONLY_WHEN_ASKED = 2**31 - 1


def fetchone_prepared(statement: str, params) -> tuple | None:
    """The first row of ``statement`` run with ``params`` on the default database; on
    PostgreSQL from a plan prepared once per connection."""
    if connection.vendor != "postgresql" or not settings.SIGNALBOX_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchone()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    cursor_class, debug_wrapper = _classes()
    before = raw.prepare_threshold
    raw.prepare_threshold = _PREPARE_ONLY_WHEN_ASKED if before is None else before
    try:
        wrap = debug_wrapper if connection.queries_logged else CursorWrapper
        with wrap(cursor_class(raw), connection) as cursor:
            cursor.execute(statement, params)
            return cursor.fetchone()
    finally:
        raw.prepare_threshold = before


@lru_cache(maxsize=1)
def _classes():
    from django.db.backends.postgresql.base import CursorDebugWrapper, ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        """A server-side binding cursor whose statements psycopg prepares at once."""

        def execute(self, query, params=None, **kwargs):
            return super().execute(query, params, prepare=True, **kwargs)

    class PreparedDebugWrapper(CursorDebugWrapper):
        """Logs the statement with its parameters filled in, as Django does for its own
        client-side binding cursors (a prepared statement has no such text to read back)."""

        def execute(self, sql, params=None):
            with self.debug_sql(self.db.ops.compose_sql(sql, params)):
                return CursorWrapper.execute(self, sql, params)

    return PreparingCursor, PreparedDebugWrapper
