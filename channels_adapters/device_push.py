"""What the adapters sending to registered app installations (``PushDevice``) share.

``DevicePushMixin`` keeps each batch's device bookkeeping: the tokens a push reached get their
``last_used_at`` stamped in one UPDATE when the batch closes (not a write per message), and a
token the push service says is gone is deleted at once (the next message goes to another device
or none).
"""

from __future__ import annotations

from .base import SendResult


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
