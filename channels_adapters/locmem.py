"""An in-memory channel: the test twin of every real adapter (like Django's locmem mail backend).

Accepted payloads are appended to the class-level ``LocmemChannel.outbox``, shared by every
alias that uses this backend; clear it between tests. OPTIONS simulate provider failures for
chosen addresses (compared after ``normalise_address``)::

    {"BACKEND": "channels_adapters.locmem.LocmemChannel",
     "OPTIONS": {"fail_transient": {"a@example.com"}, "fail_permanent": set(), "unknown_outcome": set()}}

A message with an unknown outcome is not put in the outbox: the simulated provider "lost" it.
Its features are those of the channel its alias names (OPTIONS ``like`` for another name), sent
one message at a time so the outbox keeps the batch's order.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import BaseChannel, OutboundMessage
from .features import ChannelFeatures, features_for_alias
from .errors import PermanentChannelError, TransientChannelError, UnknownOutcomeError


@dataclass(frozen=True)
class LocmemPayload:
    """What the in-memory provider received: the alias it was sent through and the message."""

    alias: str
    message: OutboundMessage
    provider_message_id: str = ""


class LocmemChannel(BaseChannel):
    outbox: ClassVar[list[LocmemPayload]] = []
    max_batch_size = 1000
    _ids: ClassVar[Iterator[int]] = itertools.count(1)

    def __init__(
        self,
        alias: str,
        *,
        fail_transient: Iterable[str] = (),
        fail_permanent: Iterable[str] = (),
        unknown_outcome: Iterable[str] = (),
        like: str | None = None,
        **options: Any,
    ) -> None:
        self.like = like
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        self.fail_transient = frozenset(fail_transient)
        self.fail_permanent = frozenset(fail_permanent)
        self.unknown_outcome = frozenset(unknown_outcome)

    def declared_features(self) -> ChannelFeatures:
        return features_for_alias(self.like or self.alias).replace(concurrency=1)

    def build_payload(self, message: OutboundMessage) -> LocmemPayload:
        return LocmemPayload(alias=self.alias, message=message)

    def send_payload(self, payload: LocmemPayload, message: OutboundMessage, lane: Any) -> str:
        address = message.address
        if address in self.fail_transient:
            raise TransientChannelError(f"Simulated transient failure for {address}.", reason="simulated_transient")
        if address in self.fail_permanent:
            raise PermanentChannelError(f"Simulated permanent failure for {address}.", reason="simulated_permanent")
        if address in self.unknown_outcome:
            raise UnknownOutcomeError(f"Simulated unknown outcome for {address}.", reason="simulated_unknown")
        provider_message_id = f"locmem-{next(self._ids)}"
        self.outbox.append(dataclasses.replace(payload, provider_message_id=provider_message_id))
        return provider_message_id
