"""The public Python API for integrating code: ``notify()``.

Transactional and system messages from code go through the same ledger pipeline as campaigns,
with the same guarantees: suppression and opt-outs respected (transactional categories bypass
opt-outs, never suppression), every skipped recipient recorded with a reason, sends enqueued
after the caller's transaction commits, and an ``idempotency_key`` that makes a repeated call
send nothing new.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Category, Channel, Preference, Suppression
from .pipeline import PlannedDelivery, PlanResult, deliveries_plan
from .querysets import normalise_address

DEFAULT_CHANNELS = ("inapp",)


@dataclass(frozen=True)
class RecipientFacts:
    """What the channel decision needs about one recipient, gathered in bulk beforehand."""

    user_id: int
    addresses: dict[str, str]
    opted_out: frozenset[str]
    suppressed: dict[str, str]


def channel_decision(*, facts: RecipientFacts, channel: str, category: Category) -> tuple[str, str]:
    """(address, "") to send, or ("", reason) to record as suppressed. No database access."""
    address = facts.addresses.get(channel, "")
    if not address:
        return "", "suppressed:no_address"
    if channel in facts.suppressed:
        return "", f"suppressed:{facts.suppressed[channel]}"
    if category.user_can_opt_out and category.kind != Category.Kind.TRANSACTIONAL and channel in facts.opted_out:
        return "", "suppressed:opted_out"
    return address, ""


def _recipient_facts(users: Sequence, *, category: Category, channels: Sequence[str]) -> list[RecipientFacts]:
    user_ids = [u.pk for u in users]
    opted_out: dict[int, set[str]] = {}
    for user_id, channel in Preference.objects.filter(
        user_id__in=user_ids, category=category, enabled=False
    ).values_list("user_id", "channel"):
        opted_out.setdefault(user_id, set()).add(channel)
    if not category.default_enabled:
        enabled = set(
            Preference.objects.filter(user_id__in=user_ids, category=category, enabled=True).values_list(
                "user_id", "channel"
            )
        )
        for user_id in user_ids:
            opted_out.setdefault(user_id, set()).update(c for c in channels if (user_id, c) not in enabled)
    addresses = {}
    for user in users:
        profile = getattr(user, "recipient_profile", None)
        addresses[user.pk] = {
            Channel.EMAIL: normalise_address("email", user.email or ""),
            Channel.SMS: getattr(profile, "phone", "") or "",
            Channel.INAPP: str(user.pk),
        }
    wanted = {(c, a) for per_user in addresses.values() for c, a in per_user.items() if a and c in channels}
    suppressions = dict(
        ((channel, address), reason)
        for channel, address, reason in Suppression.objects.filter(
            channel__in={c for c, _ in wanted}, address__in={a for _, a in wanted}
        ).values_list("channel", "address", "reason")
    )
    return [
        RecipientFacts(
            user_id=user.pk,
            addresses=addresses[user.pk],
            opted_out=frozenset(opted_out.get(user.pk, ())),
            suppressed={
                c: suppressions[(c, a)] for c, a in addresses[user.pk].items() if (c, a) in suppressions
            },
        )
        for user in users
    ]


def notify(
    recipients: Iterable,
    *,
    title: str,
    body: str = "",
    url: str = "",
    html: str = "",
    channels: Sequence[str] | None = None,
    category: str | Category = "system",
    idempotency_key: str | None = None,
) -> PlanResult:
    """Send a message to users (instances or ids) over ``channels`` (default: the in-app inbox).

    ``category`` is a Category key or instance; an unknown key is a ``Category.DoesNotExist``.
    With ``idempotency_key``, calling again with the same key (say, a retried webhook handler)
    plans nothing new: the ledger key is ``notify:<key>:<user id>:<channel>``.
    """
    channels = tuple(channels or DEFAULT_CHANNELS)
    unknown = set(channels) - set(Channel.values)
    if unknown:
        raise ValueError(f"Unknown channel(s): {', '.join(sorted(unknown))}.")
    if not title.strip():
        raise ValueError("notify() needs a title.")
    if not isinstance(category, Category):
        category = Category.objects.get(key=category)
    ids = [getattr(r, "pk", r) for r in recipients]
    users = list(get_user_model().objects.filter(pk__in=ids).select_related("recipient_profile"))
    key = idempotency_key or uuid.uuid4().hex
    content = {"subject": title, "text": body, "html": html, "url": url}

    def planned():
        for facts in _recipient_facts(users, category=category, channels=channels):
            for channel in channels:
                address, reason = channel_decision(facts=facts, channel=channel, category=category)
                yield PlannedDelivery(
                    idempotency_key=f"notify:{key}:{facts.user_id}:{channel}",
                    channel=channel,
                    address=address,
                    recipient_id=facts.user_id,
                    category_id=category.pk,
                    content=content,
                    status="suppressed" if reason else "planned",
                    status_reason=reason,
                )

    with transaction.atomic():
        return deliveries_plan(planned=planned())
