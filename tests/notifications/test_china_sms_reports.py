"""Aliyun and Tencent Cloud SMS delivery reports: the secret token in the URL is checked, replays
record nothing twice, failures are receipts too, and only deliveries sent through that provider's
aliases are touched."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from notifications.models import DeliveryEvent
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

ALIYUN = "channels_adapters.aliyun_sms.AliyunSmsChannel"
TENCENT = "channels_adapters.tencent_sms.TencentSmsChannel"
TOKEN = "callback-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def china_sms(settings):
    settings.NOTIFICATION_CHANNELS = {
        "sms": {"BACKEND": "channels_adapters.sms.SmsChannel", "OPTIONS": {}},
        "sms-cn": {"BACKEND": ALIYUN, "OPTIONS": {}},
        "sms-tc": {"BACKEND": TENCENT, "OPTIONS": {}},
    }
    settings.ALIYUN_SMS_CALLBACK_TOKEN = TOKEN
    settings.TENCENT_SMS_CALLBACK_TOKEN = TOKEN


def aliyun_report(biz_id: str, *, success: bool = True, err_code: str = "DELIVERED") -> dict:
    return {"phone_number": "13800138000", "send_time": "2026-12-03 18:00:00", "report_time": "2026-12-03 18:00:04",
            "success": success, "err_code": err_code, "err_msg": "用户接收成功" if success else "用户停机",
            "sms_size": "1", "biz_id": biz_id, "out_id": "1"}


def tencent_report(sid: str, *, status: str = "SUCCESS", errmsg: str = "DELIVRD") -> dict:
    return {"user_receive_time": "2026-12-03 18:00:04", "nationcode": "86", "mobile": "13800138000",
            "report_status": status, "errmsg": errmsg, "description": "用户短信送达成功", "sid": sid, "ext": "1"}


CASES = {
    "aliyun": ("webhooks:aliyun_sms_report", "sms-cn", "900619746936498^0", aliyun_report,
               {"code": 0, "msg": "成功"}),
    "tencent": ("webhooks:tencent_sms_status", "sms-tc", "2019:538884*7236*0000000000", tencent_report,
                {"result": 0, "errmsg": "OK"}),
}


@pytest.fixture(params=list(CASES))
def case(request):
    return (request.param, *CASES[request.param])


def post(client, name: str, body, token: str = TOKEN):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(reverse(name, args=[token]), data, content_type="application/json")


def test_a_delivered_report_advances_the_delivery_once(client, case):
    provider, name, alias, provider_id, report, answer = case
    delivery = DeliveryFactory(channel=alias, address="+8613800138000", status="sent", provider_message_id=provider_id)

    for _ in range(2):  # the provider pushes again when unsure we got it
        response = post(client, name, [report(provider_id)])
        assert response.status_code == 200 and response.json() == answer

    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.delivered_at is not None
    [event] = DeliveryEvent.objects.filter(delivery=delivery)
    assert (event.kind, event.source) == ("delivered", provider)


def test_a_failed_report_is_a_failed_receipt_with_the_carrier_code(client, case):
    provider, name, alias, provider_id, report, _answer = case
    delivery = DeliveryFactory(channel=alias, address="+8613800138000", status="sent", provider_message_id=provider_id)
    failed = report(provider_id, success=False, err_code="MK:0001") if provider == "aliyun" else report(
        provider_id, status="FAIL", errmsg="MK:0001")

    assert post(client, name, [failed]).status_code == 200

    event = DeliveryEvent.objects.get(delivery=delivery)
    assert event.kind == "failed"
    assert "MK:0001" in (event.data.get("err_code") or event.data.get("errmsg"))


def test_reports_for_other_providers_aliases_or_unknown_ids_change_nothing(client, case):
    _provider, name, _alias, provider_id, report, answer = case
    twilio = DeliveryFactory(channel="sms", address="+8613800138000", status="sent", provider_message_id=provider_id)

    response = post(client, name, [report(provider_id), report("no-such-id")])

    assert response.status_code == 200 and response.json() == answer  # acknowledged: stop pushing
    twilio.refresh_from_db()
    assert twilio.status == "sent" and not DeliveryEvent.objects.exists()


@pytest.mark.parametrize("token", ["wrong-token", "callback-token-0123456789abcdeF", "x"])
def test_a_wrong_token_is_a_404_and_changes_nothing(client, case, token):
    _provider, name, alias, provider_id, report, _answer = case
    delivery = DeliveryFactory(channel=alias, address="+8613800138000", status="sent", provider_message_id=provider_id)

    assert post(client, name, [report(provider_id)], token=token).status_code == 404

    delivery.refresh_from_db()
    assert delivery.status == "sent" and not DeliveryEvent.objects.exists()


def test_without_a_configured_token_the_callback_is_off(client, case, settings):
    _provider, name, _alias, provider_id, report, _answer = case
    settings.ALIYUN_SMS_CALLBACK_TOKEN = settings.TENCENT_SMS_CALLBACK_TOKEN = ""

    assert post(client, name, [report(provider_id)], token="anything").status_code == 404
    # Any token is wrong when none is configured, so the URL alone cannot show the empty one is
    # not taken for a match (the path has no empty segment): ask the check itself.
    from notifications.receipts.sms_reports import _token_ok

    assert not _token_ok("ALIYUN_SMS_CALLBACK_TOKEN", "") and not _token_ok("TENCENT_SMS_CALLBACK_TOKEN", "")


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"text"', "[" + "{}," * 1000 + "{}]", b"\xff\xfe"])
def test_malformed_bodies_are_a_400_not_a_500(client, case, body):
    _provider, name, *_ = case
    assert post(client, name, body).status_code == 400


def test_reports_without_an_id_or_outcome_are_skipped(client, case):
    _provider, name, alias, provider_id, _report, _answer = case
    DeliveryFactory(channel=alias, address="+8613800138000", status="sent", provider_message_id=provider_id)

    assert post(client, name, [{"biz_id": provider_id}, {"sid": provider_id}, {}]).status_code == 200
    assert not DeliveryEvent.objects.exists()


def test_get_is_not_allowed(client, case):
    _provider, name, *_ = case
    assert client.get(reverse(name, args=[TOKEN])).status_code == 405
