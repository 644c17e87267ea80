"""Channels whose "provider" is our own database (the inbox, the capture Outbox).

They buffer one row per message and write them all in ``close()``. The pipeline sees
``local = True`` and runs the batch and its ledger update in one transaction, so a row exists
exactly when its delivery is recorded ``sent``.
"""

from __future__ import annotations

from typing import Any

from .base import BaseChannel, OutboundMessage


class LocalRowsChannel(BaseChannel):
    local = True
    max_batch_size = 1000
    id_prefix = "local"

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        self._pending: list = []

    def open(self) -> None:
        self._pending = []

    def send_payload(self, payload, message: OutboundMessage) -> str:
        self._pending.append(payload)
        return f"{self.id_prefix}:{message.delivery_id}"

    def close(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self.write_rows(pending)

    def write_rows(self, rows: list) -> None:
        """Insert the buffered rows (one ``bulk_create``). Required."""
        raise NotImplementedError(f"{type(self).__name__} must implement write_rows()")
