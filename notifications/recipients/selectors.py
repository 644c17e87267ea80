"""Recipient reads: users with what deciding their channels needs, without model instances."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from django.contrib.auth import get_user_model


class ProfileRow(NamedTuple):
    phone: str
    chat_ids: dict
    timezone: str
    quiet_hours_start: object
    quiet_hours_end: object
    frequency_cap_per_day: int | None
    locale: str


class RecipientRow(NamedTuple):
    """A user as ``decisions.recipient_facts`` reads one: ``pk``, ``email``, ``recipient_profile``."""

    pk: int
    email: str
    recipient_profile: ProfileRow | None


_PROFILE_DEFAULTS = ProfileRow(phone="", chat_ids={}, timezone="UTC", quiet_hours_start=None, quiet_hours_end=None,
                              frequency_cap_per_day=None, locale="en")


def recipients_for_decisions(*, user_ids: Iterable[int], channels: Sequence[str] | None = None) -> list[RecipientRow]:
    """The users among ``user_ids`` with what deciding their channels needs: one query, no model
    instances (building 10,000 users and profiles costs more than planning their deliveries).

    With ``channels``, columns no decision about them reads are left at their defaults instead
    of fetched and converted: the email address of an inbox fan-out, phones without SMS, chat
    ids without chat, quiet hours when no channel interrupts.
    """
    from channels_adapters.handler import channels as adapters

    def wanted(source: str) -> bool:
        # Some channel asked about keeps its addresses there (``features.address_source``).
        return channels is None or any(adapters.features(alias).address_source == source for alias in channels)

    interrupting = channels is None or any(adapters.features(alias).interrupts for alias in channels)
    profile_fields = [
        name for name in ProfileRow._fields
        if (name != "phone" or wanted("profile_phone")) and (name != "chat_ids" or wanted("profile_chat") or wanted("profile_wechat"))
        and (not name.startswith("quiet_hours") or interrupting)
    ]
    email = "email" if wanted("user_email") else "pk"
    # In id order, whatever plan the database picks for the id list: deliveries are numbered (and
    # sent, and throttled) in the order of their recipients.
    rows = get_user_model()._default_manager.filter(pk__in_list=set(user_ids)).order_by("pk").values_list(
        "pk", email, "recipient_profile__id", *(f"recipient_profile__{name}" for name in profile_fields)
    )
    fetched_email = email == "email"
    return [
        RecipientRow(
            pk, (address or "") if fetched_email else "",
            _PROFILE_DEFAULTS._replace(**dict(zip(profile_fields, profile, strict=True)))
            if profile_id is not None else None,
        )
        for pk, address, profile_id, *profile in rows
    ]
