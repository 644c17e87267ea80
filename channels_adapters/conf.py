"""Defaults for the channel layer's settings."""

from __future__ import annotations

# Used when ``NOTIFICATION_CHANNELS`` is not set. Only aliases whose adapter exists in this
# package; add the others here as their adapters land.
DEFAULT_CHANNELS: dict[str, dict] = {
    "email": {"BACKEND": "channels_adapters.email.EmailChannel", "OPTIONS": {}},
    "inapp": {"BACKEND": "channels_adapters.inapp.InappChannel", "OPTIONS": {}},
}
