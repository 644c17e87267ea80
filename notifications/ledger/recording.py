"""Record: outcomes written as they come back, and the in-flight mark that makes a crash honest.

A batch's messages move through three durable states in the ledger:

1. ``sending`` under a lease, no mark: claimed, nothing has left. A crash here loses nothing;
   the sweeper re-queues the delivery (``recovery``).
2. ``sending`` with ``status_reason = "in_flight"`` (``IN_FLIGHT``): the worker is about to hand
   the message to the provider. ``mark_in_flight`` writes it for a whole wave in one UPDATE, in
   autocommit, *before* the first byte of those messages leaves. A crash here leaves the
   provider's answer unknown; the category's ``resend_policy`` decides (``recovery``).
3. The outcome (``sent`` only when the provider accepted, ``deferred``, ``failed``,
   ``unknown``), written by ``ResultRecorder`` in small transactions as results arrive.

``ResultRecorder`` writes what came back *before* it marks the next wave, so at any moment at
most one wave per lane is marked without an outcome: a crash leaves at most the adapter's
``concurrency`` deliveries of a batch to the policy, never the batch.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from channels_adapters.base import SendResult
from channels_adapters.errors import PermanentChannelError, TransientChannelError, UnknownOutcomeError
from channels_adapters.handler import channels
from config.logs import log_context

from .. import conf
from ..models import Category, Delivery, DeliveryEvent
from ..signals import (
    delivery_status_changed,
    delivery_statuses_changed,
    delivery_statuses_recording,
    notification_sent,
)
from .planning import _enqueue_batches
from .rows import insert_rows

Status = Delivery.Status
logger = logging.getLogger(__name__)

IN_FLIGHT = "in_flight"
DIGEST_PREFIX = "digest:"
EVENT_FIELDS = ("delivery", "kind", "source", "occurred_at", "data")
# What an outcome may write; each writes only its own (a sent row keeps its last retry time).
RESULT_FIELDS = ("status", "status_reason", "last_error", "provider_message_id", "sent_at", "failed_at", "next_attempt_at")


def resend_allowed(delivery: Delivery) -> bool:
    """May a delivery whose outcome is unknown be sent again? Only when its category asks for
    at-least-once delivery and its channel can re-send without a second, different message."""
    category = delivery.category
    if category is None or category.resend_policy != Category.ResendPolicy.AT_LEAST_ONCE:
        return False
    return channels.features(delivery.channel).safe_to_resend_after_lost_lease


def mark_in_flight(*, delivery_ids: Sequence[int], owner: str) -> int:
    """Durably mark ``delivery_ids`` as about to be handed to the provider; one UPDATE.

    Only rows still ``sending`` under ``owner``'s lease are marked; returns how many were. The
    caller commits it before anything of those messages is sent (``ResultRecorder.on_handoff``:
    in autocommit the block commits on return; inside a test's transaction it is as durable as
    that transaction).
    """
    if not delivery_ids:
        return 0
    quote = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(delivery_ids))
    sql = (
        f"UPDATE {quote(Delivery._meta.db_table)} SET {quote('status_reason')} = %s "
        f"WHERE {quote('id')} IN ({marks}) AND {quote('lease_owner')} = %s AND {quote('status')} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [IN_FLIGHT, *delivery_ids, owner, Status.SENDING])
        return cursor.rowcount


def renew_lease(*, delivery_ids: Sequence[int], owner: str, seconds: int) -> int:
    """Push the lease of ``delivery_ids`` still ``sending`` under ``owner`` ``seconds`` ahead; one
    UPDATE. Rows the sweeper already took stay theirs (the WHERE clause); returns how many renewed."""
    if not delivery_ids:
        return 0
    quote = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(delivery_ids))
    expires = timezone.now() + timedelta(seconds=seconds)
    sql = (
        f"UPDATE {quote(Delivery._meta.db_table)} SET {quote('lease_expires_at')} = %s "
        f"WHERE {quote('id')} IN ({marks}) AND {quote('lease_owner')} = %s AND {quote('status')} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Delivery._meta.get_field("lease_expires_at").get_db_prep_save(expires, connection),
                             *delivery_ids, owner, Status.SENDING])
        return cursor.rowcount


@dataclass
class SendSummary:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    suppressed: int = 0


class ResultRecorder:
    """The ``on_result``/``on_handoff`` pair the pipeline gives an adapter for one batch.

    ``members`` maps each message's delivery id to the deliveries it stands for (a digest
    message stands for several). Results are buffered and written by ``flush()``: before each
    new wave is marked, when ``flush_size`` results are waiting, and at the end of the batch.

    The lease is renewed as the batch goes (``renew_lease``, at the first hand-off and then every
    third of the lease): a slow provider, a rate-limit wait or a descheduled process must not let
    the sweeper take a batch from a worker that is still sending it.
    """

    def __init__(
        self, *, deliveries: Sequence[Delivery], members: dict[int, list[int]], owner: str, summary: SendSummary,
        flush_size: int = 50,
    ) -> None:
        self.deliveries = {d.pk: d for d in deliveries}
        self.members = members
        self.owner = owner
        self.summary = summary
        self.flush_size = flush_size
        self.pending: list[SendResult] = []
        self.lease_renewed_at: float | None = None  # time.monotonic(); None: not since the claim

    def on_result(self, result: SendResult) -> None:
        self.pending.append(result)
        if len(self.pending) >= self.flush_size:
            self.flush()

    def on_handoff(self, delivery_ids: list[int]) -> Collection[int] | None:
        ids = [pk for message_id in delivery_ids for pk in self.members.get(message_id, [message_id])]
        # What came back and the next wave's mark in one commit; the mark is durable when it
        # returns, before anything of the wave leaves.
        unwritten = list(self.pending)
        try:
            with transaction.atomic():
                self.flush()
                self._renew_lease_when_due()
                marked = mark_in_flight(delivery_ids=ids, owner=self.owner)
        except Exception:
            self.pending = unwritten + self.pending  # rolled back: the batch's last flush tries again
            raise
        if marked == len(ids):
            return None
        # Some lease was lost (the sweeper took the row from a worker it thought dead): send
        # only what is still ours, so the new owner's send is the only one.
        ours = set(
            Delivery.objects.filter(pk__in=ids, lease_owner=self.owner, status=Status.SENDING, status_reason=IN_FLIGHT)
            .values_list("id", flat=True)
        )
        return {m for m in delivery_ids if all(pk in ours for pk in self.members.get(m, [m]))}

    def _renew_lease_when_due(self) -> None:
        seconds = conf.lease_seconds()
        now = time.monotonic()
        if self.lease_renewed_at is not None and now - self.lease_renewed_at < seconds / 3:
            return
        renew_lease(delivery_ids=list(self.deliveries), owner=self.owner, seconds=seconds)
        self.lease_renewed_at = now

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        results = [
            dataclasses.replace(result, delivery_id=pk)
            for result in pending
            for pk in self.members.get(result.delivery_id, [result.delivery_id])
        ]
        deliveries_record_results(
            deliveries=[self.deliveries[r.delivery_id] for r in results], results=results, owner=self.owner,
            summary=self.summary,
        )


def retry_delay(attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: about base·2^(attempt-1), capped, never before ``retry_after``."""
    base, cap = conf.retry_base_seconds(), conf.retry_max_seconds()
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    seconds = (rng or random).uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        seconds = max(seconds, retry_after)
    return timedelta(seconds=seconds)


