"""Email through an ESP's HTTP API with django-anymail (Postmark, faked on 127.0.0.1)."""

from __future__ import annotations

import pytest

from channels_adapters.base import OutboundMessage
from channels_adapters.errors import PermanentChannelError, TransientChannelError
from channels_adapters.handler import channels
from tests.channels_adapters.helpers import send
from tests.fake_esp import FakePostmarkServer

TOKEN = "postmark-test-token"


@pytest.fixture
def postmark():
    server = FakePostmarkServer(TOKEN)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def esp_channel(settings, api_url: str, **options):
    settings.NOTIFICATION_CHANNELS = {"email": {"BACKEND": "channels_adapters.email.EmailChannel", "OPTIONS": {
        "backend": "anymail.backends.postmark.EmailBackend",
        "connection": {"server_token": TOKEN, "api_url": api_url},
        "from_email": "Signalbox <noreply@signalbox.test>", **options,
    }}}
    return channels["email"]


def message(delivery_id: int, address: str) -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id, address=address, subject=f"Receipt {delivery_id}", text="Thanks",
                           html="<p>Thanks</p>", idempotency_key=f"sb.{delivery_id}.0123abcd")


def test_each_message_is_one_api_call_with_our_message_id_and_the_esps_id_comes_back(settings, postmark):
    channel = esp_channel(settings, postmark.api_url, concurrency=3)

    results = send(channel, [message(n, f"u{n}@example.com") for n in range(6)])

    assert all(result.ok for result in results), [r.error for r in results]
    by_to = {m.to: m for m in postmark.received}
    for n, result in enumerate(results):
        received = by_to[f"u{n}@example.com"]
        # The ESP's id is what its tracking webhooks name; the Message-ID header is ours, the
        # same on every attempt of the delivery.
        assert result.provider_message_id == received.esp_message_id
        assert received.message_id_header == f"<sb.{n}.0123abcd@signalbox.test>"


@pytest.mark.parametrize(("status", "error_type", "reason"), [
    (422, PermanentChannelError, "esp_http_422"),
    (500, TransientChannelError, "esp_http_500"),
    (429, TransientChannelError, "esp_http_429"),
    (401, TransientChannelError, "esp_http_401"),
])
def test_api_errors_are_typed_by_what_they_mean_for_a_retry(settings, postmark, status, error_type, reason):
    postmark.refuse["bad@example.com"] = (status, {"ErrorCode": 300 if status == 422 else 1, "Message": "No."})
    channel = esp_channel(settings, postmark.api_url)

    bad, good = send(channel, [message(1, "bad@example.com"), message(2, "good@example.com")])

    assert isinstance(bad.error, error_type), bad.error
    assert bad.error.reason == reason
    assert good.ok


def test_an_unreachable_api_is_transient(settings, unused_port):
    channel = esp_channel(settings, f"http://127.0.0.1:{unused_port}/")

    [result] = send(channel, [message(1, "a@example.com")])

    assert isinstance(result.error, TransientChannelError) and result.error.reason == "esp_connect"
