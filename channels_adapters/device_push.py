"""What the adapters sending to registered app installations (``PushDevice``) share.

``DevicePushMixin`` keeps each batch's device bookkeeping: the tokens a push reached get their
``last_used_at`` stamped in one UPDATE when the batch closes (not a write per message), and a
token the push service says is gone is deleted at once (the next message goes to another device
or none). It also refuses a ``timeout`` that is not a positive number of seconds when the alias
is configured (``signalbox.E202`` names it at start-up), instead of a push that can never wait.
"""

from __future__ import annotations

from typing import Any

from .base import SendResult
from .errors import ChannelConfigurationError


def positive_timeout(owner: str, timeout: Any) -> float:
    """``timeout`` as seconds, or ``ChannelConfigurationError`` for zero, a negative or a non-number."""
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        seconds = 0.0
    if isinstance(timeout, bool) or not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ChannelConfigurationError(f"{owner}: timeout must be a positive number of seconds, not {timeout!r}.")
    return seconds


class DevicePushMixin:
    #: The error reasons (without the provider prefix) meaning the token no longer reaches an app.
    gone_reasons: frozenset[str] = frozenset()
    reason_prefix: str = ""

    def open(self) -> None:
        super().open()
        self._reached_tokens: list[str] = []

    def close(self) -> None:
        reached, self._reached_tokens = getattr(self, "_reached_tokens", []), []
        try:
            if reached:
                from .devices import devices_mark_used

                devices_mark_used(tokens=reached)
        finally:
            super().close()

    def device_outcome(self, token: str | None, result: SendResult) -> None:
        """The bookkeeping for one outcome (``after_send``), in the calling thread."""
        if token is None:
            return
        if result.ok:
            self._reached_tokens.append(token)
        elif result.error.reason.removeprefix(self.reason_prefix) in self.gone_reasons:
            from .devices import devices_remove_unregistered

            devices_remove_unregistered(tokens=[token])
