"""Heartbeats: the scheduler's own each tick, and a worker's through a task the scheduler enqueues.

Invariants:
- A heartbeat row only moves forward in time (``beat_at`` is the latest proof of life).
- At most one worker heartbeat task waits in the queue at a time: a new one is enqueued only when
  the last was run (then every ``SIGNALBOX_HEARTBEAT_SECONDS``), or when it has waited longer than
  the worker threshold (a lost task). A queue without workers therefore never fills with them.
- The task is enqueued after the row's commit, so a worker never runs one the database forgot.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from . import conf
from .models import Heartbeat


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
