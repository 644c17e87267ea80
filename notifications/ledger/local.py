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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from channels_adapters.base import OutboundMessage
from channels_adapters.errors import ChannelConfigurationError, ChannelError, PermanentChannelError
from channels_adapters.handler import channels

from ..models import Delivery, DeliveryEvent
from .recording import status_moves_written
from .rows import Each, column_values, insert_columns

Status = Delivery.Status


def delivers_while_planning(channel: str) -> bool:
    """Whether ``channel``'s adapter takes its due deliveries straight from planning."""
    try:
        adapter = channels[channel]
    except ChannelConfigurationError:
        return False  # not configured here: planning records it like any other delivery
    return adapter.features.local and callable(getattr(adapter, "deliver_planned", None))


def deliveries_deliver_planned(*, planned: Sequence, now: datetime, shared: dict | None = None,
                               compiled: dict | None = None) -> tuple[int, int, int]:
    """Write ``planned`` (``PlannedDelivery``, all due, all on local channels) as delivered.

    Returns ``(delivered, failed, already_known)``. Must run inside the planner's transaction.
    ``shared`` is handed to the adapters for the rest of that transaction (one per channel):
    what they stored for an earlier chunk, such as a message's text, they need not store again.
    ``compiled`` holds compiled templates (``rechecks.render_templates``) for as long as the
    caller keeps it: the rest of its plan, or a journey tick's chunks.
    """
    unique = list({p.idempotency_key: p for p in reversed(planned)}.values())[::-1]
    new = _insert_sent(unique, now=now)
    failures: dict[int, ChannelError] = {}
    contents = _render_templated(new, failures, compiled=compiled)
    by_channel: dict[str, list[OutboundMessage]] = {}
    texts: dict[int, tuple] = {}  # a fan-out's deliveries share one content: read it once
    for delivery_id, p in new:
        if delivery_id in failures:
            continue
        content = contents.get(delivery_id, p.content) or {}
        text = texts.get(id(content))
        if text is None:
            text = texts[id(content)] = (
                content.get("subject") or content.get("title", ""), content.get("text") or content.get("body", ""),
                content.get("url", ""), content.get("locale", "en"), content,  # kept alive: its id stays its own
            )
        by_channel.setdefault(p.channel, []).append(OutboundMessage(
            delivery_id=delivery_id,
            address=p.address,
            subject=text[0],
            text=text[1],
            url=text[2],
            metadata={"recipient_id": p.recipient_id, "category_id": p.category_id},
            locale=text[3],
        ))
    for channel, messages in by_channel.items():
        state = shared.setdefault(channel, {}) if shared is not None else None
        failures.update(channels[channel].deliver_planned(messages, shared=state))
    _record(new, failures, now=now)
    return len(new) - len(failures), len(failures), len(planned) - len(new)


def _insert_sent(planned: Sequence, *, now: datetime) -> list[tuple[int, object]]:
    """Insert ledger rows as ``sent``; return (id, planned) for the rows that did not exist yet,
    in id order. What the rows share (channel, content, category, times...) is bound once."""
    by_key = {p.idempotency_key: p for p in planned}
    returned = insert_columns(
        Delivery,
        columns={
            "idempotency_key": Each(p.idempotency_key for p in planned),
            "recipient": column_values([p.recipient_id for p in planned]),
            "channel": column_values([p.channel for p in planned]),
            "address": column_values([p.address for p in planned]),
            "category": column_values([p.category_id for p in planned]),
            "content": column_values([p.content for p in planned], identical=True),
            "status": Status.SENT, "status_reason": "",
            "run": column_values([p.run_id for p in planned]),
            "trigger": column_values([p.trigger_id for p in planned]),
            "provider_message_id": "", "attempts": 1, "lease_owner": "", "last_error": "",
            "created_at": now, "sent_at": now,
        },
        ignore_conflicts=True,
        returning=("id", "idempotency_key"),
    )
    return sorted((delivery_id, by_key[key]) for delivery_id, key in returned)


@dataclass(slots=True)
class _Unsaved:
    """What ``render_templates`` reads of a delivery, for rows just inserted (a model instance
    each costs more than rendering its message)."""

    pk: int
    recipient_id: int | None
    channel: str
    address: str
    content: dict
    category: object


def _render_templated(new: Sequence[tuple[int, object]], failures: dict[int, ChannelError], *,
                      compiled: dict | None = None) -> dict[int, dict]:
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
        _Unsaved(pk, p.recipient_id, p.channel, p.address, p.content, categories.get(p.category_id))
        for pk, p in templated
    ]
    rendered, unrenderable = render_templates(stand_ins, compiled=compiled)
    for delivery, error in unrenderable:
        failures[delivery.pk] = error
    return {delivery.pk: delivery.content for delivery in rendered}


def _record(new: Sequence[tuple[int, object]], failures: dict[int, ChannelError], *, now: datetime) -> None:
    """Receipts for what was delivered; refused deliveries move from ``sent`` to ``failed``."""
    failed: list[tuple] = []
    details: dict[int, dict] = {}
    for delivery_id, _p in new:
        error = failures.get(delivery_id)
        if error is not None:
            reason = error.reason if isinstance(error, PermanentChannelError) else f"gave_up:{error.reason}"
            failed.append((delivery_id, reason[:100], error.message))
            details[delivery_id] = {"reason": reason, "error": error.message[:500]}
    for delivery_id, reason, message in failed:
        Delivery.objects.filter(pk=delivery_id).update(
            status=Status.FAILED, sent_at=None, failed_at=now, status_reason=reason, last_error=message
        )
    if new:
        nothing: dict = {}  # one object: prepared once, bound once when every receipt is "sent"
        insert_columns(DeliveryEvent, columns={
            "delivery": Each(delivery_id for delivery_id, _p in new),
            "kind": column_values(["failed" if delivery_id in details else "sent" for delivery_id, _p in new]),
            "source": column_values([p.channel for _id, p in new]),
            "occurred_at": now,
            "data": column_values([details.get(delivery_id, nothing) for delivery_id, _p in new], identical=True),
        })
    sent_ids = [delivery_id for delivery_id, _p in new if delivery_id not in failures]
    failed_ids = [delivery_id for delivery_id, _r, _m in failed]
    status_moves_written([(pk, Status.SENT) for pk in sent_ids] + [(pk, Status.FAILED) for pk in failed_ids],
                         sent_ids=sent_ids)
