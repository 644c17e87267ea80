"""Recovery: crashed workers' leases, lost tasks, staff retries, forward-only receipts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from channels_adapters.handler import channels

from ..models import STATUS_RANK, Category, Delivery
from ..signals import deliveries_swept

from .planning import _enqueue_batches
from .recording import DIGEST_PREFIX, IN_FLIGHT, announce, status_moves_written

Status = Delivery.Status


def deliveries_sweep_expired_leases(*, now: datetime | None = None) -> int:
    """Settle deliveries whose worker died mid-batch (their lease ran out while ``sending``).

    * Never handed to the provider (no in-flight mark): nothing left, so it is put back in line
      (``deferred``, due now, the attempt given back) and re-enqueued.
    * In flight (marked, no outcome recorded): the provider may or may not have it. Under an
      ``at_least_once`` category, on a channel whose adapter says a re-send is safe, it is sent
      again (the same Message-ID); otherwise it is ``unknown`` and never re-sent automatically.
      Never ``sent``: only the provider's acceptance makes a delivery sent.

    Returns how many deliveries it settled.
    """
    now = now or timezone.now()
    # Webhook posts settle their own lost leases, as unknown outcomes retried (``webhooks.sending``).
    expired = Delivery.objects.to_people().filter(status=Status.SENDING, lease_expires_at__lt=now)
    released = {"lease_owner": "", "lease_expires_at": None}
    resendable = set(channels.aliases_where("safe_to_resend_after_lost_lease"))
    with transaction.atomic():
        # Read and settle under the rows' locks. A worker whose lease ran out may be slow rather
        # than dead (descheduled on a busy machine): if it marked a wave in flight between a plain
        # read here and the update, the wave would be put back in line while the provider has it,
        # and sent twice. Locked, its mark either committed first (read here as in flight) or
        # waits for this sweep and then finds the lease gone (it sends nothing of those rows).
        # Rows a live transaction holds (that worker marking or recording a wave) are skipped, not
        # waited for: the next tick settles whatever that worker leaves, and the sweep, which locks
        # many rows in no particular order, never waits on a worker that may be waiting on it (a
        # deadlock would abort one of them). SQLite's immediate write transaction gives one order.
        rows = list(
            expired.select_for_update(of=("self",), skip_locked=True)
            .values_list("id", "channel", "status_reason", "category__resend_policy")
        )
        at_least_once = Category.ResendPolicy.AT_LEAST_ONCE
        resend = [(pk, ch) for pk, ch, reason, policy in rows
                  if reason == IN_FLIGHT and policy == at_least_once and ch in resendable]
        resent_ids = {pk for pk, _ in resend}
        unknown = [pk for pk, _ch, reason, _p in rows if reason == IN_FLIGHT and pk not in resent_ids]
        untouched = [(pk, ch) for pk, ch, reason, _p in rows if reason != IN_FLIGHT]
        digests = [pk for pk, _ch, reason, _p in rows if reason != IN_FLIGHT and reason.startswith(DIGEST_PREFIX)]
        Delivery.objects.filter(pk__in=list(resent_ids)).update(
            status=Status.DEFERRED, status_reason="resend_after_lost_lease", next_attempt_at=now, **released
        )
        Delivery.objects.filter(pk__in=unknown).update(
            status=Status.UNKNOWN, status_reason="lost_in_flight",
            last_error="The worker stopped while the provider had the message; its answer never came back.",
            **released,
        )
        # A digest delivery keeps its reason, so it is folded into its digest again.
        Delivery.objects.filter(pk__in=digests).update(
            status=Status.DEFERRED, next_attempt_at=now, attempts=F("attempts") - 1, **released
        )
        Delivery.objects.filter(pk__in=[pk for pk, _ in untouched], status=Status.SENDING).update(
            status=Status.DEFERRED, status_reason="lease_expired", next_attempt_at=now,
            attempts=F("attempts") - 1, **released,
        )
        _enqueue_batches(resend + untouched)
        status_moves_written([(pk, Status.UNKNOWN) for pk in unknown])
        counts = {"requeued": len(untouched), "resent": len(resend), "unknown": len(unknown)}
        if any(counts.values()):
            transaction.on_commit(lambda: announce(deliveries_swept, counts=counts))
    return len(resend) + len(unknown) + len(untouched)


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
        status_moves_written([(delivery.pk, status)])
    return bool(updated)


def ledger_tick(*, once: bool = False) -> list[str]:
    """The scheduler's ledger round: re-queue deliveries whose worker died mid-batch (expired
    leases) and deliveries due for a while without a task (a lost task)."""
    swept = deliveries_sweep_expired_leases()
    requeued = deliveries_requeue_stale()
    if swept or requeued or once:
        return [f"swept {swept} expired lease(s), re-queued {requeued} stale delivery(ies)"]
    return []
