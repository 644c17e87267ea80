"""Heartbeats (the scheduler's own each tick, and a worker's through a task the scheduler
enqueues), the ledger count behind ``signalbox_deliveries``, and the counters behind ``/metrics``.

Invariants:
- A heartbeat row only moves forward in time (``beat_at`` is the latest proof of life).
- At most one worker heartbeat task waits in the queue at a time: a new one is enqueued only when
  the last was run (then every ``SIGNALBOX_HEARTBEAT_SECONDS``), or when it has waited longer than
  the worker threshold (a lost task). A queue without workers therefore never fills with them.
- The task is enqueued after the row's commit, so a worker never runs one the database forgot.
- Counters only go up; the ledger count is replaced whole, by one scheduler per round.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

from django.db import transaction
from django.db.models import Count, F, Q

from . import conf
from .models import Counter, Heartbeat, LedgerCount


def _source() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_record(*, name: str, now: datetime) -> None:
    """Record that the process kind ``name`` is alive at ``now`` (never moving ``beat_at`` back)."""
    updated = Heartbeat.objects.filter(Q(beat_at__isnull=True) | Q(beat_at__lt=now), name=name).update(
        beat_at=now, source=_source()
    )
    if not updated:
        Heartbeat.objects.get_or_create(name=name, defaults={"beat_at": now, "source": _source()})


def worker_heartbeat_request(*, now: datetime) -> bool:
    """Enqueue a worker heartbeat task when one is due; whether it did."""
    from .tasks import worker_heartbeat_task

    settings = conf.heartbeats()
    with transaction.atomic():
        row, _ = Heartbeat.objects.select_for_update().get_or_create(name=Heartbeat.WORKER)
        if row.requested_at is not None:
            waiting = row.beat_at is None or row.beat_at < row.requested_at
            wait = settings.worker_max_age if waiting else settings.every
            if now - row.requested_at < wait:
                return False
        row.requested_at = now
        row.save(update_fields=["requested_at"])
        transaction.on_commit(worker_heartbeat_task.enqueue)
    return True


def heartbeats_tick(*, once: bool) -> list[str]:
    """The scheduler's tick (``notifications.scheduling``): its own heartbeat, then a worker's request."""
    from django.utils import timezone

    now = timezone.now()
    heartbeat_record(name=Heartbeat.SCHEDULER, now=now)
    requested = worker_heartbeat_request(now=now)
    if once:
        return ["recorded the scheduler heartbeat" + (", asked a worker for one" if requested else "")]
    return []


def counters_add(*, amounts: dict[str, int], now: datetime) -> None:
    """Add ``amounts`` to the named counters (created at zero the first time); one UPDATE each."""
    for name, amount in amounts.items():
        if not amount:
            continue
        Counter.objects.get_or_create(name=name)
        Counter.objects.filter(name=name).update(value=F("value") + amount, updated_at=now)


def ledger_count(*, now: datetime, force: bool = False) -> bool:
    """Count the ledger by channel and status into ``LedgerCount`` when the last count is older
    than ``SIGNALBOX_METRICS_COUNT_SECONDS`` (or ``force``); whether it counted.

    Two schedulers never both count the same round: each first claims the round by moving the
    ``ledger_count`` heartbeat's ``requested_at`` (compare-and-set). The count itself reads the
    whole table once (about a second at a million deliveries on PostgreSQL), off the request path.
    """
    from notifications.models import Delivery

    every = conf.metrics().count_every
    Heartbeat.objects.get_or_create(name=Heartbeat.LEDGER_COUNT)
    claim = Heartbeat.objects.filter(name=Heartbeat.LEDGER_COUNT)
    if not force:
        claim = claim.filter(Q(requested_at__isnull=True) | Q(requested_at__lte=now - every))
    if not claim.update(requested_at=now):
        return False
    rows = [
        LedgerCount(channel=row["channel"], status=row["status"], deliveries=row["n"])
        for row in Delivery.objects.order_by().values("channel", "status").annotate(n=Count("id"))
    ]
    with transaction.atomic():
        LedgerCount.objects.all().delete()
        LedgerCount.objects.bulk_create(rows)
        Heartbeat.objects.filter(name=Heartbeat.LEDGER_COUNT).update(beat_at=now, source=_source())
    return True


def ledger_count_tick(*, once: bool) -> list[str]:
    """The scheduler's tick (``notifications.scheduling``): the ledger count, when one is due."""
    from django.utils import timezone

    counted = ledger_count(now=timezone.now())
    if counted and once:
        return ["counted the ledger by channel and status"]
    return []
