"""The public Python API for integrating code: ``notify()``, ``broadcast()`` and ``enter_journey()``.

Transactional and system messages from code go through the same ledger pipeline as campaigns,
with the same guarantees: suppression and opt-outs respected (transactional categories bypass
opt-outs, never suppression), every skipped recipient recorded with a reason, sends enqueued
after the caller's transaction commits, and an ``idempotency_key`` that makes a repeated call
send nothing new.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from django.db import transaction
from django.utils import timezone

# Re-exported: the decision is part of what integrators may reason about (and test against).
from .ledger.decisions import (  # noqa: F401
    DIGESTIBLE,
    INTERRUPTING,
    Decision,
    RecipientFacts,
    channel_decision,
    hold_reason,
    next_digest_at,
    quiet_hours_end,
    recipient_facts,
)
from .journeys import enter as enter_journey  # noqa: F401 - journeys.enter(journey_key, user, context, entry_key)
from .models import Category, Channel, MessageTemplate
from .ledger import PlannedDelivery, PlanResult, deliveries_plan
from .recipients.selectors import recipients_for_decisions

DEFAULT_CHANNELS = ("inapp",)


def notify(
    recipients: Iterable,
    *,
    template: str | MessageTemplate | None = None,
    context: dict | None = None,
    title: str = "",
    body: str = "",
    url: str = "",
    html: str = "",
    channels: Sequence[str] | None = None,
    category: str | Category | None = None,
    idempotency_key: str | None = None,
) -> PlanResult:
    """Send a message to users (instances or ids) over ``channels`` (default: the in-app inbox).

    The message is either a ``template`` (a MessageTemplate or its key, rendered per recipient in
    the sandbox with ``context`` — plain JSON data — besides the recipient's own fields) or a
    literal ``title``/``body``/``url``/``html``.

    ``category`` is a Category key or instance (default: the template's category, else
    ``"system"``); an unknown key is a ``Category.DoesNotExist``. With ``idempotency_key``,
    calling again with the same key (say, a retried webhook handler) plans nothing new: the
    ledger key is ``notify:<key>:<user id>:<channel>``.
    """
    channels = tuple(channels or DEFAULT_CHANNELS)
    unknown = set(channels) - set(Channel.values)
    if unknown:
        raise ValueError(f"Unknown channel(s): {', '.join(sorted(unknown))}.")
    if template is not None and not isinstance(template, MessageTemplate):
        template = MessageTemplate.objects.select_related("category").get(key=template)
    if template is None and not title.strip():
        raise ValueError("notify() needs a template or a title.")
    if category is None:
        category = template.category if template is not None and template.category_id else "system"
    if not isinstance(category, Category):
        category = Category.objects.get(key=category)
    ids = [getattr(r, "pk", r) for r in recipients]
    key = f"notify:{idempotency_key or uuid.uuid4().hex}"
    if template is not None:
        from .campaigns.planning import template_deliveries_plan

        with transaction.atomic():
            return template_deliveries_plan(
                template_id=template.pk, user_ids=ids, channels=channels, category=category,
                key_prefix=key, context=dict(context or {}),
            )

    content = {"subject": title, "text": body, "html": html, "url": url}
    now = timezone.now()

    def planned():
        # A thousand recipients at a time, read and decided, as planning writes them: what is
        # alive at once stays small, instead of one object graph per recipient of the audience.
        for start in range(0, len(ids), 1000):
            yield from planned_for(recipients_for_decisions(user_ids=ids[start:start + 1000], channels=channels))

    def planned_for(users):
        for facts in recipient_facts(users, category=category, channels=channels):
            for channel in channels:
                decision = channel_decision(facts=facts, channel=channel, category=category, now=now)
                yield PlannedDelivery(
                    idempotency_key=f"{key}:{facts.user_id}:{channel}",
                    channel=channel,
                    address=decision.address,
                    recipient_id=facts.user_id,
                    category_id=category.pk,
                    content=content,
                    status="suppressed" if decision.reason else "planned",
                    status_reason=decision.reason or hold_reason(decision),
                    not_before=decision.not_before,
                )

    with transaction.atomic():
        return deliveries_plan(planned=planned())


def broadcast(*, title: str, body: str = "", url: str = "", category: str | Category | None = None, actor=None):
    """Announce ``title`` in every inbox, or, with ``category`` (a key or instance), in the inboxes
    of those who have not opted out of that category: one row however many people see it.

    Each user sees the broadcasts made since they joined; their read marks are kept only once
    they read one. The inbox page, the unread badge and the live stream count it like any
    notification. ``actor`` is the user sending it (checked and audited); ``None`` is code.
    """
    from .inbox.services import broadcast_send

    if category is not None and not isinstance(category, Category):
        category = Category.objects.get(key=category)
    return broadcast_send(title=title, body=body, url=url, category=category, actor=actor)
