"""Local channels delivered while they are planned: no claim, lease, send task or second write.

A channel whose "provider" is our own database (the inbox) has nothing to wait for and nothing
in flight, so the claim → lease → send → record cycle only costs time: about five writes per
recipient, and a queue hop before the message shows. An adapter that declares it (``local``
among its features, and a ``deliver_planned(messages)`` method) gets its due deliveries written
by planning instead, in the planner's transaction:

1. the ledger rows are inserted already ``sent`` with ``INSERT ... ON CONFLICT DO NOTHING
   RETURNING``, so only rows that are new here go on: planning twice delivers nothing twice,
   even when two planners race on PostgreSQL;
2. templated messages are rendered now (planning *is* send time here), once per template;
3. the adapter writes its rows (the inbox: one shared content row per message, one narrow
   notification row per recipient) and says which messages it refused;
4. refused or unrenderable deliveries become ``failed`` with the reason; the others get their
   ``sent`` receipt; ``notification_sent`` and ``delivery_status_changed`` go out after commit.

What planning decided (suppression, opt-outs, caps, digests) was decided just now, so nothing
needs re-checking; deliveries held for later (digests, a throttle, a paused campaign) are not
due and take the ordinary path, as does every channel that is not local.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection, transaction

from channels_adapters.base import OutboundMessage
from channels_adapters.errors import ChannelConfigurationError, ChannelError, PermanentChannelError
from channels_adapters.handler import channels

from ..models import Delivery, DeliveryEvent
from ..signals import delivery_status_changed, delivery_statuses_changed, notification_sent

Status = Delivery.Status

LEDGER_FIELDS = (
    "idempotency_key", "recipient", "channel", "address", "category", "content", "status", "status_reason",
    "run", "trigger", "provider_message_id", "attempts", "lease_owner", "last_error", "created_at", "sent_at",
)
RECEIPT_FIELDS = ("delivery", "kind", "source", "occurred_at", "data")


def delivers_while_planning(channel: str) -> bool:
    """Whether ``channel``'s adapter takes its due deliveries straight from planning."""
    try:
        adapter = channels[channel]
    except ChannelConfigurationError:
        return False  # not configured here: planning records it like any other delivery
    return adapter.features.local and callable(getattr(adapter, "deliver_planned", None))


def deliveries_deliver_planned(*, planned: Sequence, now: datetime, shared: dict | None = None) -> tuple[int, int, int]:
    """Write ``planned`` (``PlannedDelivery``, all due, all on local channels) as delivered.

    Returns ``(delivered, failed, already_known)``. Must run inside the planner's transaction.
    ``shared`` is handed to the adapters for the rest of that transaction (one per channel):
    what they stored for an earlier chunk, such as a message's text, they need not store again.
    """
    unique = list({p.idempotency_key: p for p in reversed(planned)}.values())[::-1]
    new = _insert_sent(unique, now=now)
    failures: dict[int, ChannelError] = {}
    contents = _render_templated(new, failures)
    by_channel: dict[str, list[OutboundMessage]] = {}
    for delivery_id, p in new:
        if delivery_id in failures:
            continue
        content = contents.get(delivery_id, p.content) or {}
        by_channel.setdefault(p.channel, []).append(OutboundMessage(
            delivery_id=delivery_id,
            address=p.address,
            subject=content.get("subject") or content.get("title", ""),
            text=content.get("text") or content.get("body", ""),
            url=content.get("url", ""),
            metadata={"recipient_id": p.recipient_id, "category_id": p.category_id},
            locale=content.get("locale", "en"),
        ))
    for channel, messages in by_channel.items():
        state = shared.setdefault(channel, {}) if shared is not None else None
        failures.update(channels[channel].deliver_planned(messages, shared=state))
    _record(new, failures, now=now)
    return len(new) - len(failures), len(failures), len(planned) - len(new)


