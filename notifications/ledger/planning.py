"""Plan: ledger rows written in streamed chunks with a unique key, sends enqueued on commit."""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from channels_adapters.handler import channels

from ..models import Delivery
from .rows import insert_rows

Status = Delivery.Status


@dataclass(frozen=True, slots=True)  # slots: ten thousand of these are made per fan-out
class PlannedDelivery:
    """A ledger row to create. ``status`` is ``planned``, or ``suppressed`` with a reason."""

    idempotency_key: str
    channel: str
    address: str
    recipient_id: int | None = None
    category_id: int | None = None
    content: dict = field(default_factory=dict)
    status: str = Status.PLANNED
    status_reason: str = ""
    not_before: datetime | None = None  # e.g. the end of the recipient's quiet hours
    run_id: int | None = None
    trigger_id: int | None = None


@dataclass
class PlanResult:
    """What planning did. ``planned`` counts new deliveries that will go out (or already went
    out: ``delivered`` of them were written by planning itself, see ``ledger.local``)."""

    planned: int = 0
    suppressed: int = 0
    already_known: int = 0
    batches: int = 0
    delivered: int = 0
    failed: int = 0


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


PLAN_FIELDS = (
    "idempotency_key", "recipient", "channel", "address", "category", "content", "status", "status_reason",
    "next_attempt_at", "run", "trigger", "provider_message_id", "attempts", "lease_owner", "last_error", "created_at",
)


def deliveries_plan(*, planned: Iterable[PlannedDelivery], chunk_size: int = 1000) -> PlanResult:
    """Write ledger rows in chunks (streamed, never all in memory) and enqueue send batches.

    Due deliveries on a channel whose adapter delivers while planning (the inbox) are written
    as delivered here instead (``ledger.local``). Must run inside the caller's transaction
    (it is one when called in autocommit); batches are enqueued and live updates published on
    commit, so a rolled-back plan sends nothing and shows nobody anything.
    """
    from .local import deliveries_deliver_planned, delivers_while_planning

    result = PlanResult()
    local: dict[str, bool] = {}
    shared: dict = {}  # what local adapters keep between chunks (the inbox: texts already stored)
    for chunk in _chunks(planned, chunk_size):
        now = timezone.now()
        for p in chunk:
            if p.channel not in local:
                local[p.channel] = delivers_while_planning(p.channel)
        due_local = [p for p in chunk if p.status == Status.PLANNED and p.not_before is None and local[p.channel]]
        if due_local:
            with transaction.atomic(savepoint=False):  # all or nothing with the caller's transaction
                delivered, failed, known = deliveries_deliver_planned(planned=due_local, now=now, shared=shared)
            result.planned += delivered + failed
            result.delivered += delivered
            result.failed += failed
            result.already_known += known
            if len(due_local) == len(chunk):
                continue
            taken = {id(p) for p in due_local}
            chunk = [p for p in chunk if id(p) not in taken]
        keys = [p.idempotency_key for p in chunk]
        before = Delivery.objects.filter(idempotency_key__in=keys).count()
        insert_rows(
            Delivery,
            fields=PLAN_FIELDS,
            rows=(
                (p.idempotency_key, p.recipient_id, p.channel, p.address, p.category_id, p.content, p.status,
                 p.status_reason, p.not_before, p.run_id, p.trigger_id, "", 0, "", "", now)
                for p in chunk
            ),
            ignore_conflicts=True,
        )
        result.already_known += before
        result.suppressed += sum(1 for p in chunk if p.status == Status.SUPPRESSED)
        waiting = Delivery.objects.filter(idempotency_key__in=keys, status=Status.PLANNED)
        enqueued = deliveries_enqueue(waiting=waiting)
        result.planned += enqueued.planned
        result.batches += enqueued.batches
    return result


def deliveries_enqueue(*, waiting) -> PlanResult:
    """Enqueue send tasks (on commit) for ``waiting`` planned deliveries: due ones now, held ones
    (quiet hours, digests, local-time and throttled campaigns) in one task per distinct not-before
    second, rounded up because RQ rounds ``run_after`` down and an early task would find nothing due."""
    result = PlanResult()
    due = list(waiting.filter(next_attempt_at__isnull=True).values_list("id", "channel"))
    held: dict[datetime, list[tuple[int, str]]] = defaultdict(list)
    for delivery_id, channel, not_before in waiting.filter(next_attempt_at__isnull=False).values_list(
        "id", "channel", "next_attempt_at"
    ):
        whole = not_before.replace(microsecond=0)
        held[whole if whole == not_before else whole + timedelta(seconds=1)].append((delivery_id, channel))
    result.planned = len(due) + sum(len(v) for v in held.values())
    result.batches = _enqueue_batches(due)
    for run_after, pairs in held.items():
        result.batches += _enqueue_batches(pairs, run_after=run_after)
    return result


def _enqueue_batches(due: Sequence[tuple[int, str]], *, run_after: datetime | None = None) -> int:
    """Enqueue send tasks for (id, channel) pairs after commit, optionally not before ``run_after``."""
    from .tasks import deliveries_send_task

    task = deliveries_send_task.using(run_after=run_after) if run_after else deliveries_send_task
    by_channel: dict[str, list[int]] = defaultdict(list)
    for delivery_id, channel in due:
        by_channel[channel].append(delivery_id)
    batches = [
        ids
        for channel, channel_ids in by_channel.items()
        for ids in _chunks(channel_ids, channels[channel].max_batch_size)
    ]
    for ids in batches:
        transaction.on_commit(lambda ids=ids: task.enqueue(delivery_ids=ids))
    return len(batches)
