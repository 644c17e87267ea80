"""Aliyun and Tencent Cloud SMS: the real SDKs against local fakes of their APIs
(``tests/fake_aliyun.py``, ``tests/fake_tencent.py``). Each test runs once per provider."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import pytest

from channels_adapters.base import OutboundMessage
from channels_adapters.errors import (
    ChannelConfigurationError,
    InvalidAddressError,
    PermanentChannelError,
    TransientChannelError,
    UnknownOutcomeError,
)
from channels_adapters.handler import channels
from tests.channels_adapters.helpers import send

TEMPLATES = {
    "order-shipped": {"template_code": "SMS_100", "params": ["order.number", "carrier"]},
    "login-code": {"template_code": "SMS_200", "params": {"code": "code"}, "sign_name": "Signalbox 安全"},
}
DEFAULT = {"template_code": "SMS_900", "text_param": "content"}


@dataclass
class Provider:
    name: str
    backend: str
    fake: Any
    options: dict
    wire_number: Callable[[str], str]  # how the SDK writes an E.164 number on the wire
    provider_id: Callable[[Any], str]  # a received request's id as the send returns it
    params: Callable[[Any], Any]  # a received request's template variables
    codes: dict  # outcome -> reason the adapter reports


def number(n: int) -> str:
    return f"+861380013{n:04d}"


@pytest.fixture(params=["aliyun", "tencent"])
def provider(request, settings) -> Provider:
    if request.param == "aliyun":
        fake = request.getfixturevalue("fake_aliyun")
        provider = Provider(
            name="aliyun", backend="channels_adapters.aliyun_sms.AliyunSmsChannel", fake=fake,
            options={"access_key_id": fake.access_key_id, "access_key_secret": fake.access_key_secret},
            wire_number=lambda e164: e164.removeprefix("+86") if e164.startswith("+86") else e164.lstrip("+"),
            provider_id=lambda r: r.biz_id, params=lambda r: r.params,
            codes={"invalid": "aliyun:isv.MOBILE_NUMBER_ILLEGAL", "template": "aliyun:isv.SMS_TEMPLATE_ILLEGAL",
                   "throttled": "aliyun:isv.BUSINESS_LIMIT_CONTROL", "unavailable": "aliyun:ServiceUnavailable",
                   "timeout": "aliyun_timeout", "dropped": "aliyun_no_reply", "connect": "aliyun_connect"},
        )
    else:
        fake = request.getfixturevalue("fake_tencent")
        provider = Provider(
            name="tencent", backend="channels_adapters.tencent_sms.TencentSmsChannel", fake=fake,
            options={"secret_id": fake.secret_id, "secret_key": fake.secret_key, "sms_sdk_app_id": "1400000001"},
            wire_number=lambda e164: e164, provider_id=lambda r: r.serial_no, params=lambda r: r.params,
            codes={"invalid": "tencent:InvalidParameterValue.IncorrectPhoneNumber",
                   "template": "tencent:FailedOperation.TemplateIncorrectOrUnapproved",
                   "throttled": "tencent:LimitExceeded.PhoneNumberThirtySecondLimit",
                   "unavailable": "tencent_http_error", "timeout": "tencent_timeout", "dropped": "tencent_no_reply",
                   "connect": "tencent_connect"},
        )
    provider.options = {**provider.options, "base_url": fake.base_url, "timeout": 0.5, "sign_name": "Signalbox",
                        "templates": TEMPLATES, "default_template": DEFAULT}
    settings.NOTIFICATION_CHANNELS = {"sms-cn": {"BACKEND": provider.backend, "OPTIONS": provider.options}}
    return provider


def message(delivery_id: int, address: str, *, template: str | None = None, context: dict | None = None,
            text: str = "") -> OutboundMessage:
    metadata = {"template": {"key": template, "context": context or {}}} if template else {}
    return OutboundMessage(delivery_id=delivery_id, address=address, text=text or f"您的验证码 {delivery_id}",
                           metadata=metadata)


def test_a_mapped_template_goes_out_with_its_code_signature_and_variables(provider):
    channel = channels["sms-cn"]
    [shipped, code] = send(channel, [
        message(1, number(1), template="order-shipped", context={"order": {"number": "A-17"}, "carrier": "顺丰"}),
        message(2, number(2), template="login-code", context={"code": 4321}),
    ])

    assert shipped.ok and code.ok
    received = {r.phone: r for r in provider.fake.messages}
    first, second = received[provider.wire_number(number(1))], received[provider.wire_number(number(2))]
    assert provider.provider_id(first) == shipped.provider_message_id
    assert provider.provider_id(second) == code.provider_message_id
    codes = (first.template_code, second.template_code) if provider.name == "aliyun" else (first.template_id, second.template_id)
    assert codes == ("SMS_100", "SMS_200")
    assert (first.sign_name, second.sign_name) == ("Signalbox", "Signalbox 安全")
    if provider.name == "aliyun":  # named variables
        assert provider.params(first) == {"number": "A-17", "carrier": "顺丰"}
        assert provider.params(second) == {"code": "4321"}
        assert first.out_id == "1"
    else:  # positional variables, in the order the mapping lists them
        assert provider.params(first) == ["A-17", "顺丰"]
        assert provider.params(second) == ["4321"]
        assert first.session_context == "1"


def test_an_unmapped_message_goes_out_through_the_default_template_with_its_text(provider):
    [result] = send(channels["sms-cn"], [message(1, number(1), text="订单已发货")])

    assert result.ok
    [received] = provider.fake.messages
    assert provider.params(received) in ({"content": "订单已发货"}, ["订单已发货"])


def test_without_a_default_template_an_unmapped_message_fails_before_the_provider_is_contacted(provider, settings):
    options = {k: v for k, v in provider.options.items() if k != "default_template"}
    settings.NOTIFICATION_CHANNELS = {"sms-cn": {"BACKEND": provider.backend, "OPTIONS": options}}

    [unmapped, missing] = send(channels["sms-cn"], [
        message(1, number(1), template="not-mapped"),
        message(2, number(2), template="order-shipped", context={"order": {}}),
    ])

    assert isinstance(unmapped.error, PermanentChannelError) and unmapped.error.reason == "no_provider_template"
    assert isinstance(missing.error, PermanentChannelError) and missing.error.reason == "template_param_missing"
    assert provider.fake.requests == [] and provider.fake.connections == 0


def test_invalid_number_is_a_permanent_failure_of_that_message_only(provider):
    provider.fake.invalid_numbers.add(provider.wire_number(number(1)))

    refused, accepted = send(channels["sms-cn"], [message(1, number(1)), message(2, number(2))])

    assert isinstance(refused.error, PermanentChannelError) and refused.error.reason == provider.codes["invalid"]
    assert accepted.ok


def test_a_template_not_approved_is_a_permanent_failure(provider):
    provider.fake.approved_templates = {"SMS_100"}

    [result] = send(channels["sms-cn"], [message(1, number(1))])  # the default template, SMS_900

    assert isinstance(result.error, PermanentChannelError)
    assert result.error.reason == provider.codes["template"]


def test_throttling_is_transient_with_a_retry_after(provider):
    provider.fake.throttled_numbers.add(provider.wire_number(number(1)))

    [result] = send(channels["sms-cn"], [message(1, number(1))])

    assert isinstance(result.error, TransientChannelError) and result.error.reason == provider.codes["throttled"]
    assert result.error.retry_after and result.error.retry_after > 0


def test_a_5xx_is_transient_and_a_later_retry_is_accepted(provider):
    provider.fake.unavailable[provider.wire_number(number(1))] = 1

    [first] = send(channels["sms-cn"], [message(1, number(1))])
    [retried] = send(channels["sms-cn"], [message(1, number(1))])

    assert isinstance(first.error, TransientChannelError) and first.error.reason == provider.codes["unavailable"]
    assert retried.ok
    assert [r.outcome for r in provider.fake.requests] == ["unavailable", "accepted"]


def test_a_timeout_after_the_request_arrived_is_an_unknown_outcome(provider):
    provider.fake.slow.add(provider.wire_number(number(1)))

    slow, other = send(channels["sms-cn"], [message(1, number(1)), message(2, number(2))])

    assert isinstance(slow.error, UnknownOutcomeError) and slow.error.reason == provider.codes["timeout"]
    # The provider has the request (and may send the SMS): never reported as "not sent".
    assert (provider.wire_number(number(1)), "slow") in [(r.phone, r.outcome) for r in provider.fake.requests]
    assert other.ok


def test_a_connection_dropped_after_the_request_arrived_is_an_unknown_outcome(provider):
    provider.fake.dropped.add(provider.wire_number(number(1)))

    [result] = send(channels["sms-cn"], [message(1, number(1))])

    assert isinstance(result.error, UnknownOutcomeError) and result.error.reason == provider.codes["dropped"]


def test_an_unreachable_provider_is_transient_because_nothing_was_sent(provider, settings, unused_port):
    options = {**provider.options, "base_url": f"http://127.0.0.1:{unused_port}"}
    settings.NOTIFICATION_CHANNELS = {"sms-cn": {"BACKEND": provider.backend, "OPTIONS": options}}

    results = send(channels["sms-cn"], [message(1, number(1)), message(2, number(2))])

    assert [type(r.error) for r in results] == [TransientChannelError, TransientChannelError]
    assert {r.error.reason for r in results} == {provider.codes["connect"]}


def test_wrong_credentials_are_refused_by_the_server_and_fail_as_transient(provider, settings):
    key = "access_key_id" if provider.name == "aliyun" else "secret_id"
    settings.NOTIFICATION_CHANNELS = {"sms-cn": {"BACKEND": provider.backend,
                                                 "OPTIONS": {**provider.options, key: "wrong"}}}

    [result] = send(channels["sms-cn"], [message(1, number(1))])

    assert isinstance(result.error, TransientChannelError)
    assert provider.fake.messages == []


@pytest.mark.parametrize("address", ["12345", "not a number", "", "+86 138"])
def test_invalid_numbers_fail_without_contacting_the_provider(provider, address):
    [result] = send(channels["sms-cn"], [message(1, address)])

    assert isinstance(result.error, InvalidAddressError)
    assert provider.fake.connections == 0


def test_a_batch_goes_out_over_bounded_concurrent_kept_alive_connections(provider, settings):
    settings.NOTIFICATION_CHANNELS = {"sms-cn": {"BACKEND": provider.backend,
                                                 "OPTIONS": {**provider.options, "concurrency": 4}}}
    provider.fake.latency = 0.02

    results = send(channels["sms-cn"], [message(n, number(n)) for n in range(20)])

    assert all(r.ok for r in results)
    assert len({r.provider_message_id for r in results}) == 20
    assert provider.fake.max_in_flight <= 4
    # Kept alive and reused: 20 messages over at most 4 connections (Tencent: one per lane;
    # Aliyun: the SDK's process-wide pool for the host, sized to the lanes).
    assert provider.fake.connections <= 4


def test_the_features_are_sms_features(provider):
    features = channels.features("sms-cn")
    assert features.address_form == "phone" and features.address_source == "profile_phone"
    assert not features.safe_to_resend_after_lost_lease


def test_configuration_errors_are_caught_when_the_adapter_is_built(provider, settings):
    from django.utils.module_loading import import_string

    backend = import_string(provider.backend)
    with pytest.raises(ChannelConfigurationError, match="template_code"):
        backend("sms-cn", **{**provider.options, "templates": {"x": {"params": ["a"]}}})
    with pytest.raises(ChannelConfigurationError, match="text_param"):
        backend("sms-cn", **{**provider.options, "default_template": {"template_code": "SMS_1"}})
    with pytest.raises(ChannelConfigurationError, match="sign_name"):
        backend("sms-cn", **{**provider.options, "sign_name": ""})
    with pytest.raises(ChannelConfigurationError, match="tempaltes"):
        backend("sms-cn", **{**provider.options, "tempaltes": {}})
    settings.ALIYUN_ACCESS_KEY_ID = settings.TENCENTCLOUD_SECRET_ID = ""
    key = "access_key_id" if provider.name == "aliyun" else "secret_id"
    with pytest.raises(ChannelConfigurationError, match=key):
        backend("sms-cn", **{k: v for k, v in provider.options.items() if k != key})
