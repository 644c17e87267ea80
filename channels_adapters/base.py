"""The base class every channel adapter extends (STYLE.md "Backends and adapters").

``BaseChannel.send_batch`` owns the sequence of steps; adapters fill in hooks. The pipeline
only ever calls ``send_batch`` and reads the ``SendResult`` list it returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ChannelConfigurationError, ChannelError


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered message for one delivery, in a channel-neutral shape.

    ``subject`` is the email subject, or the title of a push/in-app/chat message. ``metadata``
    carries facts adapters may act on, e.g. ``category_kind`` ("marketing", ...) and
    ``unsubscribe_url``.
    """

    delivery_id: int
    address: str
    subject: str = ""
    text: str = ""
    html: str = ""
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    locale: str = "en"


@dataclass(frozen=True)
class SendResult:
    """The outcome for one message: a provider id when accepted, else the typed error."""

    delivery_id: int
    provider_message_id: str = ""
    error: ChannelError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class BaseChannel:
    """A channel adapter, built by ``channels_adapters.handler.channels`` from its alias.

    The contract of ``send_batch`` (do not override it; fill in the hooks):

    1. Refuse a batch larger than ``max_batch_size`` with ``ValueError`` (a caller bug).
    2. ``open()`` once for the whole batch (one SMTP connection, one HTTP session).
    3. For each message, in order: ``normalise_address()``, ``build_payload()``,
       ``send_payload()``. A ``ChannelError`` from any of them becomes that message's failed
       ``SendResult`` and the batch continues; ``InvalidAddressError`` from
       ``normalise_address()`` therefore fails the message without contacting the provider.
       A ``ChannelError`` from ``open()`` fails every message with that error.
    4. ``close()`` always, also when an unexpected exception propagates. Such an exception
       loses the results of messages already sent in this batch, so adapters must translate
       every provider failure they can foresee into a ``ChannelError``.

    Limits: ``max_batch_size`` and ``max_per_second`` (``None`` for no limit) are class
    attributes each adapter declares; ``OPTIONS`` may override them per alias. The base class
    enforces the batch size; the caller paces sends to ``max_per_second``.

    An instance is reused for many batches by one thread (the handler caches one per thread),
    so per-batch state set in ``open()`` must be cleared in ``close()``.
    """

    max_batch_size: int = 100
    max_per_second: float | None = None
    #: Set by the caller for one batch: ``handoff(delivery_id, provider_message_id)`` is called
    #: by adapters that can tell the moment a message becomes irrevocable (the SMTP final ".")
    #: just *before* it, so a crash right after can be told apart from one before. If it returns
    #: a callable, the adapter calls that right *after* the irrevocable step (the caller may
    #: send its record and collect the reply later, so both leave the process back to back).
    handoff = None

    def __init__(self, alias: str, **options: Any) -> None:
        self.alias = alias
        if "max_batch_size" in options:
            self.max_batch_size = int(options.pop("max_batch_size"))
        if "max_per_second" in options:
            rate = options.pop("max_per_second")
            self.max_per_second = None if rate is None else float(rate)
        if self.max_batch_size < 1:
            raise ValueError(f"{type(self).__name__} {alias!r}: max_batch_size must be at least 1.")
        self.options = options

    def refuse_unknown_options(self) -> None:
        """For adapters that take every option as a keyword: a typo in OPTIONS is an error."""
        if self.options:
            raise ChannelConfigurationError(
                f"{type(self).__name__} {self.alias!r}: unknown OPTIONS {', '.join(sorted(self.options))}."
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.alias!r}>"

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Send ``messages`` and return one ``SendResult`` per message, in the same order."""
        if len(messages) > self.max_batch_size:
            raise ValueError(
                f"{type(self).__name__} {self.alias!r} sends at most {self.max_batch_size} messages per batch, "
                f"got {len(messages)}."
            )
        if not messages:
            return []
        try:
            try:
                self.open()
            except ChannelError as error:
                return [SendResult(message.delivery_id, error=error) for message in messages]
            return [self._send_one(message) for message in messages]
        finally:
            self.close()

    def _send_one(self, message: OutboundMessage) -> SendResult:
        try:
            address = self.normalise_address(message.address)
            if address != message.address:
                message = dataclasses.replace(message, address=address)
            payload = self.build_payload(message)
            provider_message_id = self.send_payload(payload, message)
        except ChannelError as error:
            return SendResult(message.delivery_id, error=error)
        return SendResult(message.delivery_id, provider_message_id=provider_message_id)

    # Hooks ---------------------------------------------------------------------------------

    def open(self) -> None:
        """Acquire what the whole batch shares (a connection, a session). Default: nothing.

        Raise ``TransientChannelError`` when the provider cannot be reached.
        """

    def close(self) -> None:
        """Release what ``open()`` acquired. Called once per batch, also after ``open()``
        failed part-way, so it must tolerate a half-open state. Default: nothing.
        """

    def normalise_address(self, address: str) -> str:
        """Return the address in the form the provider expects, or raise ``InvalidAddressError``.

        Default: strip surrounding whitespace.
        """
        return address.strip()

    def build_payload(self, message: OutboundMessage) -> Any:
        """Turn a message (with its normalised address) into the provider's request. Required."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_payload()")

    def send_payload(self, payload: Any, message: OutboundMessage) -> str:
        """Hand one payload to the provider and return the provider's message id. Required.

        Return only once the provider has accepted the message; otherwise raise the
        ``ChannelError`` subclass that says whether a retry is safe.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement send_payload()")
