"""The unread badge count is answered from the partial index, on SQLite and PostgreSQL."""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.models import Notification
from notifications.inbox.selectors import unread_count
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_inboxes():
    """A few thousand notifications over many users, mostly read, like a real inbox table."""
    users = [UserFactory(username=f"reader{i}") for i in range(40)]
    rng = random.Random(7)
    now = timezone.now()
    Notification.objects.bulk_create(
        Notification(recipient=u, title="t", created_at=now, read_at=None if rng.random() < 0.05 else now)
        for u in users
        for _ in range(150)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return users


def explain(sql: str) -> str:
    prefix = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    with connection.cursor() as cursor:
        cursor.execute(f"{prefix} {sql}")
        return "\n".join(" ".join(str(col) for col in row) for row in cursor.fetchall())


def test_unread_count_uses_the_partial_index(busy_inboxes):
    user = busy_inboxes[0]
    expected = Notification.objects.filter(recipient=user, read_at__isnull=True).count()
    with CaptureQueriesContext(connection) as captured:
        assert unread_count(user=user) == expected
    assert len(captured.captured_queries) == 1
    plan = explain(captured.captured_queries[0]["sql"])
    assert "notification_unread_idx" in plan, plan
    # Not a scan of the whole inbox table or of the recipient's full history. (The broadcast part
    # of the statement reads the user's join date and suppressions: tiny lookups a planner may scan.)
    assert "Seq Scan on notifications_notification " not in plan, plan
    assert "SCAN notifications_notification" not in plan, plan
