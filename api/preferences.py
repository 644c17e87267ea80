"""Preferences as the API shows and changes them, over ``notifications.recipients.preferences``
(the preference centre's own service): a partial change is merged into the current choices."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from notifications.recipients.preferences import preferences_state, preferences_update


def preferences_read(*, user) -> dict:
    state = preferences_state(user=user)
    return {
        "categories": [
            {"key": c.key, "name": c.display_name(), "user_can_opt_out": c.user_can_opt_out,
             "channels": {ch: (c.pk, ch) in state.enabled for ch in state.channels}, "digest": state.digest[c.pk]}
            for c in state.categories
        ],
        "quiet_hours": {"start": state.quiet_hours[0], "end": state.quiet_hours[1]} if state.quiet_hours else None,
        "timezone": state.timezone,
    }


def preferences_change(*, user, channels: dict, digest: dict, quiet_hours, clear_quiet_hours: bool,
                       timezone: str | None) -> dict:
    """Apply the given changes (an unknown category key is a ``ValidationError``) and return the
    new state. Categories nobody may leave stay on, as in the preference centre.

    The read and the write are one transaction holding the user's row: two changes at once (an
    app and a server) each merge into what the other wrote, and neither is lost."""
    with transaction.atomic():
        get_user_model()._default_manager.select_for_update().filter(pk=user.pk).values_list("pk").first()
        _change(user=user, channels=channels, digest=digest, quiet_hours=quiet_hours,
                clear_quiet_hours=clear_quiet_hours, timezone=timezone)
    return preferences_read(user=user)


def _change(*, user, channels: dict, digest: dict, quiet_hours, clear_quiet_hours: bool, timezone: str | None) -> None:
    state = preferences_state(user=user)
    by_key = {c.key: c for c in state.categories}
    unknown = sorted((set(channels) | set(digest)) - set(by_key))
    if unknown:
        raise ValidationError({"channels": [_("Unknown category: %(key)s") % {"key": key} for key in unknown]})
    enabled = set(state.enabled)
    for key, wanted in channels.items():
        for channel, on in wanted.items():
            pair = (by_key[key].pk, channel)
            if on:
                enabled.add(pair)
            else:
                enabled.discard(pair)
    new_digest = {**state.digest, **{by_key[key].pk: value for key, value in digest.items()}}
    if clear_quiet_hours:
        quiet = None
    elif quiet_hours is not None:
        quiet = (quiet_hours["start"], quiet_hours["end"])
    else:
        quiet = state.quiet_hours
    preferences_update(user=user, choices=enabled, quiet_hours=quiet, timezone=timezone or state.timezone,
                       digest=new_digest)
