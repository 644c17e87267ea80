"""WeChat subscribe messages (订阅通知) beside template messages: the alias's OPTIONS say which
message template goes out as which, and wechatpy sends each to its own endpoint of the local fake
(``tests/fake_wechat.py``) with the same outcomes: success, permanent, transient, unknown."""

from __future__ import annotations

import re

import pytest

from channels_adapters.errors import (
    ChannelConfigurationError,
    PermanentChannelError,
    TransientChannelError,
    UnknownOutcomeError,
)
from channels_adapters.handler import channels
from tests.channels_adapters.helpers import send
from tests.channels_adapters.test_wechat import message, openid

TEMPLATES = {
    "order-shipped": {"kind": "subscribe", "template_code": "sub-shipped",
                      "params": {"thing1": "order.number", "thing2": "carrier"},
                      "page": "https://shop.example.com/orders"},
    "order-paid": {"kind": "subscribe", "template_code": "sub-paid", "params": {"amount1": "amount"},
                   "miniprogram": {"appid": "wxmini0123456789", "pagepath": "pages/order/index"}},
    "welcome": {"template_code": "tmpl-welcome", "params": {"first": "headline"},
                "miniprogram": {"appid": "wxmini0123456789", "pagepath": "pages/home"}},
}
SHIPPED = {"order": {"number": "A-17"}, "carrier": "顺丰"}


@pytest.fixture
def wechat_templates() -> dict:
    return TEMPLATES  # for the ``wechat`` fixture (conftest), with its default template


def shipped(n: int) -> object:
    return message(n, openid(n), template="order-shipped", context=SHIPPED, url="https://shop.example.com/o/17")


def test_a_subscribe_template_goes_out_as_a_subscribe_message_beside_template_messages(wechat):
    subscribe, paid, template, plain = send(channels["wechat"], [
        shipped(1),
        message(2, openid(2), template="order-paid", context={"amount": "¥99.00"}, url="https://shop.example.com/o/2"),
        message(3, openid(3), template="welcome", context={"headline": "欢迎"}, url="https://shop.example.com/"),
        message(4, openid(4), text="A notice"),
    ])

    assert all(r.ok for r in (subscribe, paid, template, plain))
    by_openid = {r.touser: r for r in wechat.messages}
    assert {n: by_openid[openid(n)].kind for n in range(1, 5)} == {
        1: "subscribe", 2: "subscribe", 3: "template", 4: "template"}
    sub = by_openid[openid(1)]
    assert (sub.template_id, sub.page) == ("sub-shipped", "https://shop.example.com/orders")  # the mapped page wins
    assert sub.data == {"thing1": {"value": "A-17"}, "thing2": {"value": "顺丰"}}
    assert subscribe.provider_message_id == str(sub.msgid)
    # Without a mapped page, a subscribe message opens the message's link; a mini program is passed on.
    assert by_openid[openid(2)].page == "https://shop.example.com/o/2"
    assert by_openid[openid(2)].miniprogram == {"appid": "wxmini0123456789", "pagepath": "pages/order/index"}
    assert by_openid[openid(3)].miniprogram == {"appid": "wxmini0123456789", "pagepath": "pages/home"}
    assert by_openid[openid(3)].url == "https://shop.example.com/"


def test_an_accepted_subscribe_message_without_a_msgid_is_still_sent(wechat):
    wechat.subscribe_msgids = False

    subscribe, template = send(channels["wechat"], [shipped(1), message(2, openid(2), text="A notice")])

    assert subscribe.ok and subscribe.provider_message_id == ""  # errcode 0 is WeChat's acceptance
    assert template.ok and template.provider_message_id.isdigit()


