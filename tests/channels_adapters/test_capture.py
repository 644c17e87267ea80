"""Capture mode: without provider settings, email and SMS land in the staff Outbox."""

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.urls import reverse

from channels_adapters.models import CapturedMessage
from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery
from tests.factories import RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_default_settings_capture_everything_that_would_leave_the_machine():
    backends = {alias: cfg["BACKEND"] for alias, cfg in django_settings.NOTIFICATION_CHANNELS.items()}
    assert backends["inapp"] == "channels_adapters.inapp.InappChannel"
    for alias in ("email", "sms", "webpush", "chat", "wechat", "mobilepush"):
        assert backends[alias] == "channels_adapters.capture.CaptureChannel", alias


def test_captured_messages_are_sent_in_the_ledger_and_visible_in_the_outbox(client, settings):
    settings.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": "channels_adapters.capture.CaptureChannel", "OPTIONS": {}},
        "sms": {"BACKEND": "channels_adapters.capture.CaptureChannel", "OPTIONS": {}},
    }
    user = RecipientProfileFactory(user=UserFactory(username="li", email="li@example.com"), phone="+8613800138000").user
    category = Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)
    notify([user], title="Order paid", body="Thanks!", channels=["email", "sms"], category=category)
    ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))

    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    captured = {m.channel: m for m in CapturedMessage.objects.all()}
    assert captured["email"].address == "li@example.com" and captured["email"].subject == "Order paid"
    assert captured["sms"].address == "+8613800138000" and captured["sms"].text == "Thanks!"

    marketer = UserFactory(username="maya", is_staff=True)
    from accounts.roles import roles_ensure

    roles_ensure()
    marketer.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(marketer)
    page = client.get(reverse("admin:channels_adapters_capturedmessage_changelist"))
    assert page.status_code == 200
    assert "li@example.com" in page.content.decode()
    detail = client.get(reverse("admin:channels_adapters_capturedmessage_change", args=[captured["email"].pk]))
    assert detail.status_code == 200 and b'name="_save"' not in detail.content


def test_wechat_and_app_pushes_land_in_the_outbox_addressed_as_they_would_be_sent(settings):
    """``make run``: the demo login's openid and registered phone show up in the Outbox."""
    from channels_adapters.devices import device_register

    settings.NOTIFICATION_CHANNELS = {alias: {"BACKEND": "channels_adapters.capture.CaptureChannel", "OPTIONS": {}}
                                      for alias in ("wechat", "mobilepush")}
    user = RecipientProfileFactory(chat_ids={"wechat": "oDemoAlexMorgan0000000000001"}).user
    device_register(user=user, token="demo-fcm-token")
    category = Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)
    notify([user], title="Order paid", body="Thanks!", url="/shop/", channels=["wechat", "mobilepush"],
           category=category)
    ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))

    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    captured = {m.channel: (m.address, m.subject, m.text) for m in CapturedMessage.objects.all()}
    assert captured == {"wechat": ("oDemoAlexMorgan0000000000001", "Order paid", "Thanks!"),
                        "mobilepush": ("demo-fcm-token", "Order paid", "Thanks!")}
