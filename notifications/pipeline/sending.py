"""Send: claim a batch under a lease, re-check, hand it to the channel adapter, record results."""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.translation import ngettext

from channels_adapters.base import OutboundMessage, SendResult
from channels_adapters.errors import PermanentChannelError, TransientChannelError, UnknownOutcomeError
from channels_adapters.handler import channels

from .. import conf, ratelimit
from ..models import Delivery, DeliveryEvent
from ..signals import delivery_status_changed, notification_sent

from . import rechecks
from .rows import insert_rows
from .planning import _chunks, _enqueue_batches, worker_id

Status = Delivery.Status


def deliveries_claim(*, delivery_ids: Sequence[int], owner: str, now: datetime) -> list[Delivery]:
    """Take the due deliveries among ``delivery_ids`` under a lease owned by ``owner``."""
    due = Delivery.objects.filter(pk__in=delivery_ids).due(now)
    lease = {
        "status": Status.SENDING,
        "lease_owner": owner,
        "lease_expires_at": now + timedelta(seconds=conf.lease_seconds()),
        "attempts": F("attempts") + 1,
    }
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True))
            Delivery.objects.filter(pk__in=ids).update(**lease)
        else:
            due.update(**lease)
    return list(
        Delivery.objects.filter(pk__in=delivery_ids, status=Status.SENDING, lease_owner=owner)
        .select_related("category")
        .order_by("id")
    )


@dataclass
class SendSummary:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    suppressed: int = 0


def deliveries_send(*, delivery_ids: Sequence[int], now: datetime | None = None) -> SendSummary:
    """Claim, re-check, send and record one batch. Safe to call twice with the same ids.

    Deliveries held for a digest (``status_reason`` "digest:...") go out as one combined message
    per (recipient, category, channel), together with every other due digest delivery of that
    group, wherever its own task is.
    """
    owner = worker_id()
    now = now or timezone.now()
    claimed = deliveries_claim(delivery_ids=delivery_ids, owner=owner, now=now)
    claimed += _claim_digest_siblings(claimed, owner=owner, now=now)
    summary = SendSummary(claimed=len(claimed))
    sendable = rechecks.drop_suppressed(claimed, owner=owner, summary=summary)
    sendable = rechecks.hold_for_recipient(sendable, owner=owner, now=now, summary=summary)
    sendable, unrenderable = rechecks.render_templates(sendable)
    if unrenderable:
        deliveries_record_results(
            deliveries=[d for d, _error in unrenderable],
            results=[SendResult(delivery_id=d.pk, error=error) for d, error in unrenderable],
            owner=owner, summary=summary,
        )
    # Each unit is a list of deliveries sent as one message: a digest group, or a single delivery.
    groups: dict[tuple, list[Delivery]] = defaultdict(list)
    units: list[list[Delivery]] = []
    for delivery in sendable:
        if delivery.status_reason.startswith(DIGEST_PREFIX):
            group = groups[(delivery.recipient_id, delivery.category_id, delivery.channel)]
            if not group:
                units.append(group)
            group.append(delivery)
        else:
            units.append([delivery])
    by_channel: dict[str, list[list[Delivery]]] = defaultdict(list)
    for unit in units:
        by_channel[unit[0].channel].append(unit)
    for channel, channel_units in by_channel.items():
        adapter = channels[channel]
        rate = adapter.max_per_second
        # With a declared rate, send at most one second's worth at a time, paced across every
        # worker by the shared limiter.
        step = min(adapter.max_batch_size, max(1, int(rate))) if rate else adapter.max_batch_size
        for chunk_units in _chunks(channel_units, step):
            if rate:
                ratelimit.acquire(channel=channel, count=len(chunk_units), rate=rate)
            members = {unit[0].pk: [d.pk for d in unit] for unit in chunk_units}
            chunk = [d for unit in chunk_units for d in unit]
            messages = [outbound_message(unit[0]) if len(unit) == 1 else digest_message(unit) for unit in chunk_units]
            adapter.handoff = lambda delivery_id, provider_id, members=members: _mark_handed_off(
                delivery_ids=members.get(delivery_id, [delivery_id]), provider_message_id=provider_id, owner=owner
            )
            if getattr(adapter, "local", False):
                # Local channels (the inbox) write to our own database: make the write and the
                # ledger update one transaction, so they happen exactly once together.
                with transaction.atomic():
                    results = _results_for_members(adapter.send_batch(messages), members)
                    deliveries_record_results(deliveries=chunk, results=results, owner=owner, summary=summary)
            else:
                results = _results_for_members(adapter.send_batch(messages), members)
                deliveries_record_results(deliveries=chunk, results=results, owner=owner, summary=summary)
    run_ids = {d.run_id for d in claimed if d.run_id}
    if run_ids:
        from ..campaigns.runs import runs_finish_if_done

        runs_finish_if_done(run_ids=sorted(run_ids))
    return summary


