"""Recording events as webhook posts on the ledger: cheap on the hot path.

``webhook_events_record(events)`` writes one ``WebhookMessage`` (a delivery with ``channel =
"webhook"``) per (subscribed endpoint, event) in one ``bulk_create``, conflicts on the ledger's
unique idempotency key (``webhook:<endpoint>:<event key>``) ignored, so a duplicated event posts
once, and enqueues a drain per endpoint after commit. Which enabled endpoints want which event is a cached table (``routes``), so a batch whose events no endpoint
wants costs no query at all; saving, disabling or deleting an endpoint forgets the table (in the
shared cache with Redis; another process's locmem copy lasts up to ``ROUTES_SECONDS``).

The table only nominates: before writing, the recorder reads the nominated endpoints again and
keeps those that still exist, are enabled and want the event, and on PostgreSQL holds them with
``FOR KEY SHARE`` until its transaction ends (SQLite's single writer does the same), so a delete
waits for it (``services.webhook_endpoint_delete``). An endpoint a delete has locked is skipped
(``SKIP LOCKED``: only a delete takes that lock), so the ledger never waits for a delete either. A
stale table therefore never writes a row for a deleted endpoint: the webhook posts are written
inside the transaction of the deliveries they tell about, and a dangling foreign key there would
fail the commit of the deliveries' own outcomes. What a stale table can still do is miss a new endpoint or subscription
for up to ``ROUTES_SECONDS``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from ..models import WebhookEndpoint, WebhookMessage
from ..querysets import WEBHOOK_CHANNEL

ROUTES_KEY = "signalbox:webhook-routes:v1"
# With a per-process cache (locmem, the embedded default) another process's new endpoint or
# subscription is seen when the copy expires; with Redis every process sees it at once.
ROUTES_SECONDS = 5


@dataclass(frozen=True)
class Event:
    """One event: its type, a key unique to it (the same fact recorded twice has the same key),
    the key of the stream it is ordered in (one delivery, one run) and its ``data``."""

    type: str
    key: str
    ordering_key: str
    data: dict = field(default_factory=dict)


def routes() -> dict[str, list[int]]:
    """Event type -> ids of the enabled endpoints subscribed to it (cached; one query on a miss)."""
    table = cache.get(ROUTES_KEY)
    if table is None:
        table = {}
        for pk, events in WebhookEndpoint.objects.filter(enabled=True).values_list("pk", "events"):
            for event_type in events or ():
                table.setdefault(event_type, []).append(pk)
        cache.set(ROUTES_KEY, table, ROUTES_SECONDS)
    return table


def routes_forget() -> None:
    """Drop the cached table (after an endpoint was saved, enabled, disabled or deleted)."""
    cache.delete(ROUTES_KEY)


def wanted(event_type: str) -> bool:
    """Whether any enabled endpoint subscribes to ``event_type`` (no query while cached)."""
    return bool(routes().get(event_type))


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def message_key(endpoint_id: int, event_key: str) -> str:
    """The ledger's idempotency key of one event's post to one endpoint."""
    return f"webhook:{endpoint_id}:{event_key}"[:255]


def payload(event: Event, *, at=None) -> dict:
    """The JSON body: ``{"type", "timestamp", "data"}`` (the Standard Webhooks recommendation)."""
    return {"type": event.type, "timestamp": (at or timezone.now()).isoformat(), "data": event.data}


def _endpoints_held(ids: set[int], *, routed: bool) -> dict[int, set[str]]:
    """The endpoints among ``ids`` that still exist (and, when ``routed``, are enabled), with the
    events they subscribe to, held against deletion until this transaction ends."""
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        table = WebhookEndpoint._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT "id", "events" FROM "{table}" WHERE "id" = ANY(%s)'
                + (' AND "enabled"' if routed else "") + " FOR KEY SHARE SKIP LOCKED",
                [sorted(ids)],
            )
            found = [(pk, events if isinstance(events, list) else json.loads(events or "[]"))
                     for pk, events in cursor.fetchall()]
    else:
        endpoints = WebhookEndpoint.objects.filter(pk__in=ids)
        found = list((endpoints.filter(enabled=True) if routed else endpoints).values_list("pk", "events"))
    return {pk: set(events or ()) for pk, events in found}


def webhook_events_record(events: Iterable[Event], *, endpoint_ids: list[int] | None = None) -> int:
    """Plan a post of ``events`` to every enabled endpoint subscribed to them (or to
    ``endpoint_ids`` only); the number of rows offered (duplicates are dropped by the database)."""
    events = list(events)
    routed = endpoint_ids is None
    table = routes() if routed else {}
    nominated = set(endpoint_ids) if not routed else {pk for event in events for pk in table.get(event.type, ())}
    held = _endpoints_held(nominated, routed=routed)
    now = timezone.now()
    rows = []
    for event in events:
        targets = endpoint_ids if not routed else table.get(event.type, ())
        for endpoint_id in targets:
            if endpoint_id not in held or (routed and event.type not in held[endpoint_id]):
                continue
            rows.append(WebhookMessage(
                idempotency_key=message_key(endpoint_id, event.key), channel=WEBHOOK_CHANNEL,
                webhook_endpoint_id=endpoint_id, address=event.ordering_key[:320],
                provider_message_id=new_webhook_id(),
                content={"event_type": event.type, "payload": payload(event, at=now)},
                status=WebhookMessage.Status.PLANNED, next_attempt_at=now, created_at=now,
            ))
    if not rows:
        return 0
    WebhookMessage.objects.bulk_create(rows, ignore_conflicts=True)
    from .tasks import webhook_endpoint_drain_task

    for endpoint_id in sorted({row.webhook_endpoint_id for row in rows}):
        transaction.on_commit(lambda pk=endpoint_id: webhook_endpoint_drain_task.enqueue(endpoint_id=pk))
    return len(rows)
