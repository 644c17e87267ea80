"""WeChat Official Account template messages: wechatpy against a local fake of the WeChat API
(``tests/fake_wechat.py``). The access token is shared through the cache and fetched once."""

from __future__ import annotations

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
from tests.channels_adapters.conftest import WECHAT_DEFAULT_TEMPLATE
from tests.channels_adapters.helpers import send

TEMPLATES = {"order-shipped": {"template_code": "tmpl-shipped",
                               "params": {"first": "headline", "keyword1": "order.number", "keyword2": "carrier"}}}


def openid(n: int) -> str:
    return f"oAbCdEfGhIjKlMnOpQrStUv{n:05d}"


@pytest.fixture
def wechat_templates() -> dict:
    return TEMPLATES  # for the ``wechat`` fixture (conftest)


def message(delivery_id: int, address: str, *, template: str | None = None, context: dict | None = None,
            text: str = "", url: str = "") -> OutboundMessage:
    metadata = {"template": {"key": template, "context": context or {}}} if template else {}
    return OutboundMessage(delivery_id=delivery_id, address=address, text=text or f"Notice {delivery_id}", url=url,
                           metadata=metadata)


def test_a_template_message_goes_to_the_openid_with_its_fields_and_link(wechat):
    [result] = send(channels["wechat"], [message(
        1, openid(1), template="order-shipped", url="https://shop.example.com/orders/17",
        context={"headline": "您的订单已发货", "order": {"number": "A-17"}, "carrier": "顺丰"},
    )])

    assert result.ok
    [sent] = wechat.messages
    assert result.provider_message_id == str(sent.msgid)
    assert (sent.touser, sent.template_id, sent.url) == (openid(1), "tmpl-shipped", "https://shop.example.com/orders/17")
    assert sent.data == {"first": {"value": "您的订单已发货"}, "keyword1": {"value": "A-17"}, "keyword2": {"value": "顺丰"}}


def test_an_unmapped_message_uses_the_default_template_with_its_text(wechat):
    [result] = send(channels["wechat"], [message(1, openid(1), text="Your parcel is on its way")])

    assert result.ok
    assert wechat.messages[0].data == {"first": {"value": "Your parcel is on its way"}}
    assert wechat.messages[0].template_id == "tmpl-notice"


def test_without_a_mapping_or_default_the_error_names_wechat_templates_not_sms(wechat, settings):
    del settings.NOTIFICATION_CHANNELS["wechat"]["OPTIONS"]["default_template"]
    channels.reset()

    [result] = send(channels["wechat"], [message(1, openid(1), template="welcome")])

    assert isinstance(result.error, PermanentChannelError) and result.error.reason == "no_provider_template"
    assert str(result.error).startswith("No WeChat template message is mapped for message template 'welcome'")
    assert "SMS" not in str(result.error) and wechat.messages == []


def test_lanes_starting_at_once_fetch_one_token_between_them_and_later_batches_reuse_it(wechat):
    wechat.token_fetch_delay = 0.2  # every lane asks while the first fetch is under way

    first = send(channels["wechat"], [message(n, openid(n)) for n in range(8)])
    second = send(channels["wechat"], [message(n, openid(n)) for n in range(8, 12)])

    assert all(r.ok for r in first + second)
    assert channels["wechat"].features.concurrency == 8
    assert wechat.token_fetches == 1
    assert len({r.access_token for r in wechat.requests}) == 1


@pytest.mark.parametrize("invalidate", ["expire_tokens", "revoke_tokens"])
def test_an_expired_or_invalid_token_is_refreshed_and_the_message_sent_once_more(wechat, invalidate):
    send(channels["wechat"], [message(1, openid(1))])
    getattr(wechat, invalidate)()

    [result] = send(channels["wechat"], [message(2, openid(2))])

    assert result.ok
    assert wechat.token_fetches == 2
    assert [(r.touser, r.outcome) for r in wechat.requests[1:]] == [
        (openid(2), "token_expired" if invalidate == "expire_tokens" else "token_invalid"), (openid(2), "accepted")]


def test_a_token_refused_again_after_the_refresh_is_transient_and_not_retried_further(wechat):
    wechat.reject_tokens = True

    [result] = send(channels["wechat"], [message(1, openid(1))])

    assert isinstance(result.error, TransientChannelError) and result.error.reason == "wechat:40001"
    assert len(wechat.requests) == 2 and wechat.token_fetches == 2


