"""Typed channel errors: what the pipeline does next depends only on the class.

- ``TransientChannelError``: the provider did not accept the message; retrying later is safe.
- ``PermanentChannelError``: the provider refused the message; retrying cannot help.
- ``UnknownOutcomeError``: the provider may have accepted the message; never re-send it
  automatically (a person decides).

``ChannelConfigurationError`` is not a ``ChannelError``: a broken setting is a deployment bug,
so it propagates instead of being recorded against a delivery.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class ChannelError(Exception):
    """A per-message failure reported by an adapter.

    ``reason`` is short and machine-readable (stored in ``Delivery.status_reason``); ``message``
    is for people (stored in ``Delivery.last_error``).
    """

    reason = "channel_error"

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class TransientChannelError(ChannelError):
    """Not accepted this time; may be retried, no sooner than ``retry_after`` seconds if given."""

    reason = "transient"

    def __init__(self, message: str = "", *, reason: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class PermanentChannelError(ChannelError):
    """Refused for good; never retried."""

    reason = "permanent"


class InvalidAddressError(PermanentChannelError):
    """The address can never be delivered to on this channel; found before contacting the provider."""

    reason = "invalid_address"


class UnknownOutcomeError(ChannelError):
    """The provider may have sent the message (e.g. a timeout after the request went out).

    Never re-sent automatically: a duplicate is worse than a missing message here.
    """

    reason = "unknown_outcome"


class ChannelConfigurationError(ImproperlyConfigured):
    """``NOTIFICATION_CHANNELS`` names an alias or backend that does not exist or is malformed."""
