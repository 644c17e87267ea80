from __future__ import annotations

import pytest

from channels_adapters.base import BaseChannel, OutboundMessage, SendResult
from tests.channels_adapters.helpers import send
from channels_adapters.errors import (
    InvalidAddressError,
    PermanentChannelError,
    TransientChannelError,
)


class RecordingChannel(BaseChannel):
    """Records each hook call; addresses starting with a marker fail the matching way."""

    max_batch_size = 3

    def __init__(self, alias: str, **options) -> None:
        super().__init__(alias, **options)
        self.calls: list[tuple] = []

    def open(self) -> None:
        self.calls.append(("open",))

    def close(self) -> None:
        self.calls.append(("close",))

    def normalise_address(self, address: str) -> str:
        self.calls.append(("normalise", address))
        if address.startswith("bad"):
            raise InvalidAddressError(f"bad address {address}")
        return address.strip().lower()

    def build_payload(self, message: OutboundMessage) -> dict:
        self.calls.append(("build", message.address))
        return {"to": message.address}

    def send_payload(self, payload: dict, message: OutboundMessage, lane) -> str:
        self.calls.append(("send", payload["to"]))
        if payload["to"].startswith("busy"):
            raise TransientChannelError("try later", retry_after=30)
        if payload["to"].startswith("boom"):
            raise RuntimeError("adapter bug")
        return f"id-{message.delivery_id}"


def message(delivery_id: int, address: str) -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id, address=address, subject="Hi", text="Hello")


def test_send_batch_runs_the_hooks_in_order_with_one_open_and_close():
    channel = RecordingChannel("test")

    results = send(channel, [message(1, " A@X "), message(2, "b@x")])

    assert channel.calls == [
        ("open",),
        ("normalise", " A@X "),
        ("build", "a@x"),
        ("send", "a@x"),
        ("normalise", "b@x"),
        ("build", "b@x"),
        ("send", "b@x"),
        ("close",),
    ]
    assert results == [SendResult(1, provider_message_id="id-1"), SendResult(2, provider_message_id="id-2")]
    assert all(result.ok for result in results)


def test_invalid_address_fails_that_message_without_sending_it():
    channel = RecordingChannel("test")

    results = send(channel, [message(1, "bad-one"), message(2, "b@x")])

    assert ("build", "bad-one") not in channel.calls and ("send", "bad-one") not in channel.calls
    assert not results[0].ok and isinstance(results[0].error, InvalidAddressError)
    assert isinstance(results[0].error, PermanentChannelError)
    assert results[0].error.reason == "invalid_address"
    assert results[1].ok and results[1].provider_message_id == "id-2"


def test_channel_error_fails_only_its_message_and_keeps_retry_after():
    channel = RecordingChannel("test")

    results = send(channel, [message(1, "busy@x"), message(2, "b@x")])

    assert isinstance(results[0].error, TransientChannelError)
    assert results[0].error.retry_after == 30
    assert results[0].provider_message_id == ""
    assert results[1].ok


def test_unexpected_exception_propagates_after_close():
    channel = RecordingChannel("test")

    with pytest.raises(RuntimeError, match="adapter bug"):
        send(channel, [message(1, "boom@x"), message(2, "b@x")])

    assert channel.calls[-1] == ("close",)
    assert ("send", "b@x") not in channel.calls


def test_open_failure_fails_every_message_and_still_closes():
    class Unreachable(RecordingChannel):
        def open(self) -> None:
            raise TransientChannelError("provider down", reason="connect")

    channel = Unreachable("test")

    results = send(channel, [message(1, "a@x"), message(2, "b@x")])

    assert [result.error.reason for result in results] == ["connect", "connect"]
    assert channel.calls == [("close",)]


def test_batch_larger_than_max_batch_size_is_refused_before_opening():
    channel = RecordingChannel("test")

    with pytest.raises(ValueError, match="at most 3"):
        send(channel, [message(n, f"u{n}@x") for n in range(4)])

    assert channel.calls == []


def test_options_override_the_declared_limits():
    channel = RecordingChannel("test", max_batch_size=500, max_per_second=12, region="eu")

    assert (channel.max_batch_size, channel.max_per_second) == (500, 12.0)
    assert RecordingChannel.max_batch_size == 3
    assert channel.options == {"region": "eu"}


def test_empty_batch_does_not_open_a_connection():
    channel = RecordingChannel("test")

    assert send(channel, []) == []
    assert channel.calls == []


@pytest.mark.parametrize("hook", ["build_payload", "send_payload"])
def test_missing_required_hook_names_the_subclass(hook):
    class HalfDone(BaseChannel):
        def build_payload(self, message):
            return {}

    class NothingDone(BaseChannel):
        pass

    channel = NothingDone("half") if hook == "build_payload" else HalfDone("half")

    with pytest.raises(NotImplementedError, match=rf"^{type(channel).__name__} must implement {hook}\(\)$"):
        send(channel, [message(1, "a@x")])


def test_send_result_ok_and_message_defaults():
    msg = OutboundMessage(delivery_id=7, address="a@x")

    assert (msg.subject, msg.text, msg.html, msg.url, msg.headers, msg.metadata, msg.locale) == (
        "", "", "", "", {}, {}, "en"
    )
    assert SendResult(7, provider_message_id="p").ok
    assert not SendResult(7, error=PermanentChannelError("no")).ok
