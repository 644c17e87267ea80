"""Several SMS providers behind the one ``sms`` channel (``channels_adapters.sms_routes``): mainland
numbers through Aliyun, every other through Twilio, each through its real SDK against its fake;
Aliyun's delivery report reaches the ``sms`` delivery; opt-outs stay per medium; a bad route is
refused when configured."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from channels_adapters.checks import channels_configuration_check
from channels_adapters.errors import ChannelConfigurationError
from channels_adapters.handler import channels
from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, Preference
from tests.factories import RecipientProfileFactory

pytestmark = pytest.mark.django_db


def routed(fake_twilio, fake_aliyun, **router) -> dict:
    return {
        "sms": {"BACKEND": "channels_adapters.sms_routes.SmsRoutes", "OPTIONS": router},
        "sms-twilio": {"BACKEND": "channels_adapters.sms.SmsChannel", "OPTIONS": {
            "account_sid": fake_twilio.account_sid, "auth_token": fake_twilio.auth_token, "from_number": "+15005550006",
            "base_url": fake_twilio.base_url, "timeout": 0.5, "status_callback": ""}},
        "sms-cn": {"BACKEND": "channels_adapters.aliyun_sms.AliyunSmsChannel", "OPTIONS": {
            "access_key_id": fake_aliyun.access_key_id, "access_key_secret": fake_aliyun.access_key_secret,
            "base_url": fake_aliyun.base_url, "timeout": 0.5, "sign_name": "Signalbox",
            "default_template": {"template_code": "SMS_2", "text_param": "content"}}},
    }


@pytest.fixture
def sms_by_country(settings, fake_twilio, fake_aliyun):
    settings.NOTIFICATION_CHANNELS = routed(fake_twilio, fake_aliyun, routes={"+86": "sms-cn"}, default="sms-twilio")
    settings.ALIYUN_SMS_CALLBACK_TOKEN = "report-token-0123456789"
    return fake_twilio, fake_aliyun


def send_all_due() -> None:
    ids = list(Delivery.objects.due(timezone.now()).order_by("id").values_list("id", flat=True))
    if ids:
        ledger.deliveries_send(delivery_ids=ids)


def test_each_number_goes_through_its_countrys_provider_and_receipts_find_the_sms_delivery(sms_by_country, client):
    twilio, aliyun = sms_by_country
    us = RecipientProfileFactory(phone="+14155550100")
    cn = RecipientProfileFactory(phone="+8613800138000")
    Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)

    notify([us.user, cn.user], title="Shipped", body="Order A-17 has shipped.", channels=["sms"], category="orders",
           idempotency_key="ship")
    send_all_due()

    [to_us] = twilio.messages
    [to_cn] = aliyun.messages
    assert (to_us.to, to_us.body) == ("+14155550100", "Order A-17 has shipped.")
    assert (to_cn.phone, to_cn.template_code, to_cn.params) == ("13800138000", "SMS_2", {"content": "Order A-17 has shipped."})
    rows = {d.recipient_id: d for d in Delivery.objects.all()}
    assert {d.channel for d in rows.values()} == {"sms"}  # one medium in the ledger, whatever carried it
    assert rows[us.user_id].provider_message_id == to_us.sid and rows[cn.user_id].provider_message_id == to_cn.biz_id

    report = [{"phone_number": "13800138000", "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功",
               "biz_id": to_cn.biz_id}]
    response = client.post(reverse("webhooks:aliyun_sms_report", args=["report-token-0123456789"]),
                           json.dumps(report), content_type="application/json")
    assert response.status_code == 200
    assert Delivery.objects.get(pk=rows[cn.user_id].pk).status == "delivered"
    assert channels.aliases_with_backend(type(channels["sms-cn"])) == ["sms", "sms-cn"]


def test_an_sms_opt_out_holds_whichever_provider_would_carry_it(sms_by_country):
    twilio, aliyun = sms_by_country
    cn = RecipientProfileFactory(phone="+8613800138000")
    deals = Category.objects.create(key="deals", name="Deals", kind="marketing")
    Preference.objects.create(user=cn.user, category=deals, channel="sms", enabled=False)

    notify([cn.user], title="Sale", body="20% off.", channels=["sms"], category="deals", idempotency_key="sale")
    send_all_due()

    assert aliyun.requests == [] and twilio.requests == []
    assert Delivery.objects.get(recipient=cn.user).status_reason == "suppressed:opted_out"


def test_without_a_default_an_unrouted_number_fails_permanently_and_reaches_no_provider(settings, fake_twilio,
                                                                                        fake_aliyun):
    settings.NOTIFICATION_CHANNELS = routed(fake_twilio, fake_aliyun, routes={"+86": "sms-cn"})
    us = RecipientProfileFactory(phone="+14155550100")
    Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)

    notify([us.user], title="Shipped", body="On its way.", channels=["sms"], category="orders", idempotency_key="x")
    send_all_due()

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.status_reason) == ("failed", "no_sms_route")
    assert fake_twilio.requests == [] and fake_aliyun.requests == []


@pytest.mark.parametrize(("router", "error"), [
    ({"routes": {"+86": "sms-hk"}}, "'sms-hk', which is not another alias"),
    ({"routes": {"+86": "sms"}}, "'sms', which is not another alias"),
    ({"routes": {"86": "sms-cn"}}, "not an E.164 country or area prefix"),
    ({"routes": {}}, "routes must map E.164 prefixes"),
])
def test_a_route_that_cannot_work_is_refused_when_configured(settings, fake_twilio, fake_aliyun, router, error):
    settings.NOTIFICATION_CHANNELS = routed(fake_twilio, fake_aliyun, **router)

    with pytest.raises(ChannelConfigurationError, match=error):
        channels["sms"]
    [problem] = channels_configuration_check()
    assert problem.id == "signalbox.E202" and error in problem.msg


def test_the_router_takes_its_providers_smallest_batch_and_slowest_rate(sms_by_country):
    router = channels["sms"]
    assert router.max_batch_size == min(channels["sms-twilio"].max_batch_size, channels["sms-cn"].max_batch_size)
    assert router.max_per_second == min(channels["sms-twilio"].max_per_second, channels["sms-cn"].max_per_second)
    assert router.features.address_form == "phone" and router.features.segmented_text


def test_the_router_refuses_a_batch_over_its_size_as_every_adapter_does(sms_by_country):
    from channels_adapters.base import OutboundMessage

    twilio, aliyun = sms_by_country
    router = channels["sms"]
    messages = [OutboundMessage(delivery_id=n, address="+14155550100", text="hi")
                for n in range(router.max_batch_size + 1)]

    with pytest.raises(ValueError, match=f"sends at most {router.max_batch_size} messages per batch"):
        router.send_batch(messages, on_result=lambda result: None)
    assert twilio.requests == [] and aliyun.requests == []