DIGEST_PREFIX = "digest:"


def _claim_digest_siblings(claimed: Sequence[Delivery], *, owner: str, now: datetime) -> list[Delivery]:
    """Also claim the other due digest deliveries of each claimed digest's group (one query + claim)."""
    keys = {(d.recipient_id, d.category_id, d.channel) for d in claimed if d.status_reason.startswith(DIGEST_PREFIX)}
    if not keys:
        return []
    same_group = Q()
    for recipient_id, category_id, channel in keys:
        same_group |= Q(recipient_id=recipient_id, category_id=category_id, channel=channel)
    ids = list(
        Delivery.objects.due(now)
        .filter(same_group, status_reason__startswith=DIGEST_PREFIX)
        .exclude(pk__in=[d.pk for d in claimed])
        .values_list("id", flat=True)
    )
    return deliveries_claim(delivery_ids=ids, owner=owner, now=now) if ids else []


def _results_for_members(results: Sequence[SendResult], members: dict[int, list[int]]) -> list[SendResult]:
    """One result per delivery: a digest message's result applies to every delivery in it."""
    return [
        dataclasses.replace(result, delivery_id=pk)
        for result in results
        for pk in members.get(result.delivery_id, [result.delivery_id])
    ]


def digest_message(deliveries: Sequence[Delivery]) -> OutboundMessage:
    """One message summing up several deliveries of one recipient, category and channel."""
    first = deliveries[0]
    content = first.content or {}
    items = [
        (
            (d.content or {}).get("subject") or (d.content or {}).get("title", ""),
            (d.content or {}).get("text") or (d.content or {}).get("body", ""),
        )
        for d in deliveries
    ]
    name = first.category.name if first.category else ""
    with translation.override(content.get("locale") or translation.get_language()):
        subject = ngettext("%(count)d update: %(category)s", "%(count)d updates: %(category)s", len(items)) % {
            "count": len(items), "category": name,
        }
    text = "\n".join(f"- {title}: {body}" if body else f"- {title}" for title, body in items)
    html = "<ul>" + "".join(
        f"<li><strong>{escape(title)}</strong>" + (f"<br>{escape(body)}" if body else "") + "</li>"
        for title, body in items
    ) + "</ul>"
    return outbound_message(
        first,
        content={"subject": subject, "text": text, "html": html, "locale": content.get("locale", "en"),
                 "metadata": {**content.get("metadata", {}), "digest_size": len(items)}},
    )


HANDED_OFF = "handed_off"


