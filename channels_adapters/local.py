"""Channels whose "provider" is our own database (the inbox, the capture Outbox).

They buffer one row per message and write them all in ``close()``. Their features say
``local``: the pipeline runs the batch and its ledger update in one transaction, so a row exists
exactly when its delivery is recorded ``sent``, and nothing is ever in flight.

A subclass that does not declare ``features`` of its own stands in for the channel its alias
names (or OPTIONS ``like``): captured email is still email (tracked, digestible, quiet hours).
"""

from __future__ import annotations

from typing import Any

from .base import BaseChannel, OutboundMessage
from .features import ChannelFeatures, features_for_alias


class LocalRowsChannel(BaseChannel):
    max_batch_size = 1000
    id_prefix = "local"
    features = ChannelFeatures(local=True)

    def __init__(self, alias: str, *, like: str | None = None, **options: Any) -> None:
        self.like = like
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        self._pending: list = []

    def declared_features(self) -> ChannelFeatures:
        declared = type(self).features
        if declared is LocalRowsChannel.features:
            # One transaction with the ledger: nothing to send concurrently.
            return features_for_alias(self.like or self.alias).replace(local=True, concurrency=1)
        return declared

    def open(self) -> None:
        self._pending = []

    def send_payload(self, payload, message: OutboundMessage, lane: Any) -> str:
        self._pending.append(payload)
        return f"{self.id_prefix}:{message.delivery_id}"

    def close(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self.write_rows(pending)

    def write_rows(self, rows: list) -> None:
        """Insert the buffered rows (one ``bulk_create``). Required."""
        raise NotImplementedError(f"{type(self).__name__} must implement write_rows()")
