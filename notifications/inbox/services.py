"""Inbox services: in-app notifications (fan-out, read marks) and broadcasts.

Keyword-only and typed (STYLE.md). Callers are views, admin actions, tasks and commands; none of
them touches the models' state directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import allows

from ..models import (
    STATUS_RANK,
    Broadcast,
    BroadcastRead,
    Category,
    Delivery,
    DeliveryEvent,
    Notification,
    NotificationContent,
)
from ..models.inbox import safe_link
from ..services import audit_record
from ..signals import notification_read
from . import live


@dataclass(frozen=True)
class InboxMessage:
    """What to put in an inbox, before it has a recipient."""

    title: str
    body: str = ""
    url: str = ""
    category_id: int | None = None


def inbox_rows_write(
    *, rows: Sequence[tuple[int, InboxMessage, int | None]], now: datetime | None = None,
    stored: dict[InboxMessage, int] | None = None,
) -> int:
    """Insert one inbox notification per ``(recipient id, message, delivery id or None)``.

    A message that two rows or more carry is stored once, as a ``NotificationContent`` the rows
    reference; a message only one row carries (a template rendered for its recipient) keeps its
    text on its row. ``stored`` maps messages already stored in the caller's transaction to their
    content (a fan-out written in chunks stores its text once), and is updated. The rows go in
    column by column (``ledger.rows.insert_columns``: what they share is bound once per statement);
    a delivery that already has its notification is
    skipped (``Notification.delivery`` is unique). Open inbox pages are told after commit, so a
    rolled-back transaction shows nobody anything.
    """
    from ..ledger.rows import Each, column_values, insert_columns

    if not rows:
        return 0
    now = now or timezone.now()
    content_ids = stored if stored is not None else {}
    messages = [message for _user_id, message, _delivery_id in rows]
    # Rows of one fan-out carry one message object: count and look up each object once (a
    # message's hash walks its text), then by value, so equal messages still share one content.
    per_object = Counter(map(id, messages))
    distinct = {id(message): message for message in messages}
    counts: Counter = Counter()
    for key, message in distinct.items():
        counts[message] += per_object[key]
    shared = [message for message, n in counts.items() if n > 1 and message not in content_ids]
    with transaction.atomic(savepoint=False):  # the caller's transaction when there is one
        if shared:
            created = NotificationContent.objects.bulk_create(
                NotificationContent(title=m.title[:200], body=m.body, url=m.url[:500], created_at=now) for m in shared
            )
            content_ids.update({message: content.pk for message, content in zip(shared, created, strict=True)})
        # (category, title, body, url, content) of each message object: a stored message's text is
        # on its content row; a message only one row carries keeps its text on the row.
        values: dict[int, tuple] = {}
        for key, m in distinct.items():
            content_id = content_ids.get(m)
            values[key] = ((m.category_id, "", "", "", content_id) if content_id is not None
                           else (m.category_id, m.title[:200], m.body, m.url[:500], None))
        per_row = [values[id(message)] for message in messages]
        user_ids = [user_id for user_id, _message, _delivery_id in rows]
        insert_columns(Notification, columns={
            "recipient": Each(user_ids),
            "category": column_values([v[0] for v in per_row]),
            "title": column_values([v[1] for v in per_row]),
            "body": column_values([v[2] for v in per_row]),
            "url": column_values([v[3] for v in per_row]),
            "content": column_values([v[4] for v in per_row]),
            "delivery": column_values([delivery_id for _user_id, _message, delivery_id in rows]),
            "created_at": now,
        }, ignore_conflicts=True)
        transaction.on_commit(lambda: live.publish_inbox_changed(user_ids))
    return len(rows)


def notifications_create(*, recipient_ids: Sequence[int], message: InboxMessage) -> int:
    """Put ``message`` in each recipient's inbox, outside the delivery ledger (no receipts).

    Returns the number of notifications created; see ``inbox_rows_write``.
    """
    if not message.title.strip():
        raise ValueError("An inbox notification needs a title.")
    return inbox_rows_write(rows=[(user_id, message, None) for user_id in recipient_ids])


def notification_mark_read(*, user, notification_id: int) -> Notification:
    """Mark one of ``user``'s notifications read. Someone else's id is ``DoesNotExist``."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id, recipient=user)
        if notification.read_at is None:
            notification.read_at = timezone.now()
            notification.save(update_fields=["read_at"])
            _record_inbox_reads(notification_ids=[notification.pk], at=notification.read_at)
            _announce_read(user=user, notification_ids=[notification.pk])
    return notification