def _mark_handed_off(*, delivery_ids: Sequence[int], provider_message_id: str, owner: str):
    """Durably note that the provider is about to have this message; one UPDATE, autocommit.

    If the worker dies before recording the result, the sweeper reads this mark as "sent"
    instead of sending again. The mark and the provider's irrevocable step must go out
    together: a crash between them loses the message (mark, no send). On SQLite the commit is
    local and done when ``execute`` returns. On PostgreSQL waiting for the reply would leave a
    window of a network round trip in which the server has committed but the worker has not
    yet sent, so the statement is only *sent* here, and the returned callable collects its
    result after the adapter's irrevocable step. The server commits a statement it received
    even if the worker dies meanwhile.
    """
    params = [HANDED_OFF, provider_message_id[:255], *delivery_ids, owner, Status.SENDING]
    quote = connection.ops.quote_name

    def statement(marks: list[str]) -> str:
        return (
            f"UPDATE {quote(Delivery._meta.db_table)} SET {quote('status_reason')} = {marks[0]}, "
            f"{quote('provider_message_id')} = {marks[1]} WHERE {quote('id')} IN ({', '.join(marks[2:-2])}) "
            f"AND {quote('lease_owner')} = {marks[-2]} AND {quote('status')} = {marks[-1]}"
        )

    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        sql = statement([f"${i}" for i in range(1, len(params) + 1)])
        connection.ensure_connection()
        pgconn = connection.connection.pgconn
        pgconn.send_query_params(sql.encode(), [str(value).encode() for value in params])
        while pgconn.flush():
            pass

        def collect() -> None:
            error = None
            while (result := pgconn.get_result()) is not None:
                if result.error_message:
                    error = result.error_message.decode(errors="replace")
            if error:
                raise DatabaseError(f"Could not record the hand-off mark: {error}")

        return collect
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        # Once per email: skip the ORM cursor wrapper. In autocommit, the statement is committed
        # (durable in the WAL) when ``execute`` returns.
        connection.ensure_connection()
        connection.connection.execute(statement(["?"] * len(params)), params)
        return None
    with connection.cursor() as cursor:
        cursor.execute(statement(["%s"] * len(params)), params)
    return None