@pytest.mark.django_db
def test_a_refused_subscribe_message_fails_alone_and_the_person_stays_reachable(wechat):
    """43101 is consent to one subscribe template (a one-time subscription is used up by its one
    message): that delivery fails, nothing is suppressed, and the template messages (an order
    receipt) and the subscribe messages they accept later still reach them."""
    from notifications.models import Suppression

    wechat.refused.add(openid(1))

    refused, accepted = send(channels["wechat"], [shipped(1), shipped(2)])

    assert isinstance(refused.error, PermanentChannelError) and refused.error.reason == "wechat:43101"
    assert accepted.ok
    assert not Suppression.objects.exists()
    [receipt] = send(channels["wechat"], [message(3, openid(1), template="welcome", context={"headline": "Paid"})])
    assert receipt.ok and wechat.messages[-1].touser == openid(1) and wechat.messages[-1].kind == "template"
    wechat.refused.discard(openid(1))  # they accept the subscribe template in the pop-up
    [again] = send(channels["wechat"], [shipped(1)])
    assert again.ok and wechat.messages[-1].touser == openid(1) and wechat.messages[-1].kind == "subscribe"


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda s: s.invalid_openids.add(openid(1)), "wechat:40003"),
    (lambda s: setattr(s, "approved_templates", {"tmpl-notice"}), "wechat:40037"),
])
def test_invalid_openid_or_subscribe_template_is_permanent(wechat, setup, reason):
    setup(wechat)

    [result] = send(channels["wechat"], [shipped(1)])

    assert isinstance(result.error, PermanentChannelError) and result.error.reason == reason


@pytest.mark.parametrize("invalidate", ["expire_tokens", "revoke_tokens"])
def test_a_refused_token_is_refreshed_and_the_subscribe_message_sent_once_more(wechat, invalidate):
    send(channels["wechat"], [shipped(1)])
    getattr(wechat, invalidate)()

    [result] = send(channels["wechat"], [shipped(2)])

    assert result.ok
    assert wechat.token_fetches == 2
    assert [(r.kind, r.outcome) for r in wechat.requests[1:]] == [
        ("subscribe", "token_expired" if invalidate == "expire_tokens" else "token_invalid"),
        ("subscribe", "accepted")]


def test_system_busy_and_http_errors_are_transient_for_subscribe_messages(wechat):
    wechat.busy.add(openid(1))
    wechat.unavailable[openid(2)] = 1

    busy, bad_gateway = send(channels["wechat"], [shipped(1), shipped(2)])

    assert isinstance(busy.error, TransientChannelError) and busy.error.reason == "wechat:-1"
    assert isinstance(bad_gateway.error, TransientChannelError) and bad_gateway.error.reason == "wechat_http_502"


@pytest.mark.parametrize(("misbehave", "reason"), [("slow", "wechat_timeout"), ("dropped", "wechat_no_reply")])
def test_no_reply_to_a_subscribe_message_is_an_unknown_outcome(wechat, misbehave, reason):
    getattr(wechat, misbehave).add(openid(1))

    lost, other = send(channels["wechat"], [shipped(1), shipped(2)])

    assert isinstance(lost.error, UnknownOutcomeError) and lost.error.reason == reason
    assert ("subscribe", misbehave) in [(r.kind, r.outcome) for r in wechat.requests if r.touser == openid(1)]
    assert other.ok


@pytest.mark.parametrize(("spec", "complaint"), [
    ({"kind": "newsletter", "template_code": "x"}, "['kind'] must be"),
    ({"template_code": "x", "page": "https://shop.example.com/"}, "for subscribe messages only"),
    ({"kind": "subscribe", "template_code": "x", "page": 17}, "['page'] is a URL"),
    ({"kind": "subscribe", "template_code": "x", "miniprogram": "wxmini"}, "['miniprogram'] must be"),
    ({"kind": "subscribe", "template_code": "x", "miniprogram": {"pagepath": "p"}}, "['miniprogram'] must be"),
    ({"kind": "subscribe", "template_code": "x", "scene": 1}, "unknown keys scene"),
])
def test_a_malformed_template_mapping_is_refused_when_the_alias_is_built(spec, complaint):
    from channels_adapters.wechat import WeChatChannel

    with pytest.raises(ChannelConfigurationError, match=re.escape(complaint)):
        WeChatChannel("wechat", app_id="wx1", app_secret="s", templates={"bad": spec})
