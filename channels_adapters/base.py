"""The base class every channel adapter extends (STYLE.md "Backends and adapters").

``BaseChannel.send_batch`` owns the sequence of steps; adapters fill in hooks and declare what
their channel can do in ``features`` (``channels_adapters.features``). The pipeline calls
``send_batch(messages, on_result=..., on_handoff=...)`` and learns each outcome through
``on_result`` as soon as it is known.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from .errors import ChannelConfigurationError, ChannelError, TransientChannelError
from .features import ChannelFeatures


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered message for one delivery, in a channel-neutral shape.

    ``subject`` is the email subject, or the title of a push/in-app/chat message. ``metadata``
    carries facts adapters may act on, e.g. ``category_kind`` ("marketing", ...) and
    ``unsubscribe_url``. ``idempotency_key`` is the same for every attempt of one delivery and
    different for any two deliveries: adapters derive what the provider sees from it (email's
    Message-ID, an ESP's idempotency key), so a re-send is recognisably the same message.
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
    idempotency_key: str = ""


@dataclass(frozen=True)
class SendResult:
    """The outcome for one message: a provider id when accepted, else the typed error."""

    delivery_id: int
    provider_message_id: str = ""
    error: ChannelError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


#: ``on_result(result)``: one call per message, in the calling thread.
ResultCallback = Callable[[SendResult], object]
#: ``on_handoff(delivery_ids)``: called in the calling thread just before these messages start
#: their irrevocable step. Returns the ids that may go out (``None``: all of them); the others
#: are not sent and come back with a ``TransientChannelError(reason="not_handed_off")``.
HandoffCallback = Callable[[list[int]], "Collection[int] | None"]


def _lease_lost(message: OutboundMessage) -> SendResult:
    return SendResult(
        message.delivery_id,
        error=TransientChannelError("Not sent: the caller no longer owns this delivery.", reason="not_handed_off"),
    )


@dataclass
class _Ready:
    index: int
    message: OutboundMessage
    payload: Any


class BaseChannel:
    """A channel adapter, built by ``channels_adapters.handler.channels`` from its alias.

    The contract of ``send_batch`` (do not override it; fill in the hooks):

    1. Refuse a batch larger than ``max_batch_size`` with ``ValueError`` (a caller bug).
    2. ``open()`` once for the whole batch. A ``ChannelError`` from it fails every message.
    3. For each message, in the calling thread, just before its wave is handed off:
       ``normalise_address()``, ``build_payload()``. A ``ChannelError`` fails that message at
       once, without contacting the provider.
    4. Send the rest over at most ``features.concurrency`` *lanes* at once. A lane is one
       connection or session (``open_lane()``, lazily on its first message; ``close_lane()``
       at the end) that sends one message at a time with ``send_payload()``. With more than
       one lane each lane runs in a thread of its own: ``open_lane``/``send_payload``/
       ``close_lane`` must not touch the database (Django connections are per thread).
       Before messages are handed to lanes, ``on_handoff(ids)`` is called for them (a *wave*);
       a wave is at most as large as the number of idle lanes, so at most ``concurrency``
       messages are ever handed off without an outcome.
    5. Each outcome goes to ``after_send()`` (the adapter's own bookkeeping, calling thread),
       then to ``on_result`` exactly once, in the calling thread, as soon as it is known.
    6. ``close()`` always, also when an unexpected exception propagates. Such an exception
       stops the batch: messages already reported keep their results, the rest get none, so
       adapters must translate every provider failure they can foresee into a ``ChannelError``.

    ``send_batch`` also returns the results, in the order of ``messages``.

    Limits: ``max_batch_size`` and ``max_per_second`` (``None`` for no limit) are class
    attributes each adapter declares; ``OPTIONS`` may override them and ``concurrency`` per
    alias. The base class enforces the batch size; the caller paces sends to ``max_per_second``.

    An instance is reused for many batches by one thread (the handler caches one per thread),
    so per-batch state set in ``open()`` must be cleared in ``close()``.
    """

    max_batch_size: int = 100
    max_per_second: float | None = None
    features: ChannelFeatures = ChannelFeatures()

    def __init__(self, alias: str, **options: Any) -> None:
        self.alias = alias
        if "max_batch_size" in options:
            self.max_batch_size = int(options.pop("max_batch_size"))
        if "max_per_second" in options:
            rate = options.pop("max_per_second")
            self.max_per_second = None if rate is None else float(rate)
        if self.max_batch_size < 1:
            raise ValueError(f"{type(self).__name__} {alias!r}: max_batch_size must be at least 1.")
        self.features = self.declared_features()
        if "concurrency" in options:
            concurrency = options.pop("concurrency")
            if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
                raise ChannelConfigurationError(
                    f"{type(self).__name__} {alias!r}: concurrency must be a whole number of at least 1, not {concurrency!r}."
                )
            self.features = self.features.replace(concurrency=concurrency)
        self.options = options

    def declared_features(self) -> ChannelFeatures:
        """The features of this alias before OPTIONS; stand-in adapters borrow another channel's."""
        return type(self).features

    def refuse_unknown_options(self) -> None:
        """For adapters that take every option as a keyword: a typo in OPTIONS is an error."""
        if self.options:
            raise ChannelConfigurationError(
                f"{type(self).__name__} {self.alias!r}: unknown OPTIONS {', '.join(sorted(self.options))}."
            )

    def required_options(self, **options: tuple[Any, str]) -> list[Any]:
        """Each required option's value, else the setting named beside it, in the order given::

            self.key_id, self.secret = self.required_options(key_id=(key_id, "X_KEY_ID"), secret=(secret, "X_SECRET"))

        Every one still empty is named in one ``ChannelConfigurationError``, when the adapter is built.
        """
        values, missing = [], []
        for name, (value, setting) in options.items():
            value = value or getattr(settings, setting, "")
            if not value:
                missing.append(f"{name} ({setting})")
            values.append(value)
        if missing:
            raise ChannelConfigurationError(f"{type(self).__name__} {self.alias!r}: missing {', '.join(missing)}.")
        return values

    def positive_timeout(self, timeout: Any) -> float:
        """``timeout`` as seconds; zero, a negative, a non-number (or NaN, infinity) is a
        ``ChannelConfigurationError`` when the adapter is built (``signalbox.E202`` at start-up),
        not a send that can never wait."""
        try:
            seconds = float(timeout)
        except (TypeError, ValueError):
            seconds = 0.0
        if isinstance(timeout, bool) or not 0 < seconds < float("inf"):
            raise ChannelConfigurationError(
                f"{type(self).__name__} {self.alias!r}: timeout must be a positive number of seconds, not {timeout!r}."
            )
        return seconds

    def refuse_oversize_batch(self, messages: Sequence[OutboundMessage]) -> None:
        """More than ``max_batch_size`` messages is the caller's mistake: ``ValueError``, nothing sent."""
        if len(messages) > self.max_batch_size:
            raise ValueError(
                f"{type(self).__name__} {self.alias!r} sends at most {self.max_batch_size} messages per batch, "
                f"got {len(messages)}."
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.alias!r}>"

    def send_batch(
        self,
        messages: Sequence[OutboundMessage],
        *,
        on_result: ResultCallback,
        on_handoff: HandoffCallback | None = None,
    ) -> list[SendResult]:
        """Send ``messages``; report each outcome to ``on_result`` and return them in order."""
        self.refuse_oversize_batch(messages)
        if not messages:
            return []
        results: dict[int, SendResult] = {}

        def report(index: int, payload: Any, result: SendResult) -> None:
            results[index] = result
            self.after_send(payload, result)
            on_result(result)

        try:
            try:
                self.open()
            except ChannelError as error:
                for index, message in enumerate(messages):
                    report(index, None, SendResult(message.delivery_id, error=error))
                return [results[i] for i in range(len(messages))]
            ready = self._prepared(messages, report)
            lanes = min(self.features.concurrency, len(messages))
            if lanes <= 1:
                self._send_in_this_thread(ready, report, on_handoff)
            else:
                self._send_over_lanes(ready, lanes, report, on_handoff)
        finally:
            self.close()
        return [results[i] for i in sorted(results)]

    def _prepared(self, messages: Sequence[OutboundMessage], report) -> Iterator[_Ready]:
        """Normalise and build each message when it is about to be handed off (so the first
        wave leaves at once); a message that cannot be built is reported failed right away."""
        for index, message in enumerate(messages):
            try:
                address = self.normalise_address(message.address)
                if address != message.address:
                    message = dataclasses.replace(message, address=address)
                payload = self.build_payload(message)
            except ChannelError as error:
                report(index, None, SendResult(message.delivery_id, error=error))
                continue
            yield _Ready(index, message, payload)

    def _send_one(self, item: _Ready, lane: Any) -> SendResult:
        try:
            provider_message_id = self.send_payload(item.payload, item.message, lane)
        except ChannelError as error:
            return SendResult(item.message.delivery_id, error=error)
        return SendResult(item.message.delivery_id, provider_message_id=provider_message_id)

    def _send_in_this_thread(self, ready: Iterator[_Ready], report, on_handoff: HandoffCallback | None) -> None:
        """One lane, no threads: hand off and send one message at a time."""
        lane, opened = None, False
        try:
            for item in ready:
                if on_handoff is not None:
                    allowed = on_handoff([item.message.delivery_id])
                    if allowed is not None and item.message.delivery_id not in allowed:
                        report(item.index, item.payload, _lease_lost(item.message))
                        continue
                if not opened:
                    lane, opened = self._open_lane_or_error(item)
                    if isinstance(lane, SendResult):
                        report(item.index, item.payload, lane)
                        lane, opened = None, False
                        continue
                report(item.index, item.payload, self._send_one(item, lane))
        finally:
            if opened:
                self.close_lane(lane)

    def _open_lane_or_error(self, item: _Ready) -> tuple[Any, bool]:
        try:
            return self.open_lane(), True
        except ChannelError as error:
            return SendResult(item.message.delivery_id, error=error), False

    def _send_over_lanes(self, ready: Iterator[_Ready], lanes: int, report, on_handoff: HandoffCallback | None) -> None:
        """Up to ``lanes`` threads, each owning one lane; hand-offs and results stay in this thread.

        Invariant: messages handed to lanes without a reported outcome never exceed ``lanes``,
        because a wave only fills lanes that are idle.
        """
        work: queue.SimpleQueue = queue.SimpleQueue()
        done: queue.SimpleQueue = queue.SimpleQueue()
        threads: list[threading.Thread] = []
        busy = 0
        failure: BaseException | None = None
        exhausted = False
        try:
            while True:
                if not exhausted and failure is None and busy < lanes:
                    wave = list(itertools.islice(ready, lanes - busy))
                    exhausted = len(wave) < lanes - busy
                    if wave:
                        allowed = on_handoff([item.message.delivery_id for item in wave]) if on_handoff else None
                        for item in wave:
                            if allowed is not None and item.message.delivery_id not in allowed:
                                report(item.index, item.payload, _lease_lost(item.message))
                                continue
                            work.put(item)
                            busy += 1
                        while len(threads) < min(busy, lanes):  # a thread per lane in use, no more
                            thread = threading.Thread(
                                target=self._lane_loop, args=(work, done), name=f"{self.alias}-lane-{len(threads)}",
                                daemon=True,
                            )
                            thread.start()
                            threads.append(thread)
                        continue
                if not busy:
                    break  # all sent, or a lane failed: what was not handed off gets no result
                # Wait for one outcome, then take every other one already there: the next wave
                # refills all idle lanes at once (one hand-off, one write of outcomes), so the
                # busier this thread is, the larger its waves.
                finished = [done.get()]
                while True:
                    try:
                        finished.append(done.get_nowait())
                    except queue.Empty:
                        break
                for item, outcome in finished:
                    busy -= 1
                    if isinstance(outcome, BaseException):
                        failure = failure or outcome
                        continue
                    report(item.index, item.payload, outcome)
        finally:
            for _ in threads:
                work.put(None)
            for thread in threads:
                thread.join()
        if failure is not None:
            raise failure

    def _lane_loop(self, work: queue.SimpleQueue, done: queue.SimpleQueue) -> None:
        lane, opened = None, False
        try:
            while (item := work.get()) is not None:
                try:
                    if not opened:
                        lane, opened = self._open_lane_or_error(item)
                        if isinstance(lane, SendResult):
                            done.put((item, lane))
                            lane, opened = None, False
                            continue
                    done.put((item, self._send_one(item, lane)))
                except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread
                    done.put((item, error))
        finally:
            if opened:
                try:
                    self.close_lane(lane)
                except Exception:  # noqa: BLE001 - every message of this lane has its outcome already
                    pass

    # Hooks ---------------------------------------------------------------------------------

    def open(self) -> None:
        """Acquire what the whole batch shares. Default: nothing.

        Raise ``TransientChannelError`` when the provider cannot be reached.
        """

    def close(self) -> None:
        """Release what ``open()`` acquired. Called once per batch, also after ``open()``
        failed part-way, so it must tolerate a half-open state. Default: nothing.
        """

    def open_lane(self) -> Any:
        """One connection or session, used by one lane for one message at a time. Default: None.

        Called on the lane's first message; a ``ChannelError`` fails that message (the next
        message of the lane tries again).
        """
        return None

    def close_lane(self, lane: Any) -> None:
        """Release what ``open_lane()`` returned, once the batch is done. Default: nothing."""

    def normalise_address(self, address: str) -> str:
        """Return the address in the form the provider expects, or raise ``InvalidAddressError``.

        Default: strip surrounding whitespace.
        """
        return address.strip()

    def build_payload(self, message: OutboundMessage) -> Any:
        """Turn a message (with its normalised address) into the provider's request. Required.

        Runs in the calling thread: the place for database lookups the payload needs.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement build_payload()")

    def send_payload(self, payload: Any, message: OutboundMessage, lane: Any) -> str:
        """Hand one payload to the provider over ``lane`` and return the provider's message id. Required.

        Return only once the provider has accepted the message; otherwise raise the
        ``ChannelError`` subclass that says whether a retry is safe.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement send_payload()")

    def after_send(self, payload: Any, result: SendResult) -> None:
        """The adapter's own bookkeeping for one outcome, in the calling thread (``payload`` is
        ``None`` when the message failed before it had one). Default: nothing."""
