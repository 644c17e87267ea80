"""Recovery: crashed workers' leases, lost tasks, staff retries, forward-only receipts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone


from ..models import STATUS_RANK, Delivery, DeliveryEvent
from ..signals import delivery_status_changed

from .planning import _enqueue_batches
from .sending import HANDED_OFF

Status = Delivery.Status

# A lost lease on these channels may hide a message the provider already accepted.
UNKNOWN_ON_LOST_LEASE = frozenset({"sms"})


def deliveries_sweep_expired_leases(*, now: datetime | None = None) -> int:
    """Put deliveries whose worker died mid-batch back in line (or ``unknown`` where unsafe)."""
    now = now or timezone.now()
    expired = Delivery.objects.filter(status=Status.SENDING, lease_expires_at__lt=now)
    with transaction.atomic():
        # The provider had the message before the worker died: it was sent, never send again.
        recovered = list(expired.filter(status_reason=HANDED_OFF).values_list("id", flat=True))
        Delivery.objects.filter(pk__in=recovered).update(
            status=Status.SENT, sent_at=now, status_reason="recovered_after_crash", lease_owner="", lease_expires_at=None
        )
        DeliveryEvent.objects.bulk_create(
            DeliveryEvent(delivery_id=pk, kind="sent", source="recovery", occurred_at=now) for pk in recovered
        )
        unknown = expired.filter(channel__in=UNKNOWN_ON_LOST_LEASE).update(
            status=Status.UNKNOWN, status_reason="lease_expired", lease_owner="", lease_expires_at=None
        )
        ids = list(expired.values_list("id", "channel"))
        expired.filter(pk__in=[i for i, _ in ids]).update(
            status=Status.DEFERRED, status_reason="lease_expired", lease_owner="", lease_expires_at=None,
            next_attempt_at=now,
        )
        _enqueue_batches(ids)
    return len(recovered) + unknown + len(ids)


def deliveries_retry_failed(*, deliveries, actor=None) -> int:
    """Give failed deliveries a fresh set of attempts (staff action, e.g. after fixing SMTP).

    Only ``failed`` rows move; ``unknown`` ones are never re-sent automatically, and
    suppressed addresses are caught again at send time. Writes an audit entry.
    """
    from ..services import audit_record

    with transaction.atomic():
        pairs = list(deliveries.filter(status=Status.FAILED).values_list("id", "channel"))
        Delivery.objects.filter(pk__in=[pk for pk, _ in pairs], status=Status.FAILED).update(
            status=Status.PLANNED, attempts=0, next_attempt_at=None, failed_at=None,
            status_reason="retry_requested", last_error="",
        )
        _enqueue_batches(pairs)
        if pairs:
            audit_record(actor=actor, action="deliveries.retry_failed", changes={"deliveries": len(pairs)})
    return len(pairs)


def deliveries_requeue_stale(*, now: datetime | None = None, grace: timedelta = timedelta(minutes=2)) -> int:
    """Backstop for lost tasks: enqueue deliveries that have been due for longer than ``grace``.

    The DB task backend neither retries nor recovers a task whose worker died, and a Redis
    restart can drop queued jobs. Claiming makes an extra task for the same ids harmless.
    """
    now = now or timezone.now()
    stale = (
        Delivery.objects.due(now - grace)
        .filter(created_at__lte=now - grace)
        .order_by("id")
        .values_list("id", "channel")
    )
    pairs = list(stale[:50_000])
    with transaction.atomic():
        _enqueue_batches(pairs)
    return len(pairs)


def delivery_advance_status(*, delivery: Delivery, status: str, at: datetime | None = None) -> bool:
    """Move a delivery to ``status`` if that is forward (receipts arrive out of order)."""
    if STATUS_RANK[status] <= STATUS_RANK[delivery.status]:
        return False
    at = at or timezone.now()
    fields = {"status": status}
    stamp = f"{status}_at"
    if hasattr(Delivery, stamp) and stamp in {f.name for f in Delivery._meta.fields}:
        fields[stamp] = at
    lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
    updated = Delivery.objects.filter(pk=delivery.pk, status__in=lower).update(**fields)
    if updated:
        for name, value in fields.items():
            setattr(delivery, name, value)
        transaction.on_commit(
            lambda: delivery_status_changed.send(sender=Delivery, delivery_id=delivery.pk, status=status)
        )
    return bool(updated)
