"""Selectors: the reads pages and APIs need, shaped for them, with pinned query counts."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator

from . import conf
from .models import Notification


def unread_count(*, user) -> int:
    """The badge figure. Served by the partial index ``notification_unread_idx``."""
    return Notification.objects.for_recipient(user).unread().count()


@dataclass(frozen=True)
class InboxPage:
    page: Page
    unread: int


def inbox_page(*, user, page_number: int | str | None = 1) -> InboxPage:
    """One newest-first page of ``user``'s inbox plus the unread count: three queries at most.

    An out-of-range or malformed page number gives the last or first page rather than an error,
    as a recipient following an old link would expect.
    """
    notifications = (
        Notification.objects.for_recipient(user)
        .newest_first()
        .select_related("category")
        .only("id", "title", "body", "url", "created_at", "read_at", "category__name", "category__key")
    )
    paginator = Paginator(notifications, conf.inbox_page_size())
    page = paginator.get_page(page_number)
    return InboxPage(page=page, unread=unread_count(user=user))