def outbound_message(delivery: Delivery, *, content: dict | None = None) -> OutboundMessage:
    """The channel-neutral message for a claimed delivery, with tracking where the channel has it.

    Email HTML gets its links replaced by opaque click links (stored as ``TrackedLink``) and an
    open pixel; marketing mail carries the one-click unsubscribe URL for the adapter's headers.
    ``content`` replaces the delivery's own (a digest's combined content).
    """
    from .. import tracking  # tracking records receipts through this module

    content = (delivery.content or {}) if content is None else content
    kind = delivery.category.kind if delivery.category else ""
    html = content.get("html", "")
    metadata = {"recipient_id": delivery.recipient_id, "category_id": delivery.category_id, "category_kind": kind,
                **content.get("metadata", {})}
    if delivery.channel == "email":
        if html:
            pixel = f'<img src="{tracking.open_pixel_url(delivery)}" width="1" height="1" alt="">'
            html = tracking.links_rewrite(delivery=delivery, html=html)
            # Inside the body of a whole document (a templated email's layout), else at the end.
            at = html.rfind("</body>")
            html = html[:at] + pixel + html[at:] if at != -1 else html + pixel
        if kind == "marketing":
            if "unsubscribe_url" not in metadata:  # a rendered template carries it already
                metadata["unsubscribe_url"] = tracking.unsubscribe_url(delivery)
    return OutboundMessage(
        delivery_id=delivery.pk,
        address=delivery.address,
        subject=content.get("subject") or content.get("title", ""),
        text=content.get("text") or content.get("body", ""),
        html=html,
        url=content.get("url", ""),
        metadata=metadata,
        locale=content.get("locale", "en"),
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
    """Write each result to the ledger, only for rows whose lease is still ``owner``'s."""
    now = timezone.now()
    by_id = {d.pk: d for d in deliveries}
    still_ours = set(
        Delivery.objects.filter(pk__in=list(by_id), lease_owner=owner, status=Status.SENDING).values_list("id", flat=True)
    )
    changed: list[Delivery] = []
    events: list[tuple] = []  # (delivery id, kind, source, occurred_at, data): EVENT_FIELDS
    max_attempts = conf.max_attempts()
    retry_at: dict[int, datetime] = {}  # one retry time per error, so a digest's rows stay together
    for result in results:
        delivery = by_id[result.delivery_id]
        if delivery.pk not in still_ours:
            continue
        delivery.lease_owner, delivery.lease_expires_at = "", None
        error = result.error
        if error is None:
            delivery.status, delivery.sent_at = Status.SENT, now
            delivery.provider_message_id = result.provider_message_id[:255]
            delivery.status_reason = delivery.last_error = ""
            events.append((delivery.pk, "sent", delivery.channel, now, {}))
            summary.sent += 1
        elif isinstance(error, TransientChannelError) and delivery.attempts < max_attempts:
            delivery.status = Status.DEFERRED
            delivery.next_attempt_at = retry_at.setdefault(
                id(error), now + retry_delay(delivery.attempts, retry_after=error.retry_after)
            )
            # A digest delivery keeps its reason so the retry is batched again (the error is in last_error).
            digest = delivery.status_reason.startswith(DIGEST_PREFIX)
            delivery.status_reason = delivery.status_reason if digest else error.reason[:100]
            delivery.last_error = error.message
            summary.deferred += 1
        elif isinstance(error, UnknownOutcomeError):
            delivery.status, delivery.status_reason, delivery.last_error = Status.UNKNOWN, error.reason[:100], error.message
            summary.unknown += 1
        else:
            reason = error.reason if isinstance(error, PermanentChannelError) else f"gave_up:{error.reason}"
            delivery.status, delivery.failed_at = Status.FAILED, now
            delivery.status_reason, delivery.last_error = reason[:100], error.message
            events.append(
                (delivery.pk, "failed", delivery.channel, now, {"reason": reason, "error": error.message[:500]})
            )
            summary.failed += 1
        changed.append(delivery)
    with transaction.atomic():
        _write_results(changed, owner=owner)
        insert_rows(DeliveryEvent, fields=EVENT_FIELDS, rows=events, ignore_conflicts=False)
        retries = [d for d in changed if d.status == Status.DEFERRED]
        if retries:
            # One task for this batch's retries, due when the last of them is.
            _enqueue_batches([(d.pk, d.channel) for d in retries], run_after=max(d.next_attempt_at for d in retries))
        sent_ids = [d.pk for d in changed if d.status == Status.SENT]
        final = [(d.pk, d.status) for d in changed]
        transaction.on_commit(lambda: _announce(sent_ids=sent_ids, final=final))


EVENT_FIELDS = ("delivery", "kind", "source", "occurred_at", "data")
RESULT_FIELDS = ("status", "status_reason", "last_error", "provider_message_id", "sent_at", "failed_at", "next_attempt_at")


def _write_results(changed: Sequence[Delivery], *, owner: str) -> None:
    """One parameterised UPDATE per row, sent with ``executemany``.

    ``bulk_update`` builds a CASE expression per field per row, which costs more than sending
    the mail; ``executemany`` of a single prepared statement is cheap on SQLite and PostgreSQL.
    The WHERE clause repeats the lease check, so a row another worker took over is left alone.
    """
    if not changed:
        return
    fields = [Delivery._meta.get_field(name) for name in RESULT_FIELDS]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = (
        f"UPDATE {quote(Delivery._meta.db_table)} SET {assignments}, "
        f"{quote('lease_owner')} = '', {quote('lease_expires_at')} = NULL "
        f"WHERE {quote('id')} = %s AND {quote('lease_owner')} = %s AND {quote('status')} = %s"
    )
    params = [
        [f.get_db_prep_save(getattr(d, f.attname), connection) for f in fields] + [d.pk, owner, Status.SENDING]
        for d in changed
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _announce(*, sent_ids: list[int], final: list[tuple[int, str]]) -> None:
    if sent_ids:
        notification_sent.send(sender=Delivery, delivery_ids=sent_ids)
    for delivery_id, status in final:
        delivery_status_changed.send(sender=Delivery, delivery_id=delivery_id, status=status)
