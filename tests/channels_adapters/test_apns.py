"""APNs: aioapns against a local HTTP/2-over-TLS fake of Apple's push service (``tests/fake_apns.py``),
which checks the provider token (ES256 JWT); tokens Apple no longer accepts are removed."""

from __future__ import annotations

import pytest

from channels_adapters.base import OutboundMessage
from channels_adapters.devices import device_register
from channels_adapters.errors import (
    ChannelConfigurationError,
    InvalidAddressError,
    PermanentChannelError,
    TransientChannelError,
    UnknownOutcomeError,
)
from channels_adapters.handler import channels
from channels_adapters.models import PushDevice
from tests.channels_adapters.helpers import send
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def token(n: int) -> str:
    return f"{n:02x}" * 32


@pytest.fixture
def apns(settings, fake_apns):
    settings.NOTIFICATION_CHANNELS = {"apns": {"BACKEND": "channels_adapters.apns.ApnsChannel", "OPTIONS": {
        "key": fake_apns.provider_key_pem, "key_id": fake_apns.key_id, "team_id": fake_apns.team_id,
        "topic": "com.example.shop", "endpoint": f"127.0.0.1:{fake_apns.port}", "ca_file": fake_apns.ca_file,
        "timeout": 0.5,
    }}}
    return fake_apns


def message(delivery_id: int, address: str) -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id, address=address, subject="Order shipped", text="On its way.",
                           url="https://shop.example.com/orders/17", idempotency_key=f"sb.{delivery_id}.abc")


def test_a_push_reaches_the_device_signed_with_the_provider_token(apns):
    [result] = send(channels["apns"], [message(1, token(1))])

    assert result.ok
    [sent] = apns.messages
    assert (sent.token, sent.topic, sent.apns_id) == (token(1), "com.example.shop", result.provider_message_id)
    assert sent.payload == {"aps": {"alert": {"title": "Order shipped", "body": "On its way."}, "sound": "default"},
                            "url": "https://shop.example.com/orders/17"}


def test_a_resend_of_the_same_delivery_carries_the_same_apns_id(apns):
    [first] = send(channels["apns"], [message(1, token(1))])
    [again] = send(channels["apns"], [message(1, token(1))])
    assert first.provider_message_id == again.provider_message_id


def test_a_batch_goes_over_bounded_lanes_each_with_one_kept_connection(apns, settings):
    settings.NOTIFICATION_CHANNELS["apns"]["OPTIONS"]["concurrency"] = 3
    channels.reset()

    results = send(channels["apns"], [message(n, token(n)) for n in range(12)])

    assert all(r.ok for r in results)
    assert apns.connections <= 3


@pytest.mark.parametrize(("kind", "reason"), [("unregistered", "apns:Unregistered"),
                                               ("bad_tokens", "apns:BadDeviceToken")])
def test_a_token_apple_refuses_fails_permanently_and_is_removed(apns, kind, reason):
    device_register(user=UserFactory(), token=token(1), platform="apns")
    getattr(apns, kind).add(token(1))

    [result] = send(channels["apns"], [message(1, token(1))])

    assert isinstance(result.error, PermanentChannelError) and result.error.reason == reason
    assert not PushDevice.objects.exists()


@pytest.mark.parametrize(("kind", "reason"), [("throttled", "apns:TooManyRequests"),
                                               ("unavailable", "apns:ServiceUnavailable")])
def test_throttling_and_unavailable_are_transient(apns, kind, reason):
    getattr(apns, kind).add(token(1))

    refused, other = send(channels["apns"], [message(1, token(1)), message(2, token(2))])

    assert isinstance(refused.error, TransientChannelError) and refused.error.reason == reason
    assert other.ok


def test_a_wrong_provider_key_is_transient(apns, settings):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    settings.NOTIFICATION_CHANNELS["apns"]["OPTIONS"]["key"] = other
    channels.reset()

    [result] = send(channels["apns"], [message(1, token(1))])

    assert isinstance(result.error, TransientChannelError) and result.error.reason == "apns:InvalidProviderToken"


@pytest.mark.parametrize(("kind", "reason"), [("slow", "apns_timeout"), ("dropped", "apns_no_reply")])
def test_no_answer_after_the_push_left_is_an_unknown_outcome_and_the_next_push_still_goes(apns, kind, reason):
    getattr(apns, kind).add(token(1))

    lost, after = send(channels["apns"], [message(1, token(1)), message(2, token(2))])

    assert isinstance(lost.error, UnknownOutcomeError) and lost.error.reason == reason
    assert after.ok
    assert {r.token: r.outcome for r in apns.requests} == {token(1): kind, token(2): "accepted"}


def test_an_unreachable_service_is_transient(apns, settings, unused_port):
    settings.NOTIFICATION_CHANNELS["apns"]["OPTIONS"]["endpoint"] = f"127.0.0.1:{unused_port}"
    channels.reset()

    [result] = send(channels["apns"], [message(1, token(1))])

    assert isinstance(result.error, TransientChannelError) and result.error.reason == "apns_connect"


@pytest.mark.parametrize("address", ["", "not-hex", "ab" * 101])
def test_bad_tokens_fail_without_contacting_apple(apns, address):
    [result] = send(channels["apns"], [message(1, address)])
    assert isinstance(result.error, InvalidAddressError)
    assert apns.connections == 0


def test_missing_settings_are_a_configuration_error(settings):
    from channels_adapters.apns import ApnsChannel

    settings.APNS_KEY = settings.APNS_KEY_ID = settings.APNS_TEAM_ID = settings.APNS_TOPIC = ""
    with pytest.raises(ChannelConfigurationError, match="team_id"):
        ApnsChannel("apns", key="-----BEGIN PRIVATE KEY-----", key_id="K", topic="com.example")
