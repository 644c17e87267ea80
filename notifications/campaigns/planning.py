"""Planning templated messages into the ledger, for campaign runs, triggers and ``notify()``.

Recipients are streamed as chunks of user ids; each chunk costs a fixed number of queries
(users with profiles, the decision facts, the ledger insert). The message is stored as a
reference to its template plus plain context and rendered at send time, once per batch
(``notifications.ledger``), so a planned-but-unsent delivery always goes out with the
template's current wording.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from ..ledger.decisions import SCHEDULED_REASON, RecipientFacts, channel_decision, hold_reason, recipient_facts
from ..models import Category, Delivery
from ..ledger import PlannedDelivery, PlanResult, deliveries_plan

SendAt = Callable[[RecipientFacts], datetime | None]


def _id_chunks(user_ids: Iterable, size: int) -> Iterator[list[int]]:
    iterator = iter(user_ids)
    while True:
        first = next(iterator, None)
        if first is None:
            return
        if isinstance(first, list):  # already chunked (``audience_user_ids``)
            yield first
            for chunk in iterator:
                yield chunk
            return
        yield [first, *itertools.islice(iterator, size - 1)]


def template_deliveries_plan(
    *,
    template_id: int,
    user_ids: Iterable[int] | Iterable[list[int]],
    channels: Sequence[str],
    category: Category,
    key_prefix: str,
    context: dict,
    run_id: int | None = None,
    trigger_id: int | None = None,
    fallback: bool = False,
    now: datetime | None = None,
    daily_cap: int | None = None,
    send_at: SendAt | None = None,
    max_lateness: timedelta | None = None,
    throttle_per_minute: int | None = None,
    throttle_offset: int = 0,
    paused: bool = False,
    chunk_size: int = 1000,
    content_extra: dict | None = None,
) -> PlanResult:
    """Plan one delivery per (recipient, channel) — or, with ``fallback``, on the first channel
    in ``channels`` that reaches the recipient — keyed ``<key_prefix>:<user id>:<channel>``.

    ``send_at`` gives a recipient's own send time (a local-time campaign); a time already more
    than ``max_lateness`` in the past is recorded as ``suppressed:too_late``. With
    ``throttle_per_minute`` the n-th recipient is held until ``now + n // throttle`` minutes.
    ``throttle_offset`` counts recipients planned by earlier calls of the same run. With
    ``paused`` the deliveries are written ``paused`` and not enqueued (``campaign_resume`` will).
    Every recipient who gets nothing is recorded with the reason. Sends are enqueued on commit.
    ``content_extra`` is stored beside the template reference: an A/B test's ``variant`` and
    ``ab_group`` (read by results) and a subject-only variant's ``subject`` (read when rendering).
    """
    now = now or timezone.now()
    content = {"template_id": template_id, "context": context, **(content_extra or {})}
    waiting = Delivery.Status.PAUSED if paused else Delivery.Status.PLANNED
    users = get_user_model().objects.select_related("recipient_profile")
    counter = itertools.count(throttle_offset)

    def planned() -> Iterator[PlannedDelivery]:
        for ids in _id_chunks(user_ids, chunk_size):
            chunk = list(users.filter(pk__in=ids, is_active=True).order_by("pk"))
            for facts in recipient_facts(chunk, category=category, channels=channels, daily_cap=daily_cap):
                yield from _plan_recipient(facts)

    def _plan_recipient(facts: RecipientFacts) -> Iterator[PlannedDelivery]:
        own_time = send_at(facts) if send_at else None
        at = max(own_time, now) if own_time else now
        late = own_time is not None and max_lateness is not None and now - own_time > max_lateness
        if throttle_per_minute:
            at = at + timedelta(minutes=next(counter) // throttle_per_minute)
        decisions = [(channel, channel_decision(facts=facts, channel=channel, category=category, now=at))
                     for channel in channels]
        if fallback:
            reachable = [(c, d) for c, d in decisions if not d.reason]
            decisions = reachable[:1] or decisions[:1]
        for channel, decision in decisions:
            reason = "suppressed:too_late" if late else decision.reason
            not_before = decision.not_before or (at if at > now else None)
            yield PlannedDelivery(
                idempotency_key=f"{key_prefix}:{facts.user_id}:{channel}",
                channel=channel,
                address=decision.address,
                recipient_id=facts.user_id,
                category_id=category.pk,
                content=content,
                status=Delivery.Status.SUPPRESSED if reason else waiting,
                status_reason=reason or hold_reason(decision) or (SCHEDULED_REASON if not_before else ""),
                not_before=not_before,
                run_id=run_id,
                trigger_id=trigger_id,
            )

    return deliveries_plan(planned=planned(), chunk_size=chunk_size)