def _insert_sent(planned: Sequence, *, now: datetime) -> list[tuple[int, object]]:
    """Insert ledger rows as ``sent``; return (id, planned) for the rows that did not exist yet."""
    meta = Delivery._meta
    fields = [meta.get_field(name) for name in LEDGER_FIELDS]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
    content_field = meta.get_field("content")
    prepared: dict[int, object] = {}  # one JSON encoding per distinct content object
    sent_at = meta.get_field("sent_at").get_db_prep_save(now, connection)
    by_key = {p.idempotency_key: p for p in planned}
    inserted: list[tuple[int, object]] = []
    if connection.vendor == "postgresql":
        rows = []
        for p in planned:
            if id(p.content) not in prepared:
                prepared[id(p.content)] = content_field.get_db_prep_save(p.content, connection)
            rows.append((p.idempotency_key, p.recipient_id, p.channel, p.address, p.category_id,
                         prepared[id(p.content)], Status.SENT, "", p.run_id, p.trigger_id, "", 1, "", "", sent_at, sent_at))
        returned = _insert_columns(Delivery, fields=LEDGER_FIELDS, rows=rows, ignore_conflicts=True,
                                   returning=("id", "idempotency_key"))
        inserted = sorted((delivery_id, by_key[key]) for delivery_id, key in returned)
        return inserted
    for start in range(0, len(planned), rows_per_statement(len(fields))):
        chunk = planned[start:start + rows_per_statement(len(fields))]
        params: list = []
        for p in chunk:
            if id(p.content) not in prepared:
                prepared[id(p.content)] = content_field.get_db_prep_save(p.content, connection)
            params += [
                p.idempotency_key, p.recipient_id, p.channel, p.address, p.category_id, prepared[id(p.content)],
                Status.SENT, "", p.run_id, p.trigger_id, "", 1, "", "", sent_at, sent_at,
            ]
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row_marks] * len(chunk))} "
            f"ON CONFLICT DO NOTHING RETURNING {quote('id')}, {quote('idempotency_key')}"
        )
        inserted += [(delivery_id, by_key[key]) for delivery_id, key in _execute(sql, params)]
    inserted.sort(key=lambda pair: pair[0])
    return inserted


def insert_values(model, *, fields: Sequence[str], rows: Sequence[Sequence], ignore_conflicts: bool = False) -> None:
    """INSERT rows whose values are already what the database driver takes (ints, strings,
    datetimes prepared with ``get_db_prep_save``), many rows per statement.

    ``rows.insert_rows`` prepares every value; at ten thousand rows of one message that is
    most of the cost, and here every value but the JSON and datetimes (prepared once by the
    caller) is plain already. Multi-row VALUES lists beat ``executemany`` of one row by about a
    third on SQLite.
    """
    if not rows:
        return
    if connection.vendor == "postgresql":
        _insert_columns(model, fields=fields, rows=rows, ignore_conflicts=ignore_conflicts)
        return
    meta = model._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
    step = rows_per_statement(len(fields))
    for start in range(0, len(rows), step):
        chunk = rows[start:start + step]
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([marks] * len(chunk))}{conflict}"
        _execute(sql, [value for row in chunk for value in row])


def _insert_columns(model, *, fields: Sequence[str], rows: Sequence[Sequence], ignore_conflicts: bool = False,
                    returning: Sequence[str] = ()) -> list[tuple]:
    """PostgreSQL: the rows through ``COPY`` (psycopg formats them in C), not as statement text.

    A multi-row ``VALUES`` statement of ten thousand placeholders costs more to build, quote and
    parse than the insert itself. ``COPY`` streams the rows; where the insert must skip rows that
    exist (``ON CONFLICT``) or say which it wrote (``RETURNING``), the rows are copied into a
    session-local temporary table first and moved with one ``INSERT ... SELECT``.
    """
    meta = model._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        if not ignore_conflicts and not returning:
            with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return []
        staging = quote(f"sb_staging_{meta.db_table}")
        raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS SELECT {columns} FROM {table} WITH NO DATA")
        raw.execute(f"TRUNCATE {staging}")
        with raw.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        tail = f" RETURNING {', '.join(quote(meta.get_field(name).column) for name in returning)}" if returning else ""
        raw.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging}{conflict}{tail}")
        return raw.fetchall() if returning else []


