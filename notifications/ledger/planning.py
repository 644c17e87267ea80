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
from .rows import Each, column_values, insert_columns

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


def deliveries_plan(*, planned: Iterable[PlannedDelivery], chunk_size: int = 1000,
                    compiled_templates: dict | None = None) -> PlanResult:
    """Write ledger rows in chunks (streamed, never all in memory) and enqueue send batches.

    Due deliveries on a channel whose adapter delivers while planning (the inbox) are written
    as delivered here instead (``ledger.local``). Must run inside the caller's transaction
    (it is one when called in autocommit); batches are enqueued and live updates published on
    commit, so a rolled-back plan sends nothing and shows nobody anything. Templated messages
    for local channels are rendered here, each template compiled once per plan or, when the
    caller keeps ``compiled_templates`` across plans (a journey tick's chunks), once for all.
    """
    from .local import deliveries_deliver_planned, delivers_while_planning

    result = PlanResult()
    local: dict[str, bool] = {}
    shared: dict = {}  # what local adapters keep between chunks (the inbox: texts already stored)
    compiled = {} if compiled_templates is None else compiled_templates
    for chunk in _chunks(planned, chunk_size):
        now = timezone.now()
        for p in chunk:
            if p.channel not in local:
                local[p.channel] = delivers_while_planning(p.channel)
        due_local = [p for p in chunk if p.status == Status.PLANNED and p.not_before is None and local[p.channel]]
        if due_local:
            with transaction.atomic(savepoint=False):  # all or nothing with the caller's transaction
                delivered, failed, known = deliveries_deliver_planned(planned=due_local, now=now, shared=shared,
                                                                     compiled=compiled)
            result.planned += delivered + failed
            result.delivered += delivered
            result.failed += failed
            result.already_known += known
            if len(due_local) == len(chunk):
                continue
            taken = {id(p) for p in due_local}
            chunk = [p for p in chunk if id(p) not in taken]
        keys = [p.idempotency_key for p in chunk]
        returned = insert_columns(
            Delivery,
            columns={
                "idempotency_key": Each(keys),
                "recipient": column_values([p.recipient_id for p in chunk]),
                "channel": column_values([p.channel for p in chunk]),
                "address": column_values([p.address for p in chunk]),
                "category": column_values([p.category_id for p in chunk]),
                "content": column_values([p.content for p in chunk], identical=True),
                "status": column_values([p.status for p in chunk]),
                "status_reason": column_values([p.status_reason for p in chunk]),
                "next_attempt_at": column_values([p.not_before for p in chunk]),
                "run": column_values([p.run_id for p in chunk]),
                "trigger": column_values([p.trigger_id for p in chunk]),
                "provider_message_id": "", "attempts": 0, "lease_owner": "", "last_error": "", "created_at": now,
            },
            ignore_conflicts=True,
            returning=("id", "idempotency_key"),
        )
        distinct = set(keys)
        result.already_known += len(distinct) - len(returned)
        result.suppressed += sum(1 for p in chunk if p.status == Status.SUPPRESSED)
        if len(returned) == len(keys):
            # Every row is new and is what was planned: what waits to be sent is known without
            # reading it back (the usual case; one query fewer per chunk).
            by_key = {p.idempotency_key: p for p in chunk}
            enqueued = _enqueue_planned([
                (delivery_id, by_key[key].channel, by_key[key].not_before)
                for delivery_id, key in sorted(returned) if by_key[key].status == Status.PLANNED
            ])
        else:
            # Some keys existed (a re-plan) or repeat within the chunk: planned rows, new or not,
            # are enqueued as the ledger has them.
            enqueued = deliveries_enqueue(
                waiting=Delivery.objects.filter(idempotency_key__in_list=distinct, status=Status.PLANNED)
            )
        result.planned += enqueued.planned
        result.batches += enqueued.batches
    return result


def deliveries_enqueue(*, waiting) -> PlanResult:
    """Enqueue send tasks (on commit) for ``waiting`` planned deliveries: due ones now, held ones
    (quiet hours, digests, local-time and throttled campaigns) in one task per distinct not-before
    second, rounded up because RQ rounds ``run_after`` down and an early task would find nothing due."""
    return _enqueue_planned(waiting.values_list("id", "channel", "next_attempt_at"))


def _enqueue_planned(rows: Iterable[tuple[int, str, datetime | None]]) -> PlanResult:
    """Enqueue send tasks for (id, channel, not before) of planned deliveries (see above)."""
    result = PlanResult()
    due: list[tuple[int, str]] = []
    held: dict[datetime, list[tuple[int, str]]] = defaultdict(list)
    for delivery_id, channel, not_before in rows:
        if not_before is None:
            due.append((delivery_id, channel))
            continue
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
