"""Services: every write Signalbox makes goes through a function here.

Keyword-only and typed (STYLE.md). Callers are views, admin actions, tasks and commands; none of
them touches the models' state directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from . import live
from .models import STATUS_RANK, AuditEntry, Category, Delivery, DeliveryEvent, Notification
from .signals import notification_read


@dataclass(frozen=True)
class InboxMessage:
    """What to put in an inbox, before it has a recipient."""

    title: str
    body: str = ""
    url: str = ""
    category_id: int | None = None


def notifications_create(
    *, recipient_ids: Sequence[int], message: InboxMessage, batch_size: int = 1000
) -> int:
    """Put ``message`` in each recipient's inbox with one bulk insert per batch.

    Open inbox pages are told after commit, so a rolled-back transaction shows nobody anything.
    Returns the number of notifications created.
    """
    if not message.title.strip():
        raise ValueError("An inbox notification needs a title.")
    now = timezone.now()
    rows = [
        Notification(
            recipient_id=user_id,
            title=message.title[:200],
            body=message.body,
            url=message.url,
            category_id=message.category_id,
            created_at=now,
        )
        for user_id in recipient_ids
    ]
    with transaction.atomic():
        Notification.objects.bulk_create(rows, batch_size=batch_size)
        ids = list(recipient_ids)
        transaction.on_commit(lambda: live.publish_inbox_changed(ids))
    return len(rows)


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
    """Mark every unread notification of ``user`` read; returns how many changed."""
    with transaction.atomic():
        unread = Notification.objects.for_recipient(user).unread()
        ids = list(unread.values_list("id", flat=True))
        if ids:
            now = timezone.now()
            Notification.objects.filter(pk__in=ids, read_at__isnull=True).update(read_at=now)
            _record_inbox_reads(notification_ids=ids, at=now)
            _announce_read(user=user, notification_ids=ids)
    return len(ids)


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


def _announce_read(*, user, notification_ids: list[int]) -> None:
    def announce() -> None:
        live.publish_inbox_changed([user.pk])
        notification_read.send(sender=Notification, user=user, notification_ids=notification_ids)

    transaction.on_commit(announce)


def category_ensure(*, key: str, name: str, kind: str, user_can_opt_out: bool = True) -> Category:
    category, _ = Category.objects.get_or_create(
        key=key, defaults={"name": name, "kind": kind, "user_can_opt_out": user_can_opt_out,
                           "resend_policy": Category.ResendPolicy.for_kind(kind)}
    )
    return category


def audit_record(
    *, actor, action: str, target: models.Model | None = None, changes: dict | None = None
) -> AuditEntry:
    """Append an audit entry. ``actor`` may be None for the system (tasks, triggers)."""
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_repr=str(actor) if actor is not None else "system",
        action=action,
        target_type=ContentType.objects.get_for_model(target) if target is not None else None,
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        changes=changes or {},
    )

