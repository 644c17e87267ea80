"""The WeChat Official Account's server URL: WeChat's signature is checked, template message
outcomes become receipts once, unfollow/follow suppress and lift the openid, and a refused
subscribe message suppresses nothing."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse

from notifications.models import DeliveryEvent, Suppression
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

TOKEN = "wechat-server-token"
OPENID = "oAbCdEfGhIjKlMnOpQrStUv00001"
ACCOUNT = "gh_0123456789ab"


@pytest.fixture(autouse=True)
def wechat(settings):
    settings.WECHAT_TOKEN = TOKEN
    settings.NOTIFICATION_CHANNELS = {
        "chat": {"BACKEND": "channels_adapters.wechat.WeChatChannel",
                 "OPTIONS": {"app_id": "wx1", "app_secret": "s", "default_template": {"template_code": "t",
                                                                                      "text_param": "first"}}},
    }


def signed(timestamp: str = "1733250000", nonce: str = "n0nce", token: str = TOKEN) -> dict:
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce}


def event_xml(event: str, **fields) -> str:
    extra = "".join(f"<{name}><![CDATA[{value}]]></{name}>" if isinstance(value, str) else f"<{name}>{value}</{name}>"
                    for name, value in fields.items())
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
            f"<CreateTime>1733250000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event>{extra}</xml>")


def post(client, body: str, params: dict | None = None):
    query = "&".join(f"{k}={v}" for k, v in (signed() if params is None else params).items())
    return client.post(f"{reverse('webhooks:wechat_events')}?{query}", body, content_type="text/xml")


def test_the_url_check_echoes_only_a_signed_request(client):
    url = reverse("webhooks:wechat_events")
    ok = client.get(url, {**signed(), "echostr": "123abc"})
    assert ok.status_code == 200 and ok.content == b"123abc"
    assert client.get(url, {**signed(token="other"), "echostr": "123abc"}).status_code == 404
    assert client.get(url, {"echostr": "123abc"}).status_code == 404


def test_template_job_finished_is_a_delivered_receipt_once(client):
    delivery = DeliveryFactory(channel="chat", address=OPENID, status="sent", provider_message_id="200228332")
    body = event_xml("TEMPLATESENDJOBFINISH", MsgID=200228332, Status="success")

    for _ in range(2):
        response = post(client, body)
        assert response.status_code == 200 and response.content == b"success"

    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert DeliveryEvent.objects.filter(delivery=delivery, kind="delivered", source="wechat").count() == 1


def test_a_blocked_template_message_fails_and_suppresses_the_openid(client):
    delivery = DeliveryFactory(channel="chat", address=OPENID, status="sent", provider_message_id="200228333")

    post(client, event_xml("TEMPLATESENDJOBFINISH", MsgID=200228333, Status="failed:user block"))

    assert DeliveryEvent.objects.get(delivery=delivery).kind == "failed"
    assert Suppression.objects.get(channel="chat", address=OPENID).reason == "unsubscribe"


def test_unfollow_suppresses_and_following_again_lifts_it(client):
    waiting = DeliveryFactory(channel="chat", address=OPENID, status="planned")

    post(client, event_xml("unsubscribe"))
    waiting.refresh_from_db()
    assert Suppression.objects.filter(channel="chat", address=OPENID, reason="unsubscribe").exists()
    assert waiting.status == "suppressed"

    post(client, event_xml("subscribe"))
    assert not Suppression.objects.filter(channel="chat", address=OPENID).exists()


def test_following_does_not_lift_a_suppression_staff_made(client):
    Suppression.objects.create(channel="chat", address=OPENID, reason="manual")

    post(client, event_xml("subscribe"))

    assert Suppression.objects.filter(channel="chat", address=OPENID, reason="manual").exists()


@pytest.mark.parametrize("params", [{}, {"signature": "0" * 40, "timestamp": "1", "nonce": "2"}])
def test_unsigned_posts_are_404_and_change_nothing(client, params):
    assert post(client, event_xml("unsubscribe"), params=params).status_code == 404
    assert not Suppression.objects.exists()


def test_without_a_configured_token_everything_is_refused(client, settings):
    settings.WECHAT_TOKEN = ""
    assert post(client, event_xml("unsubscribe"), params=signed(token="")).status_code == 404


@pytest.mark.parametrize("body", [
    "not xml", "<xml><Nothing/></xml>",
    # Entity expansion (a small "billion laughs"): refused by the parser, not expanded.
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
     '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
     '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]><xml><MsgType>&e;</MsgType></xml>'),
])
def test_malformed_bodies_are_a_400_not_a_500(client, body):
    assert post(client, body).status_code == 400
    assert not Suppression.objects.exists()


def test_an_empty_body_is_acknowledged(client):
    assert post(client, "").content == b"success"


class Raw:
    """Nested XML for ``event_xml`` (a str would be wrapped in CDATA)."""

    def __init__(self, xml: str) -> None:
        self.xml = xml

    def __str__(self) -> str:
        return self.xml


def items(*rows: dict) -> Raw:
    return Raw("".join("<List>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in row.items()) + "</List>"
                       for row in rows))


def test_subscribe_message_outcomes_are_receipts_once_each(client):
    ok = DeliveryFactory(channel="chat", address=OPENID, status="sent", provider_message_id="1700827132819554304")
    lost = DeliveryFactory(channel="chat", address=OPENID, status="sent", provider_message_id="1700827132819554305")
    body = event_xml("subscribe_msg_sent_event", SubscribeMsgSentEvent=items(
        {"TemplateId": "sub-shipped", "MsgID": "1700827132819554304", "ErrorCode": "0", "ErrorStatus": "success"},
        {"TemplateId": "sub-shipped", "MsgID": "1700827132819554305", "ErrorCode": "10005",
         "ErrorStatus": "failed"},
    ))

    for _ in range(2):
        assert post(client, body).content == b"success"

    assert list(DeliveryEvent.objects.filter(delivery=ok).values_list("kind", flat=True)) == ["delivered"]
    assert list(DeliveryEvent.objects.filter(delivery=lost).values_list("kind", flat=True)) == ["failed"]


@pytest.mark.parametrize(("event", "container"), [("subscribe_msg_popup_event", "SubscribeMsgPopupEvent"),
                                                  ("subscribe_msg_change_event", "SubscribeMsgChangeEvent")])
def test_answering_a_subscribe_pop_up_is_acknowledged_and_lifts_no_unfollow(client, event, container):
    Suppression.objects.create(channel="chat", address=OPENID, reason="unsubscribe",
                               note="WeChat: unfollowed the Official Account")
    accepted = event_xml(event, **{container: items({"TemplateId": "sub-b", "SubscribeStatusString": "accept"})})
    assert post(client, accepted).content == b"success"
    assert Suppression.objects.filter(channel="chat", address=OPENID).exists()


def test_suppressions_a_refused_subscribe_message_made_are_lifted_by_migration_and_audited():
    """Earlier versions suppressed the openid on a 43101 answer, stopping every WeChat message to
    the person; migration 0023 lifts exactly those, as the system, in the audit log."""
    import importlib

    from django.apps import apps

    from notifications.models import AuditEntry

    migration = importlib.import_module("notifications.migrations.0023_lift_wechat_subscribe_refusals")
    refusal = Suppression.objects.create(channel="chat", address=OPENID, reason="unsubscribe", note=(
        "WeChat 43101: the recipient refused or has not accepted the subscribe message"))
    unfollow = Suppression.objects.create(channel="wechat", address=OPENID, reason="unsubscribe",
                                          note="WeChat 43004: the recipient does not follow the Official Account")
    by_staff = Suppression.objects.create(channel="sms", address="+14155550123", reason="manual", note="asked by phone")

    migration.lift(apps, None)

    assert set(Suppression.objects.values_list("pk", flat=True)) == {unfollow.pk, by_staff.pk}
    entry = AuditEntry.objects.get(action="suppression.lift")
    assert (entry.actor_repr, entry.target_id, entry.changes["address"]) == ("system", str(refusal.pk), OPENID)
    assert "subscribe message" in entry.changes["via"]
    assert entry.target_type.model_class() is Suppression