@pytest.mark.django_db
def test_not_subscribed_fails_permanently_and_suppresses_the_openid(wechat):
    from notifications.models import Suppression

    wechat.unsubscribed.add(openid(1))

    refused, accepted = send(channels["wechat"], [message(1, openid(1)), message(2, openid(2))])

    assert isinstance(refused.error, PermanentChannelError) and refused.error.reason == "wechat:43004"
    assert accepted.ok
    suppression = Suppression.objects.get(channel="wechat", address=openid(1))
    assert suppression.reason == "unsubscribe" and "43004" in suppression.note
    assert not Suppression.objects.filter(address=openid(2)).exists()


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda s: s.invalid_openids.add(openid(1)), "wechat:40003"),
    (lambda s: setattr(s, "approved_templates", {"tmpl-shipped"}), "wechat:40037"),
])
def test_invalid_openid_or_template_is_permanent(wechat, setup, reason):
    setup(wechat)

    [result] = send(channels["wechat"], [message(1, openid(1))])

    assert isinstance(result.error, PermanentChannelError) and result.error.reason == reason


def test_system_busy_and_http_errors_are_transient_and_a_retry_is_accepted(wechat):
    wechat.busy.add(openid(1))
    wechat.unavailable[openid(2)] = 1

    busy, bad_gateway = send(channels["wechat"], [message(1, openid(1)), message(2, openid(2))])
    wechat.busy.clear()
    retried = send(channels["wechat"], [message(1, openid(1)), message(2, openid(2))])

    assert isinstance(busy.error, TransientChannelError) and busy.error.reason == "wechat:-1"
    assert isinstance(bad_gateway.error, TransientChannelError) and bad_gateway.error.reason == "wechat_http_502"
    assert all(r.ok for r in retried)


@pytest.mark.parametrize(("misbehave", "reason"), [("slow", "wechat_timeout"), ("dropped", "wechat_no_reply")])
def test_no_reply_after_the_request_arrived_is_an_unknown_outcome(wechat, misbehave, reason):
    getattr(wechat, misbehave).add(openid(1))

    lost, other = send(channels["wechat"], [message(1, openid(1)), message(2, openid(2))])

    assert isinstance(lost.error, UnknownOutcomeError) and lost.error.reason == reason
    assert (openid(1), misbehave) in [(r.touser, r.outcome) for r in wechat.requests]
    assert other.ok


def test_an_unreachable_api_is_transient(wechat, settings, unused_port):
    settings.NOTIFICATION_CHANNELS["wechat"]["OPTIONS"]["base_url"] = f"http://127.0.0.1:{unused_port}"
    channels.reset()

    [result] = send(channels["wechat"], [message(1, openid(1))])

    assert isinstance(result.error, TransientChannelError)  # no token could even be fetched


def test_a_wrong_app_secret_is_transient_and_sends_nothing(wechat, settings):
    settings.NOTIFICATION_CHANNELS["wechat"]["OPTIONS"]["app_secret"] = "wrong"
    channels.reset()

    [result] = send(channels["wechat"], [message(1, openid(1))])

    assert isinstance(result.error, TransientChannelError) and result.error.reason == "wechat_token:40125"
    assert wechat.requests == []


@pytest.mark.parametrize("address", ["", "not an openid!", "x" * 65, "o/../admin"])
def test_addresses_that_are_not_openids_fail_without_contacting_wechat(wechat, address):
    [result] = send(channels["wechat"], [message(1, address)])

    assert isinstance(result.error, InvalidAddressError)
    assert wechat.connections == 0


def test_missing_credentials_are_a_configuration_error(settings):
    from channels_adapters.wechat import WeChatChannel

    settings.WECHAT_APP_ID = settings.WECHAT_APP_SECRET = ""
    with pytest.raises(ChannelConfigurationError, match="app_secret"):
        WeChatChannel("wechat", app_id="wx1", default_template=WECHAT_DEFAULT_TEMPLATE)


def test_a_per_process_cache_for_the_token_is_a_system_check_warning(settings):
    from channels_adapters.checks import wechat_token_cache_check

    settings.NOTIFICATION_CHANNELS = {"wechat": {"BACKEND": "channels_adapters.wechat.WeChatChannel", "OPTIONS": {}}}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                       "shared": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                  "LOCATION": "redis://127.0.0.1:6379/9"}}
    assert [w.id for w in wechat_token_cache_check()] == ["signalbox.W201"]

    settings.NOTIFICATION_CHANNELS = {"wechat": {"BACKEND": "channels_adapters.wechat.WeChatChannel",
                                                 "OPTIONS": {"cache": "shared"}}}
    assert wechat_token_cache_check() == []
