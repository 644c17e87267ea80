"""Inbox tasks: load by id, call the service. Arguments are JSON (ids and strings, never instances)."""

from __future__ import annotations

from django_tasks import task

from ..models import Category
from . import services


@task()
def inbox_fanout(*, recipient_ids: list[int], title: str, body: str = "", url: str = "", category_key: str = "") -> int:
    """Put one message in many inboxes, off the request path."""
    category_id = (
        Category.objects.filter(key=category_key).values_list("id", flat=True).first() if category_key else None
    )
    message = services.InboxMessage(title=title, body=body, url=url, category_id=category_id)
    return services.notifications_create(recipient_ids=recipient_ids, message=message)
