"""What the webhook room listens to, and the events it records. Connected in ``NotificationsConfig.ready()``.

Each receiver first asks the cached routing table whether any enabled endpoint wants the event
(no query), and only then reads what the payload needs (one query per batch) and records.
"""

from __future__ import annotations

from django.db import transaction

from ..models import Delivery, DeliveryEvent, JourneyEnrollment, WebhookEvent
from .events import Event, wanted, webhook_events_record


def _delivery_data(row: dict) -> dict:
    return {"delivery_id": row["id"], "channel": row["channel"], "recipient_id": row["recipient_id"],
            "campaign_id": row["run__campaign_id"], "run_id": row["run_id"], "category": row["category__key"]}


DELIVERY_FIELDS = ("id", "channel", "recipient_id", "run_id", "run__campaign_id", "category__key", "status_reason",
                   "attempts")


def on_delivery_statuses_recording(sender, *, changes: list, **kwargs) -> None:
    """``delivery.status_changed``: one event per move (sent, deferred, failed, unknown, delivered...),
    recorded inside the ledger's transaction (``delivery_statuses_recording``), in a savepoint so
    that a failure here rolls back only the outbox rows (the ledger logs it and commits)."""
    if not changes or not wanted(WebhookEvent.DELIVERY_STATUS):
        return
    with transaction.atomic():
        _record_statuses(changes)


def _record_statuses(changes: list) -> None:
    rows = {row["id"]: row for row in Delivery.objects.filter(pk__in={pk for pk, _ in changes}).values(*DELIVERY_FIELDS)}
    events = []
    for pk, status in changes:
        row = rows.get(pk)
        if row is None:
            continue
        # A deferred delivery may defer again: the attempt count tells the two moves apart.
        events.append(Event(
            type=WebhookEvent.DELIVERY_STATUS, key=f"status:{pk}:{status}:{row['attempts']}",
            ordering_key=f"delivery:{pk}",
            data={**_delivery_data(row), "status": str(status), "reason": row["status_reason"]},
        ))
    webhook_events_record(events)


def receipt_recorded(*, delivery: Delivery, receipt: DeliveryEvent) -> None:
    """``delivery.receipt`` / ``delivery.unsubscribed``: called by ``receipts.tracking`` inside the
    transaction that stored the receipt, so the outbox row commits (or not) with it."""
    kind = WebhookEvent.UNSUBSCRIBED if receipt.kind == DeliveryEvent.Kind.UNSUBSCRIBED else WebhookEvent.RECEIPT
    if not wanted(kind):
        return
    # The drain posts one delivery's events in id order, and PostgreSQL hands ids out at INSERT,
    # not at COMMIT: two receipts of one delivery in flight at once could commit in the other
    # order, and a drain between the commits would post the later event first. Holding the
    # delivery's row until this transaction ends makes them take their ids in commit order (the
    # ledger's own moves hold it already, through their UPDATE; SQLite has one writer).
    list(Delivery.objects.select_for_update().filter(pk=delivery.pk).values_list("pk", flat=True))
    data = {
        "delivery_id": delivery.pk, "channel": delivery.channel, "recipient_id": delivery.recipient_id,
        "run_id": delivery.run_id, "kind": receipt.kind, "source": receipt.source,
        "occurred_at": receipt.occurred_at.isoformat(), "details": receipt.data or {},
    }
    webhook_events_record([Event(type=kind, key=f"receipt:{receipt.pk}", ordering_key=f"delivery:{delivery.pk}",
                                 data=data)])


def on_campaign_finished(sender, *, run_id: int, campaign_id: int, status: str, **kwargs) -> None:
    if not wanted(WebhookEvent.CAMPAIGN_FINISHED):
        return
    webhook_events_record([Event(
        type=WebhookEvent.CAMPAIGN_FINISHED, key=f"run:{run_id}:{status}", ordering_key=f"run:{run_id}",
        data={"run_id": run_id, "campaign_id": campaign_id, "status": status},
    )])


def on_journey_goal_reached(sender, *, enrollment_ids: list, goal: str, **kwargs) -> None:
    if not enrollment_ids or not wanted(WebhookEvent.JOURNEY_GOAL):
        return
    rows = JourneyEnrollment.objects.filter(pk__in=enrollment_ids).values(
        "id", "user_id", "version_id", "journey_id", "journey__key")
    webhook_events_record([Event(
        type=WebhookEvent.JOURNEY_GOAL, key=f"goal:{row['id']}", ordering_key=f"enrollment:{row['id']}",
        data={"enrollment_id": row["id"], "user_id": row["user_id"], "journey_id": row["journey_id"],
              "journey": row["journey__key"], "version_id": row["version_id"], "goal": goal},
    ) for row in rows])


def on_endpoint_changed(sender, **kwargs) -> None:
    """``post_save``/``post_delete`` of an endpoint: forget the routing table (after commit too,
    so a process reading it meanwhile does not keep the old one)."""
    from django.db import transaction

    from .events import routes_forget

    routes_forget()
    transaction.on_commit(routes_forget)


def webhooks_tick(*, once: bool = False) -> list[str]:
    """Scheduler tick: a drain for every enabled endpoint with something due (a lost task, a
    drain that stopped mid-POST); one query."""
    from django.db.models import Q
    from django.utils import timezone

    from ..models import WebhookMessage
    from ..models.webhooks import OWED
    from .tasks import webhook_endpoint_drain_task

    now = timezone.now()
    # ``order_by()``: the model's newest-first ordering would make DISTINCT one row per message.
    due = (WebhookMessage.objects.filter(webhook_endpoint__enabled=True)
           .filter(Q(next_attempt_at__lte=now, status__in=OWED)
                   | Q(status=WebhookMessage.Status.SENDING, lease_expires_at__lt=now))
           .order_by().values_list("webhook_endpoint_id", flat=True).distinct())
    endpoint_ids = sorted(set(due))
    for endpoint_id in endpoint_ids:
        webhook_endpoint_drain_task.enqueue(endpoint_id=endpoint_id)
    return [f"webhooks: {len(endpoint_ids)} endpoint(s) drained"] if endpoint_ids or once else []
