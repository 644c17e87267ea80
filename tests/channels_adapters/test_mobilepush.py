"""Mobile push over FCM HTTP v1: pyfcm and google-auth against a local fake of FCM and Google's
OAuth endpoint (``tests/fake_fcm.py``); device registration; unregistered tokens removed."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from channels_adapters.base import OutboundMessage
from channels_adapters.devices import device_register, device_unregister
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


@pytest.fixture
def fcm(settings, fake_fcm):
    settings.NOTIFICATION_CHANNELS = {"mobilepush": {"BACKEND": "channels_adapters.mobilepush.MobilePushChannel",
                                                     "OPTIONS": {"service_account": fake_fcm.service_account_info(),
                                                                 "base_url": fake_fcm.base_url, "timeout": 0.5}}}
    return fake_fcm


def token(n: int) -> str:
    return f"fcm-token-{n:04d}:APA91b" + "x" * 20


def message(delivery_id: int, address: str) -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id, address=address, subject="Order shipped",
                           text="Your order A-17 is on its way.", url="https://shop.example.com/orders/17")


def test_a_push_reaches_the_device_with_title_body_and_link(fcm):
    [result] = send(channels["mobilepush"], [message(1, token(1))])

    assert result.ok
    [sent] = fcm.messages
    assert result.provider_message_id == sent.name
    assert sent.message == {"token": token(1), "notification": {"title": "Order shipped",
                                                                "body": "Your order A-17 is on its way."},
                            "data": {"url": "https://shop.example.com/orders/17"}}


def test_lanes_share_one_oauth_token_over_kept_alive_connections(fcm, settings):
    settings.NOTIFICATION_CHANNELS["mobilepush"]["OPTIONS"]["concurrency"] = 4
    channels.reset()
    fcm.latency = 0.02

    first = send(channels["mobilepush"], [message(n, token(n)) for n in range(12)])
    second = send(channels["mobilepush"], [message(n, token(n)) for n in range(12, 16)])

    assert all(r.ok for r in first + second)
    assert fcm.token_fetches == 1
    assert fcm.max_in_flight <= 4
    assert fcm.connections <= 1 + 4 + 4  # the token request, then one kept-alive connection per lane and batch


def test_an_unregistered_token_fails_permanently_and_the_device_is_removed(fcm):
    user = UserFactory()
    device_register(user=user, token=token(1))
    device_register(user=user, token=token(2))
    fcm.unregistered.add(token(1))
    fcm.mismatched.add(token(2))

    gone, mismatched, ok = send(channels["mobilepush"], [message(1, token(1)), message(2, token(2)),
                                                          message(3, token(3))])

    assert isinstance(gone.error, PermanentChannelError) and gone.error.reason == "fcm:UNREGISTERED"
    assert isinstance(mismatched.error, PermanentChannelError) and mismatched.error.reason == "fcm:SENDER_ID_MISMATCH"
    assert ok.ok
    assert not PushDevice.objects.filter(token__in=[token(1), token(2)]).exists()


def test_an_invalid_argument_is_permanent_but_keeps_the_device(fcm):
    device_register(user=UserFactory(), token=token(1))
    fcm.invalid.add(token(1))

    [result] = send(channels["mobilepush"], [message(1, token(1))])

    assert isinstance(result.error, PermanentChannelError) and result.error.reason == "fcm:INVALID_ARGUMENT"
    assert PushDevice.objects.filter(token=token(1)).exists()


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda s: s.quota.add(token(1)), "fcm:QUOTA_EXCEEDED"),
    (lambda s: s.unavailable.__setitem__(token(1), 1), "fcm:UNAVAILABLE"),
])
def test_quota_and_unavailable_are_transient_with_retry_after_and_a_retry_is_accepted(fcm, setup, reason):
    setup(fcm)

    [first] = send(channels["mobilepush"], [message(1, token(1))])
    fcm.quota.clear()
    [retried] = send(channels["mobilepush"], [message(1, token(1))])

    assert isinstance(first.error, TransientChannelError) and first.error.reason == reason
    assert first.error.retry_after == 30.0
    assert retried.ok
    assert len([r for r in fcm.requests if r.token == token(1)]) == 2  # the SDK did not retry on its own


def test_a_refused_access_token_is_refreshed_and_the_push_sent_once_more(fcm):
    send(channels["mobilepush"], [message(1, token(1))])
    fcm.revoke_tokens()

    [result] = send(channels["mobilepush"], [message(2, token(2))])

    assert result.ok and fcm.token_fetches == 2


@pytest.mark.parametrize(("misbehave", "reason"), [("slow", "fcm_timeout"), ("dropped", "fcm_no_reply")])
def test_no_reply_after_the_request_arrived_is_an_unknown_outcome(fcm, misbehave, reason):
    getattr(fcm, misbehave).add(token(1))

    lost, other = send(channels["mobilepush"], [message(1, token(1)), message(2, token(2))])

    assert isinstance(lost.error, UnknownOutcomeError) and lost.error.reason == reason
    assert other.ok


def test_an_unreachable_service_is_transient(settings, fake_fcm, unused_port):
    info = {**fake_fcm.service_account_info(), "token_uri": f"http://127.0.0.1:{unused_port}/token"}
    settings.NOTIFICATION_CHANNELS = {"mobilepush": {"BACKEND": "channels_adapters.mobilepush.MobilePushChannel",
                                                     "OPTIONS": {"service_account": info, "timeout": 0.5,
                                                                 "base_url": f"http://127.0.0.1:{unused_port}"}}}

    [result] = send(channels["mobilepush"], [message(1, token(1))])

    assert isinstance(result.error, TransientChannelError) and result.error.reason == "fcm_auth"


@pytest.mark.parametrize("address", ["", "has space", "x" * 513])
def test_bad_tokens_fail_without_contacting_fcm(fcm, address):
    [result] = send(channels["mobilepush"], [message(1, address)])
    assert isinstance(result.error, InvalidAddressError)
    assert fcm.connections == 0


def test_a_missing_service_account_is_a_configuration_error(settings):
    from channels_adapters.mobilepush import MobilePushChannel

    settings.FCM_SERVICE_ACCOUNT_FILE = ""
    with pytest.raises(ChannelConfigurationError, match="service_account"):
        MobilePushChannel("mobilepush")
    with pytest.raises(ChannelConfigurationError, match="unreadable"):
        MobilePushChannel("mobilepush", service_account={"type": "service_account"})


# Registration ------------------------------------------------------------------------------


def test_registering_a_token_again_moves_it_to_the_new_user_instead_of_duplicating_it():
    ada, bob = UserFactory(), UserFactory()
    device_register(user=ada, token=token(1), app_id="com.example.shop")
    device_register(user=bob, token=token(1), platform="apns", app_id="com.example.shop")

    [device] = PushDevice.objects.all()
    assert (device.user, device.platform) == (bob, "apns")
    assert not device_unregister(user=ada, token=token(1))  # not hers any more
    assert device_unregister(user=bob, token=token(1))
    assert not PushDevice.objects.exists()


@pytest.mark.parametrize(("value", "platform"), [("", "fcm"), ("a b", "fcm"), ("x" * 513, "fcm"), ("ok", "gcm")])
def test_bad_registrations_are_validation_errors(value, platform):
    with pytest.raises(ValidationError):
        device_register(user=UserFactory(), token=value, platform=platform)
