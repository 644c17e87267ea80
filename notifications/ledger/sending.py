"""Send: claim a batch under a lease, re-check, hand it to the channel adapter, record results.

What the channel can do is asked of its adapter (``channels.features(alias)``), never read
from its name. Outcomes are written as they come back (``recording.ResultRecorder``); before a
message leaves, it is marked in flight, so a crash leaves at most the messages on the wire to
the category's resend policy (``recovery.deliveries_sweep_expired_leases``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.html import escape
from django.utils.translation import ngettext

from channels_adapters.base import OutboundMessage, SendResult
from channels_adapters.handler import channels
from config.logs import log_context

from .. import conf
from ..models import Delivery
from ..signals import deliveries_batch_recorded
from . import outbound, ratelimit, rechecks
from .planning import _chunks, worker_id
from .recording import DIGEST_PREFIX, ResultRecorder, SendSummary, announce, deliveries_record_results

Status = Delivery.Status
logger = logging.getLogger(__name__)


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
        .annotate(log_campaign_id=F("run__campaign_id"))  # for the log lines' campaign_id (config.logs)
        .order_by("id")
    )


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
    runs = {(d.run_id, d.log_campaign_id) for d in claimed}
    run_id, campaign_id = next(iter(runs)) if len(runs) == 1 else (None, None)
    # Every line logged while this batch is sent names its run and campaign when it has one.
    with log_context(run_id=run_id, campaign_id=campaign_id):
        summary = _send_claimed(claimed, owner=owner, now=now)
        if claimed:
            logger.info(
                "Sent a batch of %d: %d sent, %d retrying, %d failed, %d unknown, %d suppressed",
                summary.claimed, summary.sent, summary.deferred, summary.failed, summary.unknown, summary.suppressed,
            )
    return summary


def _send_claimed(claimed: list[Delivery], *, owner: str, now: datetime) -> SendSummary:
    """Re-check, render, send and record what ``deliveries_send`` claimed."""
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
            recorder = ResultRecorder(
                deliveries=[d for unit in chunk_units for d in unit],
                members={unit[0].pk: [d.pk for d in unit] for unit in chunk_units},
                owner=owner, summary=summary,
            )
            messages = [outbound_message(unit[0]) if len(unit) == 1 else digest_message(unit) for unit in chunk_units]
            if adapter.features.local:
                # Local channels (the inbox, the Outbox) write to our own database: the rows and
                # the ledger update are one transaction, so they happen exactly once together.
                with transaction.atomic():
                    adapter.send_batch(messages, on_result=recorder.on_result)
                    recorder.flush()
                continue
            try:
                adapter.send_batch(messages, on_result=recorder.on_result, on_handoff=recorder.on_handoff)
            finally:
                # What came back is written even when the batch stopped on an unexpected error;
                # what did not stays in flight for the sweeper.
                recorder.flush()
    if claimed:
        # Campaigns finish their runs on this (``campaigns.receivers``); the ledger only announces.
        delivery_ids = [d.pk for d in claimed]
        run_ids = sorted({d.run_id for d in claimed if d.run_id})
        transaction.on_commit(
            lambda: announce(deliveries_batch_recorded, delivery_ids=delivery_ids, run_ids=run_ids)
        )
    return summary


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
    with translation.override(content.get("locale") or translation.get_language()):
        name = first.category.display_name() if first.category else ""  # 新闻简报 for a Chinese reader
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


def outbound_message(delivery: Delivery, *, content: dict | None = None) -> OutboundMessage:
    """The channel-neutral message for a claimed delivery, as the registered decorators leave it
    (``outbound``: receipts add click links, an open pixel and the one-click unsubscribe URL
    where the channel has them). ``content`` replaces the delivery's own (a digest's combined
    content).
    """
    content = (delivery.content or {}) if content is None else content
    kind = delivery.category.kind if delivery.category else ""
    html = content.get("html", "")
    metadata = {"recipient_id": delivery.recipient_id, "category_id": delivery.category_id, "category_kind": kind,
                **content.get("metadata", {})}
    html, metadata = outbound.decorate(delivery, html=html, metadata=metadata)
    return OutboundMessage(
        delivery_id=delivery.pk,
        address=delivery.address,
        subject=content.get("subject") or content.get("title", ""),
        text=content.get("text") or content.get("body", ""),
        html=html,
        url=content.get("url", ""),
        metadata=metadata,
        locale=content.get("locale", "en"),
        idempotency_key=delivery_message_key(delivery),
    )


def delivery_message_key(delivery: Delivery) -> str:
    """The identity every attempt of ``delivery`` carries to the provider (email's Message-ID
    left-hand side): the same on a re-send, unguessable from outside, unique per delivery."""
    digest = salted_hmac("signalbox.delivery.message-key", delivery.idempotency_key).hexdigest()[:20]
    return f"sb.{delivery.pk}.{digest}"
