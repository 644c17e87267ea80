"""Mobile push through the whole ledger. Until ``notifications.models.Channel`` lists
``mobilepush`` (see README), the FCM adapter runs on an alias the ledger knows (``webpush``):
planning finds each recipient's newest registered device because the adapter says so
(``address_source = "push_device"``), and an uninstalled app's token is removed."""

from __future__ import annotations

import pytest
from django.utils import timezone

from channels_adapters.devices import device_register
from channels_adapters.models import PushDevice
from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_newest_device_gets_the_push_and_an_uninstalled_one_is_forgotten(settings, fake_fcm):
    settings.NOTIFICATION_CHANNELS = {"webpush": {"BACKEND": "channels_adapters.mobilepush.MobilePushChannel",
                                                  "OPTIONS": {"service_account": fake_fcm.service_account_info(),
                                                              "base_url": fake_fcm.base_url, "timeout": 0.5}}}
    Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)
    ada, bob, cy = UserFactory(), UserFactory(), UserFactory()
    device_register(user=ada, token="ada-old-phone")
    device_register(user=ada, token="ada-new-phone")
    device_register(user=bob, token="bob-uninstalled")
    fake_fcm.unregistered.add("bob-uninstalled")

    notify([ada, bob, cy], title="Order shipped", body="On its way.", channels=["webpush"], category="orders",
           idempotency_key="push-1")
    ids = list(Delivery.objects.due(timezone.now()).values_list("id", flat=True))
    ledger.deliveries_send(delivery_ids=ids)

    assert [r.token for r in fake_fcm.messages] == ["ada-new-phone"]
    assert fake_fcm.messages[0].message["notification"] == {"title": "Order shipped", "body": "On its way."}
    status = {d.recipient_id: (d.status, d.status_reason) for d in Delivery.objects.all()}
    assert status[ada.pk][0] == "sent"
    assert status[bob.pk] == ("failed", "fcm:UNREGISTERED")
    assert status[cy.pk][0] == "suppressed"  # no device: unreachable, with a reason
    assert set(PushDevice.objects.values_list("token", flat=True)) == {"ada-old-phone", "ada-new-phone"}