def _execute(sql: str, params: list) -> list[tuple]:
    """Run one of these multi-row statements and return its rows (RETURNING), if any.

    On SQLite the statement goes to the driver with its ``?`` marks written directly: Django's
    cursor rewrites ``%s`` with a regular expression on every call, which for a thousand rows of
    sixteen values costs more than SQLite takes to insert them. (So these statements do not show
    in Django's query log; they run in the same connection and transaction.)
    """
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.execute(sql.replace("%s", "?"), params).fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def rows_per_statement(columns: int, *, most: int = 1000) -> int:
    """How many rows one multi-row INSERT may carry within the database's bound-parameter limit."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        try:
            limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        except AttributeError:  # Python < 3.11
            limit = 999
    else:
        limit = 65_535  # PostgreSQL's protocol limit
    return max(1, min(most, limit // columns))


def _render_templated(new: Sequence[tuple[int, object]], failures: dict[int, ChannelError]) -> dict[int, dict]:
    """Render templated contents now, exactly as the send step does (``rechecks.render_templates``:
    each template compiled once, failures permanent with the reason), on unsaved stand-ins of
    the rows just inserted."""
    templated = [(pk, p) for pk, p in new if (p.content or {}).get("template_id")]
    if not templated:
        return {}
    from ..models import Category
    from .rechecks import render_templates

    categories = Category.objects.in_bulk({p.category_id for _pk, p in templated if p.category_id})
    stand_ins = [
        Delivery(pk=pk, recipient_id=p.recipient_id, channel=p.channel, address=p.address, content=p.content,
                 category=categories.get(p.category_id))
        for pk, p in templated
    ]
    rendered, unrenderable = render_templates(stand_ins)
    for delivery, error in unrenderable:
        failures[delivery.pk] = error
    return {delivery.pk: delivery.content for delivery in rendered}


def _record(new: Sequence[tuple[int, object]], failures: dict[int, ChannelError], *, now: datetime) -> None:
    """Receipts for what was delivered; refused deliveries move from ``sent`` to ``failed``."""
    at = DeliveryEvent._meta.get_field("occurred_at").get_db_prep_save(now, connection)
    data = DeliveryEvent._meta.get_field("data")
    nothing = data.get_db_prep_save({}, connection)
    receipts: list[tuple] = []
    failed: list[tuple] = []
    for delivery_id, p in new:
        error = failures.get(delivery_id)
        if error is None:
            receipts.append((delivery_id, "sent", p.channel, at, nothing))
            continue
        reason = error.reason if isinstance(error, PermanentChannelError) else f"gave_up:{error.reason}"
        failed.append((delivery_id, reason[:100], error.message))
        details = data.get_db_prep_save({"reason": reason, "error": error.message[:500]}, connection)
        receipts.append((delivery_id, "failed", p.channel, at, details))
    for delivery_id, reason, message in failed:
        Delivery.objects.filter(pk=delivery_id).update(
            status=Status.FAILED, sent_at=None, failed_at=now, status_reason=reason, last_error=message
        )
    insert_values(DeliveryEvent, fields=RECEIPT_FIELDS, rows=receipts)
    sent_ids = [delivery_id for delivery_id, _p in new if delivery_id not in failures]
    failed_ids = [delivery_id for delivery_id, _r, _m in failed]
    if sent_ids or failed_ids:
        transaction.on_commit(lambda: _announce(sent_ids=sent_ids, failed_ids=failed_ids))


def _announce(*, sent_ids: Iterable[int], failed_ids: Iterable[int]) -> None:
    sent_ids = list(sent_ids)
    if sent_ids:
        notification_sent.send(sender=Delivery, delivery_ids=sent_ids)
    for delivery_id in sent_ids:
        delivery_status_changed.send(sender=Delivery, delivery_id=delivery_id, status=Status.SENT)
    failed_ids = list(failed_ids)
    for delivery_id in failed_ids:
        delivery_status_changed.send(sender=Delivery, delivery_id=delivery_id, status=Status.FAILED)
    changes = [(pk, Status.SENT) for pk in sent_ids] + [(pk, Status.FAILED) for pk in failed_ids]
    if changes:
        delivery_statuses_changed.send(sender=Delivery, changes=changes)
