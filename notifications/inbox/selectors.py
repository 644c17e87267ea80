"""Inbox reads: unread counts, the merged inbox page, shaped for pages, with pinned query counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import CharField, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse

from .. import conf
from ..localized import localized_expression
from ..models import Broadcast, BroadcastRead, Notification
from ..models.inbox import safe_link
from ..prepared import fetchone_prepared


# --- The inbox: notifications and broadcasts, merged ------------------------------------------------

# A user id no row has: the counting statement is compiled once with it and run with the real one.
_SOMEONE = -7_310_417


@dataclass(frozen=True)
class InboxCounts:
    """What the badge and the live stream compare: unread items and the newest of each kind."""

    unread: int
    latest_notification_id: int
    latest_broadcast_id: int


@lru_cache(maxsize=8)
def _counts_statement(vendor: str, alias: str) -> tuple[str, tuple]:
    """The inbox counts as one SQL statement, built by the ORM from the querysets that define
    them (``unread()``, ``visible_to()``, ``unread_by()``), with ``_SOMEONE`` as the user.

    Compiling those querysets costs several times what SQLite takes to run them, and the badge
    and every open stream ask all the time; so they are compiled once per database.
    """
    def sql(queryset) -> tuple[str, tuple]:
        return queryset.query.get_compiler(using=alias).as_sql()

    parts = [
        sql(Notification.objects.filter(recipient_id=_SOMEONE).unread().order_by().values("id")),
        sql(Broadcast.objects.visible_to(_SOMEONE).unread_by(_SOMEONE).order_by().values("id")),
        sql(Notification.objects.filter(recipient_id=_SOMEONE).newest_first().values("id")[:1]),
        sql(Broadcast.objects.visible_to(_SOMEONE).newest_first().values("id")[:1]),
    ]
    statement = (
        f"SELECT (SELECT COUNT(*) FROM ({parts[0][0]}) unread_n), (SELECT COUNT(*) FROM ({parts[1][0]}) unread_b), "
        f"({parts[2][0]}), ({parts[3][0]})"
    )
    return statement, tuple(param for _sql, params in parts for param in params)


def inbox_counts(*, user_id: int) -> InboxCounts:
    """Unread notifications and broadcasts of one user, and the newest id of each: one query.

    The unread notifications come from the partial index ``notification_unread_idx``; the
    broadcasts from ``broadcast_created_idx`` (those made since the user joined), each probed
    once in ``broadcastread_unique_user_broadcast``. On PostgreSQL the statement is prepared once
    per connection (``fetchone_prepared``): planning it cost more than running it.
    """
    statement, template = _counts_statement(connection.vendor, connection.alias)
    someone = str(_SOMEONE)
    params = [user_id if p == _SOMEONE else str(user_id) if p == someone else p for p in template]
    unread_n, unread_b, latest_n, latest_b = fetchone_prepared(statement, params)
    return InboxCounts(unread=unread_n + unread_b, latest_notification_id=latest_n or 0,
                       latest_broadcast_id=latest_b or 0)


def unread_count(*, user) -> int:
    """The badge figure: unread notifications plus unread broadcasts (``inbox_counts``)."""
    return inbox_counts(user_id=user.pk).unread


@dataclass(frozen=True)
class InboxItem:
    """One entry of an inbox page: a notification or a broadcast, shaped alike for the template."""

    kind: str  # "notification" or "broadcast"
    pk: int
    title: str
    body: str
    url: str
    category_name: str | None
    created_at: datetime
    read_at: datetime | None

    @property
    def is_broadcast(self) -> bool:
        return self.kind == "broadcast"

    @property
    def dom_id(self) -> str:
        return f"{self.kind}-{self.pk}"

    @property
    def safe_url(self) -> str:
        return safe_link(self.url)

    @property
    def mark_read_url(self) -> str:
        name = "notifications:broadcast_read" if self.is_broadcast else "notifications:mark_read"
        return reverse(name, args=[self.pk])

    @property
    def open_url(self) -> str:
        name = "notifications:broadcast_open" if self.is_broadcast else "notifications:open"
        return reverse(name, args=[self.pk])


@dataclass(frozen=True)
class InboxPage:
    page: Page
    unread: int
    counts: InboxCounts


def inbox_items(*, user_id: int, before: tuple[datetime, int, str] | None = None):
    """Everything in one inbox, newest first, as ``InboxItem`` fields: the user's notifications
    (shared text read through ``content``) and the broadcasts they see, with their own read
    time. Sliced (``[start:stop]``) it is one statement: each side takes its newest ``stop``
    rows down its own index, and the UNION ALL of those two short lists is ordered and cut.
    (A UNION ALL ordered as a whole would read every row the person has: PostgreSQL sorted all
    100k notifications of one user to show 20, 62–71 ms.)

    The order is total: newest first, then the higher id, then notifications before broadcasts
    (the two tables number their rows apart, so one id can name one of each at one instant).
    ``before`` (created time, id, kind) keeps only what comes after that item in this order: the
    REST API's keyset pages, which stay put while new items arrive and skip nothing.

    Every column is an annotation, made in the same order on both sides, so the two SELECTs
    line up column by column.
    """
    text = CharField()
    notifications = Notification.objects.filter(recipient_id=user_id).annotate(
        item_kind=Value("notification", output_field=text),
        item_id=F("id"),
        item_title=Coalesce("content__title", "title"),
        item_body=Coalesce("content__body", "body"),
        item_url=Coalesce("content__url", "url"),
        item_category=localized_expression("category__name"),
        item_created=F("created_at"),
        item_read=F("read_at"),
    )
    read_at = BroadcastRead.objects.filter(user_id=user_id, broadcast=OuterRef("pk")).values("read_at")[:1]
    broadcasts = Broadcast.objects.visible_to(user_id).annotate(
        item_kind=Value("broadcast", output_field=text),
        item_id=F("id"),
        item_title=F("title"),
        item_body=F("body"),
        item_url=F("url"),
        item_category=localized_expression("category__name"),
        item_created=F("created_at"),
        item_read=Subquery(read_at),
    )
    columns = ("item_kind", "item_id", "item_title", "item_body", "item_url", "item_category", "item_created",
               "item_read")
    if before is not None:
        created, pk, kind = before
        older = Q(created_at__lt=created) | Q(created_at=created, id__lt=pk)
        notifications = notifications.filter(older)
        if kind == "notification":  # the broadcast with the same time and id comes next
            older |= Q(created_at=created, id=pk)
        broadcasts = broadcasts.filter(older)
    return _NewestFirst(notifications.values_list(*columns), broadcasts.values_list(*columns))


class _NewestFirst:
    """``inbox_items``: the two sides, read a slice at a time."""

    def __init__(self, *sides) -> None:
        self.sides = sides

    def __getitem__(self, index: slice) -> list[tuple]:
        if not isinstance(index, slice) or index.step is not None or index.stop is None:
            raise TypeError("inbox_items() is read in slices with an end: items[start:stop]")
        start, stop = index.start or 0, index.stop
        if stop <= start:
            return []
        compilers = [
            side.order_by("-created_at", "-id")[:stop].query.get_compiler(using=connection.alias)
            for side in self.sides
        ]
        sides = [compiler.as_sql() for compiler in compilers]
        union = " UNION ALL ".join(f"SELECT * FROM ({sql}) side{n}" for n, (sql, _params) in enumerate(sides))
        statement = (
            f"SELECT * FROM ({union}) inbox "
            # Newest, then the higher id, then "notification" before "broadcast".
            "ORDER BY item_created DESC, item_id DESC, item_kind DESC LIMIT %s OFFSET %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, [*(p for _sql, params in sides for p in params), stop - start, start])
            rows = cursor.fetchall()
        # The columns are typed alike on both sides: the first side's converters (SQLite's
        # datetimes arrive as text) serve every row, as they would have served its queryset's.
        compiler = compilers[0]
        converters = compiler.get_converters([expression for expression, _sql, _alias in compiler.select])
        return [tuple(row) for row in compiler.apply_converters(rows, converters)] if converters else rows


class _InboxList:
    """``inbox_items`` for the paginator, counted side by side: counting the UNION itself would
    join every notification to its content and category just to count it."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.items = inbox_items(user_id=user_id)

    def count(self) -> int:
        parts = [
            queryset.query.get_compiler(using=connection.alias).as_sql()
            for queryset in (
                Notification.objects.filter(recipient_id=self.user_id).order_by().values("id"),
                Broadcast.objects.visible_to(self.user_id).order_by().values("id"),
            )
        ]
        statement = " + ".join(f"(SELECT COUNT(*) FROM ({sql}) part)" for sql, _params in parts)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {statement}", [param for _sql, params in parts for param in params])
            return cursor.fetchone()[0]

    def __getitem__(self, index):
        return self.items[index]

    def __len__(self) -> int:
        return self.count()


def inbox_page(*, user, page_number: int | str | None = 1) -> InboxPage:
    """One newest-first page of ``user``'s inbox, broadcasts included, plus its counts: four
    queries (the page, how many notifications and broadcasts in all, the counts).

    An out-of-range or malformed page number gives the last or first page rather than an error,
    as a recipient following an old link would expect.
    """
    paginator = Paginator(_InboxList(user.pk), conf.inbox_page_size())
    page = paginator.get_page(page_number)
    page.object_list = [InboxItem(*row) for row in page.object_list]
    counts = inbox_counts(user_id=user.pk)
    return InboxPage(page=page, unread=counts.unread, counts=counts)


@dataclass(frozen=True)
class InboxFeed:
    """The newest few inbox items and the counts they were read with: what the embeddable inbox
    (``<signalbox-inbox>``) shows in its dropdown."""

    items: list[InboxItem]
    counts: InboxCounts


def inbox_newest(*, user, limit: int) -> InboxFeed:
    """The ``limit`` newest items of ``user``'s inbox (broadcasts included) and its counts: two
    queries, whatever the limit."""
    items = [InboxItem(*row) for row in inbox_items(user_id=user.pk)[:limit]]
    return InboxFeed(items=items, counts=inbox_counts(user_id=user.pk))
