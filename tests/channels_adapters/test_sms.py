"""The SMS adapter: the real twilio SDK against a local fake of Twilio's API (``fake_twilio``)."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.channels_adapters.helpers import send
from channels_adapters import sms as sms_module
from channels_adapters.base import OutboundMessage
from channels_adapters.errors import (
    ChannelConfigurationError,
    InvalidAddressError,
    PermanentChannelError,
    TransientChannelError,
    UnknownOutcomeError,
)
from channels_adapters.handler import channels
from channels_adapters.sms import SmsChannel, sms_segments

FROM = "+15005550006"
SID_PATTERN = re.compile(r"^SM[0-9a-f]{32}$")


def number(n: int) -> str:
    return f"+1415555{n:04d}"


def message(delivery_id: int, address: str, **kwargs) -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id, address=address, **{"text": f"Code {delivery_id}", **kwargs})


@pytest.fixture
def sms_channel(settings, fake_twilio) -> SmsChannel:
    settings.SITE_URL = "https://signalbox.test"
    settings.NOTIFICATION_CHANNELS = {
        "sms": {
            "BACKEND": "channels_adapters.sms.SmsChannel",
            "OPTIONS": {
                "account_sid": fake_twilio.account_sid,
                "auth_token": fake_twilio.auth_token,
                "from_number": FROM,
                "base_url": fake_twilio.base_url,
                "timeout": 0.5,
            },
        }
    }
    return channels["sms"]


def test_accepted_message_returns_the_sid_the_server_issued(sms_channel, fake_twilio):
    [result] = send(sms_channel, [message(1, number(1), text="Your code is 1234")])

    assert result.ok
    assert SID_PATTERN.match(result.provider_message_id)
    [received] = fake_twilio.messages
    assert received.sid == result.provider_message_id
    assert received.account_sid == fake_twilio.account_sid
    assert (received.to, received.from_, received.body) == (number(1), FROM, "Your code is 1234")
    assert received.status_callback == "https://signalbox.test/webhooks/twilio/status/"


def test_requests_carry_basic_auth_with_the_account_credentials(sms_channel, fake_twilio):
    send(sms_channel, [message(1, number(1))])

    credentials = base64.b64encode(f"{fake_twilio.account_sid}:{fake_twilio.auth_token}".encode()).decode()
    assert fake_twilio.requests[0].authorization == f"Basic {credentials}"


def test_wrong_credentials_are_refused_by_the_server_and_fail_as_transient(fake_twilio):
    channel = SmsChannel(
        "sms", account_sid=fake_twilio.account_sid, auth_token="wrong", from_number=FROM, base_url=fake_twilio.base_url
    )

    [result] = send(channel, [message(1, number(1))])

    assert isinstance(result.error, TransientChannelError) and result.error.reason == "twilio:20003"
    assert fake_twilio.requests == []


def test_numbers_are_sent_in_e164(sms_channel, fake_twilio):
    [result] = send(sms_channel, [message(1, " +1 (415) 555-0002 ")])

    assert result.ok
    assert fake_twilio.messages[0].to == number(2)


def test_invalid_number_reply_fails_permanently_without_a_retry(sms_channel, fake_twilio):
    fake_twilio.invalid_numbers.add(number(1))

    results = send(sms_channel, [message(1, number(1)), message(2, number(2))])

    assert isinstance(results[0].error, PermanentChannelError)
    assert not isinstance(results[0].error, InvalidAddressError)
    assert results[0].error.reason == "twilio:21211"
    assert "not a valid phone number" in results[0].error.message
    assert results[1].ok
    assert sorted(request.to for request in fake_twilio.requests) == [number(1), number(2)]


def test_service_unavailable_fails_as_transient_and_a_later_retry_is_accepted(sms_channel, fake_twilio):
    fake_twilio.unavailable[number(1)] = 1
    fake_twilio.retry_after_seconds = "30"

    [first] = send(sms_channel, [message(1, number(1))])
    [retried] = send(sms_channel, [message(1, number(1))])

    assert isinstance(first.error, TransientChannelError)
    assert first.error.reason == "twilio:20503"
    assert first.error.retry_after == 30.0
    assert retried.ok
    assert [request.outcome for request in fake_twilio.requests] == ["unavailable", "accepted"]


def test_service_unavailable_without_retry_after_has_no_retry_after(sms_channel, fake_twilio):
    fake_twilio.unavailable[number(1)] = None

    [result] = send(sms_channel, [message(1, number(1))])

    assert isinstance(result.error, TransientChannelError) and result.error.retry_after is None


def test_timeout_after_the_request_was_received_is_an_unknown_outcome(sms_channel, fake_twilio):
    fake_twilio.slow_numbers.add(number(1))

    results = send(sms_channel, [message(1, number(1)), message(2, number(2))])

    assert isinstance(results[0].error, UnknownOutcomeError)
    assert results[0].error.reason == "twilio_timeout"
    # Twilio got it: re-sending would send the SMS twice.
    assert (number(1), "slow") in [(request.to, request.outcome) for request in fake_twilio.requests]
    assert results[1].ok


def test_connection_dropped_after_the_request_was_received_is_an_unknown_outcome(sms_channel, fake_twilio):
    fake_twilio.dropped_numbers.add(number(1))

    results = send(sms_channel, [message(1, number(1)), message(2, number(2))])

    assert isinstance(results[0].error, UnknownOutcomeError)
    assert results[0].error.reason == "twilio_no_reply"
    assert {request.to: request.outcome for request in fake_twilio.requests}[number(1)] == "dropped"
    assert results[1].ok


def test_unreachable_server_is_transient_because_nothing_was_sent(unused_port):
    channel = SmsChannel(
        "sms", account_sid="AC" + "0" * 32, auth_token="token", from_number=FROM,
        base_url=f"http://127.0.0.1:{unused_port}", timeout=2,
    )

    results = send(channel, [message(1, number(1)), message(2, number(2))])

    assert [type(result.error) for result in results] == [TransientChannelError, TransientChannelError]
    assert {result.error.reason for result in results} == {"twilio_connect"}


@pytest.mark.parametrize("address", ["12345", "+1 555", "not a number", "", "+44 7700 900123"])
def test_invalid_numbers_fail_without_contacting_the_server(sms_channel, fake_twilio, address):
    [result] = send(sms_channel, [message(1, address)])

    assert isinstance(result.error, InvalidAddressError)
    assert result.error.reason == "invalid_address"
    assert fake_twilio.requests == []
    assert fake_twilio.connections == 0


def test_a_batch_of_20_goes_over_16_lanes_each_with_one_client_and_one_kept_connection(
    sms_channel, fake_twilio, monkeypatch
):
    built = []
    real_client = sms_module.Client

    def counting_client(*args, **kwargs):
        built.append(real_client(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(sms_module, "Client", counting_client)

    results = send(sms_channel, [message(n, number(n)) for n in range(20)])

    assert all(result.ok for result in results)
    # Up to 16 lanes (a lane that is quick may take a second message before the last one
    # starts), each with its own client and one kept-alive connection.
    assert sms_channel.features.concurrency == 16
    assert 2 <= len(built) <= 16
    assert sorted(request.to for request in fake_twilio.messages) == sorted(number(n) for n in range(20))
    assert len({result.provider_message_id for result in results}) == 20
    assert fake_twilio.connections == len(built)
    assert len({request.peer for request in fake_twilio.requests}) == len(built)


def test_each_batch_gets_fresh_clients_and_releases_them(sms_channel, fake_twilio, monkeypatch):
    opened, closed = [], []
    real_open, real_close = SmsChannel.open_lane, SmsChannel.close_lane
    monkeypatch.setattr(SmsChannel, "open_lane", lambda self: opened.append(real_open(self)) or opened[-1])
    monkeypatch.setattr(SmsChannel, "close_lane", lambda self, lane: closed.append(lane) or real_close(self, lane))

    send(sms_channel, [message(1, number(1))])
    send(sms_channel, [message(2, number(2))])

    assert len(fake_twilio.messages) == 2
    assert len(opened) == 2 and opened[0] is not opened[1]
    assert closed == opened


def test_limits_are_declared_and_can_be_overridden():
    assert SmsChannel.max_batch_size == 100
    assert SmsChannel.max_per_second == 10
    channel = SmsChannel("sms", account_sid="AC1", auth_token="t", from_number=FROM, max_per_second=1)
    assert channel.max_per_second == 1.0


def test_credentials_default_to_settings_and_missing_ones_are_a_configuration_error(settings):
    settings.TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    settings.TWILIO_AUTH_TOKEN = "secret"
    settings.TWILIO_FROM_NUMBER = FROM
    settings.SITE_URL = "https://example.test"
    channel = SmsChannel("sms")
    assert (channel.account_sid, channel.auth_token, channel.from_number) == ("AC" + "1" * 32, "secret", FROM)
    assert channel.status_callback == "https://example.test/webhooks/twilio/status/"
    assert SmsChannel("sms", status_callback="").build_payload(message(1, number(1))).get("status_callback") is None

    settings.TWILIO_AUTH_TOKEN = ""
    with pytest.raises(ChannelConfigurationError, match="auth_token"):
        SmsChannel("sms")
    settings.TWILIO_FROM_NUMBER = ""  # every missing one is named at once, with its setting
    with pytest.raises(ChannelConfigurationError,
                       match=r"'sms': missing auth_token \(TWILIO_AUTH_TOKEN\), from_number \(TWILIO_FROM_NUMBER\)\.$"):
        SmsChannel("sms")


def test_unknown_options_are_refused(fake_twilio):
    with pytest.raises(ChannelConfigurationError, match="from_nubmer"):
        SmsChannel("sms", account_sid="AC1", auth_token="t", from_number=FROM, from_nubmer=FROM)


def test_base_url_rewrites_scheme_and_host_only():
    client = sms_module.RedirectingHttpClient(base_url="http://127.0.0.1:9999")
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1"
    assert client.rewrite(url) == "http://127.0.0.1:9999/2010-04-01/Accounts/AC1/Messages.json?x=1"
    assert sms_module.RedirectingHttpClient().rewrite(url) == url


# Segments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 0)),
        ("a" * 160, ("GSM-7", 1)),
        ("a" * 161, ("GSM-7", 2)),
        ("a" * 306, ("GSM-7", 2)),
        ("a" * 307, ("GSM-7", 3)),
        ("€" * 80, ("GSM-7", 1)),  # 160 septets
        ("€" + "a" * 159, ("GSM-7", 2)),  # 161 septets
        ("a" * 159 + "[", ("GSM-7", 2)),
        ("Ça coûte 5 €", ("UCS-2", 1)),  # û is not GSM-7
        ("中" * 70, ("UCS-2", 1)),
        ("中" * 71, ("UCS-2", 2)),
        ("中" * 134, ("UCS-2", 2)),
        ("中" * 135, ("UCS-2", 3)),
        ("😀" * 35, ("UCS-2", 1)),  # 70 code units
        ("😀" * 36, ("UCS-2", 2)),
        ("a" * 69 + "😀", ("UCS-2", 2)),  # the emoji makes it 71 units
        ("a" * 160 + "é", ("GSM-7", 2)),  # é is in the basic charset
    ],
)
def test_sms_segments(text, expected):
    assert sms_segments(text) == expected


def test_extension_characters_take_two_septets():
    for char in "€[]{}|^~\\\f":
        assert sms_segments(char * 80) == ("GSM-7", 1), char
        assert sms_segments(char * 80 + "a") == ("GSM-7", 2), char


def test_an_escape_sequence_or_surrogate_pair_is_never_split_across_segments():
    # 306 septets fit in two segments only if the escape pair does not straddle the boundary.
    assert sms_segments("a" * 151 + "€" + "a" * 153) == ("GSM-7", 2)
    assert sms_segments("a" * 152 + "€" + "a" * 152) == ("GSM-7", 3)
    assert sms_segments("中" * 66 + "😀" + "中" * 66) == ("UCS-2", 3)


mixed_text = st.text(alphabet=st.sampled_from(list("aZ9 @£\n€[]{}|^~\\éü中文😀🎉")) | st.characters(), max_size=400)


@given(mixed_text, mixed_text)
def test_segments_never_decrease_as_text_grows(text, more):
    assert sms_segments(text)[1] <= sms_segments(text + more)[1]


@given(mixed_text)
def test_only_empty_text_takes_no_segment(text):
    encoding, segments = sms_segments(text)
    assert encoding in ("GSM-7", "UCS-2")
    assert (segments == 0) == (text == "")