def deliveries_record_results(
    *, deliveries: Sequence[Delivery], results: Sequence[SendResult], owner: str, summary: SendSummary
) -> None:
    """Write each result to the ledger in one short transaction, only for rows whose lease is
    still ``owner``'s. A delivery is ``sent`` only on the provider's acceptance; an unknown
    outcome is re-sent only where ``resend_allowed`` says so, else it stays ``unknown``."""
    now = timezone.now()
    by_id = {d.pk: d for d in deliveries}
    with transaction.atomic(savepoint=False):
        # What each result makes of its row, worked out first and written in one statement per
        # distinct outcome; only rows the UPDATE reports as still ``owner``'s take it.
        outcomes: list[tuple[Delivery, dict, tuple | None, str]] = []  # (delivery, values, event, summary field)
        max_attempts = conf.max_attempts()
        retry_at: dict[int, datetime] = {}  # one retry time per error, so a digest's rows stay together
        for result in results:
            delivery = by_id[result.delivery_id]
            values: dict = {}
            event = None
            error = result.error
            if isinstance(error, UnknownOutcomeError) and resend_allowed(delivery) and delivery.attempts < max_attempts:
                # At least once: the same message (same Message-ID) goes again.
                error = TransientChannelError(error.message, reason=f"resend:{error.reason}")
            if error is None:
                values.update(status=Status.SENT, sent_at=now, provider_message_id=result.provider_message_id[:255],
                              status_reason="", last_error="")
                event, counter = (delivery.pk, "sent", delivery.channel, now, {}), "sent"
            elif isinstance(error, TransientChannelError) and delivery.attempts < max_attempts:
                # A digest delivery keeps its reason so the retry is batched again (the error is in last_error).
                digest = delivery.status_reason.startswith(DIGEST_PREFIX)
                values.update(
                    status=Status.DEFERRED,
                    next_attempt_at=retry_at.setdefault(
                        id(result.error),
                        now + retry_delay(delivery.attempts, retry_after=getattr(error, "retry_after", None)),
                    ),
                    status_reason=delivery.status_reason if digest else error.reason[:100],
                    last_error=error.message,
                )
                counter = "deferred"
            elif isinstance(error, UnknownOutcomeError):
                values.update(status=Status.UNKNOWN, status_reason=error.reason[:100], last_error=error.message)
                counter = "unknown"
            else:
                reason = error.reason if isinstance(error, PermanentChannelError) else f"gave_up:{error.reason}"
                values.update(status=Status.FAILED, failed_at=now, status_reason=reason[:100], last_error=error.message)
                event = (delivery.pk, "failed", delivery.channel, now, {"reason": reason, "error": error.message[:500]})
                counter = "failed"
            outcomes.append((delivery, values, event, counter))
        written = _write_results([(delivery.pk, values) for delivery, values, _, _ in outcomes], owner=owner)
        changed: list[Delivery] = []
        events: list[tuple] = []  # (delivery id, kind, source, occurred_at, data): EVENT_FIELDS
        for delivery, values, event, counter in outcomes:
            if delivery.pk not in written:
                continue  # another worker owns it now (the sweeper took it): its outcome is theirs
            for name, value in values.items():
                setattr(delivery, name, value)
            delivery.lease_owner, delivery.lease_expires_at = "", None
            setattr(summary, counter, getattr(summary, counter) + 1)
            if event is not None:
                events.append(event)
            changed.append(delivery)
        insert_rows(DeliveryEvent, fields=EVENT_FIELDS, rows=events, ignore_conflicts=False)
        for delivery in changed:
            if delivery.status != Status.SENT:
                _log_outcome(delivery)
        retries = [d for d in changed if d.status == Status.DEFERRED]
        if retries:
            # One task for these retries, due when the last of them is.
            _enqueue_batches([(d.pk, d.channel) for d in retries], run_after=max(d.next_attempt_at for d in retries))
        status_moves_written([(d.pk, d.status) for d in changed],
                             sent_ids=[d.pk for d in changed if d.status == Status.SENT])


