"""The unread badge runs as a statement PostgreSQL prepares once per connection
(``notifications.prepared``), and nothing else on the connection is prepared.

On PostgreSQL these look at ``pg_prepared_statements`` of the test's own connection: the badge's
statement is stored once and executed again (not planned per call), it still counts what
changed since, the query log shows it with its values, and with
``DATABASE_PREPARED_STATEMENTS=0`` (a pooler that cannot keep prepared statements) nothing is
stored at all. On SQLite the badge runs through Django's ordinary cursor, as before.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from notifications.models import Broadcast, Notification
from notifications.inbox.selectors import unread_count
from tests.factories import NotificationFactory, UserFactory

pytestmark = pytest.mark.django_db


def prepared() -> list[tuple[str, int]]:
    """This connection's prepared statements that read the inbox: (statement, executions)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ["%notifications_notification%"],
        )
        return cursor.fetchall()


@pytest.fixture
def reader():
    user = UserFactory(username="reader")
    NotificationFactory.create_batch(3, recipient=user)
    NotificationFactory(recipient=user, read_at=timezone.now())
    return user


def test_the_badge_is_prepared_once_and_executed_again(reader):
    if connection.vendor != "postgresql":
        assert connection.vendor == "sqlite"
        assert [unread_count(user=reader) for _ in range(3)] == [3, 3, 3]
        return
    assert [unread_count(user=reader) for _ in range(3)] == [3, 3, 3]
    [(statement, executions)] = prepared()
    assert executions == 3, "one statement, stored once and run three times"
    assert "notifications_broadcast" in statement  # the whole badge: notifications and broadcasts
    # Another person's badge runs the same stored statement with their id.
    other = UserFactory(username="other")
    NotificationFactory(recipient=other)
    assert unread_count(user=other) == 1
    assert [executions for _statement, executions in prepared()] == [4]


def test_the_prepared_badge_counts_what_changed_since_even_after_a_rollback(reader):
    assert unread_count(user=reader) == 3
    NotificationFactory(recipient=reader)
    Broadcast.objects.create(title="Maintenance tonight", body="")
    assert unread_count(user=reader) == 5
    with pytest.raises(RuntimeError), transaction.atomic():
        Notification.objects.filter(recipient=reader).update(read_at=timezone.now())
        assert unread_count(user=reader) == 1
        raise RuntimeError("rolled back")
    assert unread_count(user=reader) == 5


def test_the_query_log_shows_the_badge_with_its_values(reader):
    with CaptureQueriesContext(connection) as captured:
        unread_count(user=reader)
    [query] = captured.captured_queries
    assert f'"recipient_id" = {reader.pk}' in query["sql"], query["sql"]
    assert "$1" not in query["sql"]


def test_nothing_else_on_the_connection_is_prepared(reader):
    unread_count(user=reader)
    for _ in range(10):  # far past psycopg's own threshold of five, had it been left on
        list(Notification.objects.filter(recipient=reader).values_list("id", flat=True))
    if connection.vendor == "postgresql":
        assert connection.connection.prepare_threshold is None  # Django's setting, put back
        assert [statement for statement, _n in prepared() if "notifications_broadcast" not in statement] == []


@override_settings(SIGNALBOX_PREPARED_STATEMENTS=False)
def test_behind_a_pooler_nothing_is_prepared(reader):
    assert [unread_count(user=reader) for _ in range(6)] == [3] * 6
    if connection.vendor == "postgresql":
        assert prepared() == []
