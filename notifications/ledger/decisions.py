"""Which recipients get a message, on which channel, and when: decided in bulk, without surprises.

``recipient_facts`` gathers what the decision needs about many recipients in a fixed number of
queries; ``channel_decision`` is a pure function of those facts (tested without a database).
Used by ``notify()`` and by campaign and trigger planning alike.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from channels_adapters.features import STANDARD_FEATURES
from channels_adapters.handler import channels as channel_adapters

from ..models import Category, Delivery, Preference, Suppression
from ..querysets import normalise_address

# Which channels interrupt someone (quiet hours hold them back; the inbox waits silently
# anyway) and which may be folded into a digest is each adapter's ``features``; these sets
# describe the standard channels for integrators (re-exported by ``notifications.api``).
INTERRUPTING = frozenset(alias for alias, features in STANDARD_FEATURES.items() if features.interrupts)


@dataclass(frozen=True)
class RecipientFacts:
    """What the channel decision needs about one recipient, gathered in bulk beforehand."""

    user_id: int
    addresses: dict[str, str]
    opted_out: frozenset[str]
    suppressed: dict[str, str]
    timezone: str = "UTC"
    quiet_hours: tuple[time, time] | None = None
    daily_cap: int | None = None
    marketing_sent_today: dict[str, int] | None = None
    digest: dict[str, str] | None = None  # channel -> "hourly"/"daily" for this category


@dataclass(frozen=True)
class Decision:
    address: str = ""
    reason: str = ""  # non-empty: record as suppressed with this reason
    not_before: datetime | None = None  # quiet hours or digest: hold until then
    digest: str = ""  # "hourly"/"daily" when held for the recipient's digest


# Why a planned delivery waits (``Delivery.status_reason``), as ``ledger.waiting`` reads it back.
QUIET_HOURS_REASON = "deferred:quiet_hours"
SCHEDULED_REASON = "deferred:scheduled"

DIGESTIBLE = frozenset(alias for alias, features in STANDARD_FEATURES.items() if features.digestible)
DAILY_DIGEST_AT = time(8, 0)


def quiet_hours_end(*, now: datetime, tz: str, start: time, end: time) -> datetime | None:
    """When the recipient's quiet hours end, if ``now`` falls inside them; else None.

    Windows may wrap midnight (22:00-07:00). Computed in the recipient's zone, so the end is
    07:00 *their* time across DST changes.
    """
    zone = zoneinfo.ZoneInfo(tz)
    local = now.astimezone(zone)
    clock = local.time()
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside or start == end:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(zoneinfo.ZoneInfo("UTC"))


def next_digest_at(*, now: datetime, tz: str, digest: str) -> datetime:
    """When the recipient's next digest goes out, strictly after ``now``, as a UTC datetime.

    ``hourly``: the next top of the hour in the recipient's zone (zones with a 30/45-minute
    offset get it on their own hour). ``daily``: the next 08:00 local time, which stays 08:00
    across DST changes.
    """
    zone = zoneinfo.ZoneInfo(tz)
    utc = zoneinfo.ZoneInfo("UTC")
    local = now.astimezone(zone)
    if digest == "hourly":
        # Step in UTC so a repeated or skipped wall-clock hour on a DST day cannot trip us.
        top = local.replace(minute=0, second=0, microsecond=0)
        nxt = top.astimezone(utc) + timedelta(hours=1)
        # The hour boundary in local time, for offsets that are not whole hours.
        while nxt.astimezone(zone).minute or nxt.astimezone(zone).second:
            nxt = nxt.astimezone(zone).replace(minute=0, second=0, microsecond=0).astimezone(utc) + timedelta(hours=1)
        return nxt
    if digest == "daily":
        day = local.date() if local.time() < DAILY_DIGEST_AT else local.date() + timedelta(days=1)
        return datetime.combine(day, DAILY_DIGEST_AT, tzinfo=zone).astimezone(utc)
    raise ValueError(f"Unknown digest: {digest!r}.")


def channel_decision(*, facts: RecipientFacts, channel: str, category: Category, now: datetime) -> Decision:
    """Whether and when to send ``category`` to this recipient on ``channel``. No database access.

    Transactional messages ignore opt-outs, frequency caps and quiet hours, never suppression.
    """
    address = facts.addresses.get(channel, "")
    if not address:
        return Decision(reason="suppressed:no_address")
    if channel in facts.suppressed:
        return Decision(reason=f"suppressed:{facts.suppressed[channel]}")
    if category.kind == Category.Kind.TRANSACTIONAL:
        return Decision(address=address)
    if category.user_can_opt_out and channel in facts.opted_out:
        return Decision(reason="suppressed:opted_out")
    if (
        category.kind == Category.Kind.MARKETING
        and facts.daily_cap is not None
        and (facts.marketing_sent_today or {}).get(channel, 0) >= facts.daily_cap
    ):
        return Decision(reason="suppressed:frequency_cap")
    features = channel_adapters.features(channel)
    digest = (facts.digest or {}).get(channel, "") if features.digestible else ""
    when = next_digest_at(now=now, tz=facts.timezone, digest=digest) if digest else None
    if facts.quiet_hours and features.interrupts:
        # Quiet hours are checked at the moment the message would go out; if they end later, they win.
        until = quiet_hours_end(
            now=when or now, tz=facts.timezone, start=facts.quiet_hours[0], end=facts.quiet_hours[1]
        )
        if until:
            return Decision(address=address, not_before=until, digest=digest)
    return Decision(address=address, not_before=when, digest=digest)


def recipient_facts(
    users: Sequence, *, category: Category, channels: Sequence[str], daily_cap: int | None = None
) -> list[RecipientFacts]:
    """Facts for ``users`` (with ``recipient_profile`` selected) in a fixed number of queries.

    ``daily_cap`` is a sender's own frequency cap (a campaign's); the stricter of it and the
    recipient's own cap applies.
    """
    user_ids = [u.pk for u in users]
    opted_out: dict[int, set[str]] = {}
    digests: dict[int, dict[str, str]] = {}
    # One query for opt-outs and digest choices.
    for user_id, channel, enabled, digest in (
        Preference.objects.filter(user_id__in_list=set(user_ids), category=category)
        .filter(Q(enabled=False) | ~Q(digest=Preference.Digest.IMMEDIATE))
        .values_list("user_id", "channel", "enabled", "digest")
    ):
        if not enabled:
            opted_out.setdefault(user_id, set()).add(channel)
        elif digest != Preference.Digest.IMMEDIATE:
            digests.setdefault(user_id, {})[channel] = digest
    if not category.default_enabled:
        enabled = set(
            Preference.objects.filter(user_id__in_list=set(user_ids), category=category, enabled=True).values_list(
                "user_id", "channel"
            )
        )
        for user_id in user_ids:
            opted_out.setdefault(user_id, set()).update(c for c in channels if (user_id, c) not in enabled)
    sources = {channel: channel_adapters.features(channel).address_source for channel in channels}
    push_endpoints: dict[int, str] = {}
    if "push_subscription" in sources.values():
        from channels_adapters.models import WebPushSubscription

        # The most recently subscribed browser of each recipient.
        for user_id, endpoint in WebPushSubscription.objects.filter(user_id__in=user_ids).order_by(
            "created_at", "id"
        ).values_list("user_id", "endpoint"):
            push_endpoints[user_id] = endpoint

    push_devices: dict[int, str] = {}
    if "push_device" in sources.values():
        from channels_adapters.models import PushDevice

        # The most recently registered app installation of each recipient.
        for user_id, token in PushDevice.objects.filter(user_id__in=user_ids).order_by(
            "created_at", "id"
        ).values_list("user_id", "token"):
            push_devices[user_id] = token

    def chat_id(profile, service: str) -> str:
        # Per-service ids kept in the profile's chat ids: "apprise" (a personal chat target, an
        # Apprise URL) and "wechat" (the openid for the Official Account).
        chat_ids = getattr(profile, "chat_ids", None) or {}
        value = chat_ids.get(service, "") if isinstance(chat_ids, dict) else ""
        return value if isinstance(value, str) else ""

    def address_of(channel: str):
        """How to read one recipient's address on ``channel``: from where its adapter keeps it."""
        readers = {
            "user_email": lambda user, profile: normalise_address(channel, user.email or ""),
            "profile_phone": lambda user, profile: normalise_address(channel, getattr(profile, "phone", "") or ""),
            "user_id": lambda user, profile: str(user.pk),
            "push_subscription": lambda user, profile: push_endpoints.get(user.pk, ""),
            "profile_chat": lambda user, profile: chat_id(profile, "apprise"),
            "profile_wechat": lambda user, profile: chat_id(profile, "wechat"),
            "push_device": lambda user, profile: push_devices.get(user.pk, ""),
        }
        return readers.get(sources[channel], lambda user, profile: "")

    # Only the channels asked about: a fan-out to 10,000 inboxes normalises no email address.
    wanted_addresses = [(channel, address_of(channel)) for channel in dict.fromkeys(channels)]
    addresses = {}
    for user in users:
        profile = getattr(user, "recipient_profile", None)
        addresses[user.pk] = {channel: of(user, profile) for channel, of in wanted_addresses}
    sent_today: dict[int, dict[str, int]] = {}
    if category.kind == Category.Kind.MARKETING:
        capped = [
            u.pk for u in users
            if daily_cap or getattr(getattr(u, "recipient_profile", None), "frequency_cap_per_day", None)
        ]
        counts = (
            Delivery.objects.filter(
                recipient_id__in=capped,
                created_at__gte=timezone.now() - timedelta(days=1),
                category__kind=Category.Kind.MARKETING,
            )
            .exclude(status="suppressed")
            .values_list("recipient_id", "channel")
            .annotate(n=Count("id"))
        )
        for user_id, channel, n in counts:
            sent_today.setdefault(user_id, {})[channel] = n
    wanted = {(c, a) for per_user in addresses.values() for c, a in per_user.items() if a and c in channels}
    # Plain rows and erased people's hashed ones alike: an erased address stays suppressed.
    suppressions = Suppression.objects.reasons(wanted)
    # Built for thousands of recipients a chunk: what most of them share (no profile, no opt-out,
    # nothing suppressed) is made once, not per recipient.
    nothing: frozenset[str] = frozenset()
    no_profile = _profile_facts(None, daily_cap=daily_cap)
    facts = []
    for user in users:
        pk = user.pk
        own = addresses[pk]
        profile = getattr(user, "recipient_profile", None)
        facts.append(RecipientFacts(
            user_id=pk,
            addresses=own,
            opted_out=frozenset(opted_out[pk]) if pk in opted_out else nothing,
            suppressed=(
                {c: suppressions[(c, a)] for c, a in own.items() if (c, a) in suppressions} if suppressions else {}
            ),
            **(no_profile if profile is None else _profile_facts(profile, daily_cap=daily_cap)),
            marketing_sent_today=sent_today.get(pk, {}),
            digest=digests.get(pk, {}),
        ))
    return facts


def _profile_facts(profile, *, daily_cap: int | None = None) -> dict:
    if profile is None:
        return {"daily_cap": daily_cap} if daily_cap else {}
    quiet = (profile.quiet_hours_start, profile.quiet_hours_end) if profile.quiet_hours_start else None
    caps = [c for c in (profile.frequency_cap_per_day, daily_cap) if c]
    return {"timezone": profile.timezone, "quiet_hours": quiet, "daily_cap": min(caps) if caps else None}


def hold_reason(decision: Decision) -> str:
    if decision.digest:
        return f"digest:{decision.digest}"
    return QUIET_HOURS_REASON if decision.not_before else ""