def _log_outcome(delivery: Delivery) -> None:
    """One log line for a delivery that was not sent, carrying its ids (``config.logs``)."""
    ids = {"delivery_id": delivery.pk, "run_id": delivery.run_id, "campaign_id": getattr(delivery, "log_campaign_id", None)}
    with log_context(**ids):
        if delivery.status == Status.DEFERRED:
            logger.info("Delivery %s (%s) will be retried at %s: %s", delivery.pk, delivery.channel,
                        delivery.next_attempt_at.isoformat(), delivery.last_error[:300])
        elif delivery.status == Status.UNKNOWN:
            logger.warning("Delivery %s (%s): outcome unknown, not re-sent automatically (%s): %s", delivery.pk,
                           delivery.channel, delivery.status_reason, delivery.last_error[:300])
        else:
            logger.warning("Delivery %s (%s) failed (%s): %s", delivery.pk, delivery.channel, delivery.status_reason,
                           delivery.last_error[:300])


def _still_ours(delivery_ids: list[int], *, owner: str) -> set[int]:
    """Which of ``delivery_ids`` are still ``sending`` under ``owner``'s lease, locked for the
    rest of the transaction where the database can (a sweeper waits instead of racing us).
    Only for databases without ``UPDATE ... RETURNING`` (``_write_results``)."""
    if not delivery_ids:
        return set()
    quote = connection.ops.quote_name
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = (
        f"SELECT {quote('id')} FROM {quote(Delivery._meta.db_table)} WHERE {quote('id')} IN "
        f"({', '.join(['%s'] * len(delivery_ids))}) AND {quote('lease_owner')} = %s AND {quote('status')} = %s{lock}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*delivery_ids, owner, Status.SENDING])
        return {row[0] for row in cursor.fetchall()}


def _write_results(rows: Sequence[tuple[int, dict]], *, owner: str) -> set[int]:
    """Write each row's ``values`` (``(id, values)``, names from ``RESULT_FIELDS``), only where
    the row is still ``sending`` under ``owner``'s lease, and release the lease; returns the ids
    written.

    Plain SQL, one UPDATE per distinct outcome with ``RETURNING id``: a wave of sent messages
    differs only in each row's provider id (a ``CASE`` on the id), so it is one statement, and
    the WHERE clause both checks and takes the lease. Building the same through the ORM
    (``bulk_update``: a CASE per field per row), or a SELECT ... FOR UPDATE beside a per-row
    ``executemany``, cost more than handing the messages to a server on the same host.
    """
    if not rows:
        return set()
    fields = {name: Delivery._meta.get_field(name) for name in RESULT_FIELDS}
    quote = connection.ops.quote_name
    table, pk, lease_owner, status = (quote(name) for name in (Delivery._meta.db_table, "id", "lease_owner", "status"))
    # Rows grouped by everything they set but the provider id (prepared for the database once per group).
    groups: dict[tuple, list[tuple[int, str | None]]] = {}
    for delivery_id, values in rows:
        key = tuple(sorted((name, value) for name, value in values.items() if name != "provider_message_id"))
        groups.setdefault((key, "provider_message_id" in values), []).append(
            (delivery_id, values.get("provider_message_id"))
        )
    returning = connection.features.can_return_columns_from_insert  # UPDATE ... RETURNING alike (SQLite >= 3.35)
    written: set[int] = set()
    with connection.cursor() as cursor:
        if not returning:
            written = _still_ours([delivery_id for delivery_id, _ in rows], owner=owner)
        for (key, sets_provider_id), members in groups.items():
            ids = [delivery_id for delivery_id, _ in members if returning or delivery_id in written]
            if not ids:
                continue
            assignments = [f"{quote(fields[name].column)} = %s, " for name, _value in key]
            params = [fields[name].get_db_prep_save(value, connection) for name, value in key]
            provider_ids = {provider_id for _, provider_id in members}
            if not sets_provider_id:
                provider_params = []
            elif len(provider_ids) == 1:
                assignments.append(f"{quote('provider_message_id')} = %s, ")
                provider_params = [next(iter(provider_ids))]
            else:
                assignments.append(f"{quote('provider_message_id')} = CASE {pk}" + " WHEN %s THEN %s" * len(members)
                                   + f" ELSE {quote('provider_message_id')} END, ")
                provider_params = [value for member in members for value in member]
            sql = (
                f"UPDATE {table} SET {''.join(assignments)}"
                f"{lease_owner} = '', {quote('lease_expires_at')} = NULL "
                f"WHERE {pk} IN ({', '.join(['%s'] * len(ids))}) AND {lease_owner} = %s AND {status} = %s"
                + (f" RETURNING {pk}" if returning else "")
            )
            cursor.execute(sql, [*params, *provider_params, *ids, owner, Status.SENDING])
            if returning:
                written.update(row[0] for row in cursor.fetchall())
    return written


def announce(signal, **kwargs) -> None:
    """Send one of the ledger's outbound signals (after commit; ``status_moves_written`` also before).
    A receiver that raises is logged, never passed up: the ledger announces from inside a batch
    (before the next wave leaves), and a listener's failure must not stop a wave already marked
    in flight, which would then end ``unknown`` though it was never sent."""
    for receiver, result in signal.send_robust(sender=Delivery, **kwargs):
        if isinstance(result, Exception):
            logger.error("A receiver of a ledger signal failed (%r); the ledger carries on.", receiver,
                         exc_info=(type(result), result, result.__traceback__))


def status_moves_written(changes: Sequence[tuple[int, str]], *, sent_ids: Sequence[int] = ()) -> None:
    """Call inside the transaction that wrote these moves (``(delivery_id, status)``, in order),
    ``sent_ids`` being those newly sent. The one place the ledger reports moves, so none is
    reported one way and not the other:

    * now, inside the transaction: ``delivery_statuses_recording``, for receivers whose rows must
      commit with the moves (the webhook outbox writes in its own savepoint; a failure is logged);
    * after commit: ``notification_sent`` for ``sent_ids``, then ``announce_status_changes``.
    """
    if not changes:
        return
    changes, sent_ids = list(changes), list(sent_ids)
    if delivery_statuses_recording.has_listeners(Delivery):
        announce(delivery_statuses_recording, changes=changes)

    def after_commit() -> None:
        if sent_ids:
            announce(notification_sent, delivery_ids=sent_ids)
        announce_status_changes(changes)

    transaction.on_commit(after_commit)


def announce_status_changes(changes: Sequence[tuple[int, str]]) -> None:
    """Announce status moves (``(delivery_id, status)``, in order; after commit, through
    ``status_moves_written``):
    ``delivery_status_changed`` for each, then ``delivery_statuses_changed`` once for all. The
    one place the ledger sends them, so the two never disagree; the per-delivery signal costs
    nothing per message when nobody listens to it."""
    if not changes:
        return
    if delivery_status_changed.has_listeners(Delivery):
        for delivery_id, status in changes:
            announce(delivery_status_changed, delivery_id=delivery_id, status=status)
    announce(delivery_statuses_changed, changes=list(changes))
