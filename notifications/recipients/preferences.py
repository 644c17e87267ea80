"""The preference centre: what a recipient has chosen, and the service that changes it.

An absent ``Preference`` row means the category's ``default_enabled``. Categories recipients
may not opt out of (``user_can_opt_out=False``) are always on: the service ignores any choice
for them, whatever a form posts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Category, Channel, Delivery, Preference, RecipientProfile, validate_timezone

# The channels a recipient chooses between, in display order.
PREFERENCE_CHANNELS: tuple[str, ...] = tuple(Channel.values)


@dataclass(frozen=True)
class PreferenceState:
    """One user's current choices, with category defaults filled in for absent rows."""

    categories: list[Category]
    enabled: frozenset[tuple[int, str]]
    digest: dict[int, str]
    quiet_hours: tuple[time, time] | None
    timezone: str
    channels: tuple[str, ...] = field(default=PREFERENCE_CHANNELS)


def preferences_state(*, user) -> PreferenceState:
    # In the recipient's language: the names they read, in the order of those names.
    categories = sorted(Category.objects.listed(), key=lambda c: (c.display_name().casefold(), c.pk))
    rows = {
        (category_id, channel): (enabled, digest)
        for category_id, channel, enabled, digest in Preference.objects.filter(user=user).values_list(
            "category_id", "channel", "enabled", "digest"
        )
    }
    enabled = set()
    digest: dict[int, str] = {}
    for category in categories:
        for channel in PREFERENCE_CHANNELS:
            row = rows.get((category.pk, channel))
            on = row[0] if row else category.default_enabled
            if on or not category.user_can_opt_out:
                enabled.add((category.pk, channel))
            if row and category.pk not in digest:
                digest[category.pk] = row[1]
        digest.setdefault(category.pk, Preference.Digest.IMMEDIATE)
    profile = RecipientProfile.objects.filter(user=user).first()
    quiet = None
    if profile and profile.quiet_hours_start is not None and profile.quiet_hours_end is not None:
        quiet = (profile.quiet_hours_start, profile.quiet_hours_end)
    return PreferenceState(
        categories=categories,
        enabled=frozenset(enabled),
        digest=digest,
        quiet_hours=quiet,
        timezone=profile.timezone if profile else "UTC",
    )


@transaction.atomic
def preferences_update(
    *,
    user,
    choices: set[tuple[int, str]] | frozenset[tuple[int, str]],
    quiet_hours: tuple[time, time] | None,
    timezone: str,
    digest: dict[int, str],
) -> int:
    """Save a recipient's choices; returns the number of preference rows written.

    ``choices`` holds the (category id, channel) pairs the recipient wants on; every other pair
    of an opt-out-able category is written as off. ``digest`` maps category id to a
    ``Preference.Digest`` value. Raises ``ValidationError`` (saving nothing) for an unknown time
    zone or digest, or half-set quiet hours.
    """
    validate_timezone(timezone)
    if quiet_hours is not None and (quiet_hours[0] is None or quiet_hours[1] is None):
        raise ValidationError(_("Give both the start and the end of quiet hours, or neither."))
    bad_digest = set(digest.values()) - set(Preference.Digest.values)
    if bad_digest:
        raise ValidationError(_("Unknown digest choice."))
    rows = [
        Preference(
            user=user,
            category=category,
            channel=channel,
            enabled=(category.pk, channel) in choices,
            digest=digest.get(category.pk, Preference.Digest.IMMEDIATE),
        )
        for category in Category.objects.filter(user_can_opt_out=True)
        for channel in PREFERENCE_CHANNELS
    ]
    Preference.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["user", "category", "channel"],
        update_fields=["enabled", "digest", "updated_at"],
    )
    start, end = quiet_hours if quiet_hours else (None, None)
    profile, _created = RecipientProfile.objects.get_or_create(user=user)
    profile.quiet_hours_start, profile.quiet_hours_end, profile.timezone = start, end, timezone
    profile.save(update_fields=["quiet_hours_start", "quiet_hours_end", "timezone", "updated_at"])
    return len(rows)


def preferences_opt_out(*, user_id: int, category_ids: Iterable[int], channel: str) -> int:
    """Turn ``category_ids`` off for one user on one channel (an unsubscribe link). Idempotent.

    Writes ``Preference`` rows with ``enabled=False`` (digest choices are kept), so the preference
    centre shows the choice and the person can undo it there. Categories nobody may leave are
    skipped. Their deliveries still waiting on that channel become ``suppressed:opted_out`` now;
    a batch a worker already claimed is caught by the send-time re-check. Returns how many
    (category, channel) pairs were on before.
    """
    categories = list(Category.objects.filter(pk__in=list(category_ids), user_can_opt_out=True))
    if not categories:
        return 0
    before = dict(
        Preference.objects.filter(user_id=user_id, channel=channel, category__in=categories).values_list(
            "category_id", "enabled"
        )
    )
    turned_off = [c.pk for c in categories if before.get(c.pk, c.default_enabled)]
    with transaction.atomic():
        # One upsert, so a row another request creates meanwhile cannot make this fail.
        Preference.objects.bulk_create(
            [Preference(user_id=user_id, category=c, channel=channel, enabled=False) for c in categories],
            update_conflicts=True,
            unique_fields=["user", "category", "channel"],
            update_fields=["enabled", "updated_at"],
        )
        Delivery.objects.filter(
            recipient_id=user_id, channel=channel, category_id__in=[c.pk for c in categories],
            status__in=[Delivery.Status.PLANNED, Delivery.Status.DEFERRED],
        ).update(status=Delivery.Status.SUPPRESSED, status_reason="suppressed:opted_out")
    return len(turned_off)