def notifications_mark_all_read(*, user) -> int:
    """Mark everything unread in ``user``'s inbox read, broadcasts included; returns how many changed."""
    with transaction.atomic():
        unread = Notification.objects.for_recipient(user).unread()
        ids = list(unread.values_list("id", flat=True))
        broadcast_ids = list(Broadcast.objects.visible_to(user.pk).unread_by(user.pk).values_list("id", flat=True))
        now = timezone.now()
        if ids:
            Notification.objects.filter(pk__in=ids, read_at__isnull=True).update(read_at=now)
            _record_inbox_reads(notification_ids=ids, at=now)
        if broadcast_ids:
            BroadcastRead.objects.bulk_create(
                [BroadcastRead(user=user, broadcast_id=pk, read_at=now) for pk in broadcast_ids], ignore_conflicts=True
            )
        if ids or broadcast_ids:
            _announce_read(user=user, notification_ids=ids, broadcast_ids=broadcast_ids)
    return len(ids) + len(broadcast_ids)


def _record_inbox_reads(*, notification_ids: list[int], at) -> None:
    """Inbox reads are receipts: a ``read`` event per delivery, and its status moves forward."""
    delivery_ids = list(
        Notification.objects.filter(pk__in=notification_ids, delivery__isnull=False).values_list("delivery_id", flat=True)
    )
    if not delivery_ids:
        return
    DeliveryEvent.objects.bulk_create(
        [DeliveryEvent(delivery_id=pk, kind="read", source="inbox", provider_event_id=f"read:{pk}", occurred_at=at)
         for pk in delivery_ids],
        ignore_conflicts=True,
    )
    earlier = [status for status, rank in STATUS_RANK.items() if rank < STATUS_RANK[Delivery.Status.READ]]
    Delivery.objects.filter(pk__in=delivery_ids, status__in=earlier).update(status=Delivery.Status.READ, read_at=at)


def _announce_read(*, user, notification_ids: list[int], broadcast_ids: Sequence[int] = ()) -> None:
    def announce() -> None:
        live.publish_inbox_changed([user.pk])
        notification_read.send(
            sender=Notification, user=user, notification_ids=notification_ids, broadcast_ids=list(broadcast_ids)
        )

    transaction.on_commit(announce)


# --- Broadcasts: one row for every inbox, read state kept per user once read ----------------------

# Who may send and withdraw broadcasts: the policy's action (``accounts.roles.ACTIONS``).
BROADCAST_ACTION = "broadcast.send"


def broadcast_send(
    *, title: str, body: str = "", url: str = "", category: Category | None = None, actor=None,
    now: datetime | None = None,
) -> Broadcast:
    """Announce ``title`` in every inbox, or, with ``category``, in the inboxes of those who have
    not opted out of it (``BroadcastQuerySet.visible_to``): one INSERT whatever the audience.

    ``actor`` ``None`` is code (trusted as the deployer); a user needs the ``broadcast.send`` action.
    Audited as ``broadcast.send``. Open inbox pages are told after commit with one publish, not
    one per recipient; each page then reads its own unread count.
    """
    if actor is not None and not allows(actor, BROADCAST_ACTION):
        raise PermissionDenied(_("You may not send broadcasts."))
    errors = broadcast_problems(title=title, url=url)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        broadcast = Broadcast.objects.create(
            title=title.strip()[:200], body=body, url=url.strip(), category=category,
            created_by=actor if getattr(actor, "pk", None) else None, created_at=now or timezone.now(),
        )
        audit_record(actor=actor, action="broadcast.send", target=broadcast,
                     changes={"title": broadcast.title, "category": category.key if category else None})
        transaction.on_commit(live.publish_broadcast)
    return broadcast


def broadcast_problems(*, title: str, url: str) -> dict[str, list[str]]:
    """What is wrong with a broadcast's title and link, by field (the admin form shows these)."""
    errors: dict[str, list[str]] = {}
    if not title.strip():
        errors["title"] = [_("A broadcast needs a title.")]
    if url.strip() and not safe_link(url):
        errors["url"] = [_("The link must start with https://, http:// or /.")]
    return errors


def broadcast_withdraw(*, broadcast: Broadcast, actor) -> None:
    """Take a broadcast out of every inbox (its read marks go with it). Audited."""
    if actor is not None and not allows(actor, BROADCAST_ACTION):
        raise PermissionDenied(_("You may not withdraw broadcasts."))
    with transaction.atomic():
        audit_record(actor=actor, action="broadcast.withdraw", target=broadcast, changes={"title": broadcast.title})
        broadcast.delete()
        transaction.on_commit(live.publish_broadcast)


def broadcast_mark_read(*, user, broadcast_id: int) -> Broadcast:
    """Mark a broadcast read for ``user``. One not in their inbox is ``Broadcast.DoesNotExist``."""
    with transaction.atomic():
        broadcast = Broadcast.objects.visible_to(user.pk).get(pk=broadcast_id)
        _read, created = BroadcastRead.objects.get_or_create(user=user, broadcast=broadcast)
        if created:
            _announce_read(user=user, notification_ids=[], broadcast_ids=[broadcast.pk])
    return broadcast
