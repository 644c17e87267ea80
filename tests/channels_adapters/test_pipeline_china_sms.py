"""Aliyun SMS through the whole ledger: a message template mapped to an approved provider
template, its variables from the send's context; a timeout is ``unknown`` and never re-sent; the
provider's delivery report then moves the delivery on. Tencent is exercised the same way at the
adapter level (test_china_sms.py); the ledger does not tell the providers apart."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, DeliveryEvent
from tests.factories import MessageTemplateFactory, RecipientProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def aliyun_sms(settings, fake_aliyun):
    settings.NOTIFICATION_CHANNELS = {"sms": {"BACKEND": "channels_adapters.aliyun_sms.AliyunSmsChannel", "OPTIONS": {
        "access_key_id": fake_aliyun.access_key_id, "access_key_secret": fake_aliyun.access_key_secret,
        "base_url": fake_aliyun.base_url, "timeout": 0.5, "sign_name": "Signalbox",
        "templates": {"shipped": {"template_code": "SMS_100", "params": ["order", "recipient.first_name"]}},
    }}}
    settings.ALIYUN_SMS_CALLBACK_TOKEN = "report-token-0123456789"
    return fake_aliyun


def send_all_due() -> None:
    ids = list(Delivery.objects.due(timezone.now()).order_by("id").values_list("id", flat=True))
    if ids:
        ledger.deliveries_send(delivery_ids=ids)


def test_a_templated_send_reaches_aliyun_with_its_variables_and_a_timeout_stays_unknown(aliyun_sms, client):
    profiles = [RecipientProfileFactory(phone=f"+86138001380{n:02d}", user__first_name=name)
                for n, name in enumerate(["小明", "Ada"])]
    aliyun_sms.slow.add("13800138001")  # Ada's request arrives, the reply never does
    MessageTemplateFactory(key="shipped", sms_text="Hi {{ recipient.first_name }}, order {{ order }} shipped.",
                           variables=["order"])
    category = Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False,
                                       resend_policy="at_least_once")
    notify([p.user for p in profiles], template="shipped", context={"order": "A-17"}, channels=["sms"],
           category=category, idempotency_key="ship-A-17")

    send_all_due()

    [sent] = aliyun_sms.messages
    assert (sent.phone, sent.template_code, sent.sign_name) == ("13800138000", "SMS_100", "Signalbox")
    assert sent.params == {"order": "A-17", "first_name": "小明"}
    delivered = Delivery.objects.get(recipient=profiles[0].user)
    assert (delivered.status, delivered.provider_message_id) == ("sent", sent.biz_id)
    unknown = Delivery.objects.get(recipient=profiles[1].user)
    assert unknown.status == "unknown" and unknown.status_reason == "aliyun_timeout"

    # Even under at_least_once an SMS is not re-sent: nothing is due, nothing more reaches Aliyun.
    send_all_due()
    assert len(aliyun_sms.requests) == 2

    # Aliyun's delivery report, pushed twice, records one receipt.
    report = [{"phone_number": "13800138000", "send_time": "2026-12-03 18:00:00", "report_time": "2026-12-03 18:00:05",
               "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1",
               "biz_id": sent.biz_id, "out_id": str(delivered.pk)}]
    url = reverse("webhooks:aliyun_sms_report", args=["report-token-0123456789"])
    for _ in range(2):
        response = client.post(url, json.dumps(report), content_type="application/json")
        assert response.status_code == 200 and response.json() == {"code": 0, "msg": "成功"}
    delivered.refresh_from_db()
    assert delivered.status == "delivered"
    assert DeliveryEvent.objects.filter(delivery=delivered, kind="delivered", source="aliyun").count() == 1
