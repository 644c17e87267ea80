"""A one-click unsubscribe that commits mid-campaign stops every later message of that category to them."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.test import Client

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.receipts import tracking
from notifications.api import notify
from notifications.models import Category, Delivery

pytestmark = pytest.mark.django_db


def test_unsubscribe_between_batches_stops_the_rest(settings):
    settings.NOTIFICATION_CHANNELS = {"email": {"BACKEND": "channels_adapters.locmem.LocmemChannel", "OPTIONS": {}}}
    LocmemChannel.outbox.clear()
    User = get_user_model()
    password = make_password(None)
    User.objects.bulk_create(User(username=f"n{i}", email=f"n{i}@example.com", password=password) for i in range(300))
    users = list(User.objects.filter(username__startswith="n").order_by("id").values_list("id", flat=True))
    newsletter = Category.objects.create(key="newsletter", name="Newsletter", kind="marketing")
    notify(users, title="News", body="Hello", channels=["email"], category=newsletter)
    for campaign_repeat in ("second", "third"):  # the same address in later sends too
        notify(users[-1:], title=f"News {campaign_repeat}", channels=["email"], category=newsletter)
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))

    ledger.deliveries_send(delivery_ids=ids[:100])  # the first batch went out
    first_mail = Delivery.objects.get(pk=ids[0])
    target = Delivery.objects.get(recipient_id=users[-1], content__subject="News")
    # The recipient's mail client POSTs the List-Unsubscribe URL of an earlier message: no cookies.
    response = Client().post(urlsplit(tracking.unsubscribe_url(target)).path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200

    for start in range(100, len(ids), 100):
        ledger.deliveries_send(delivery_ids=ids[start:start + 100])
    sent_to = [p.message.address for p in LocmemChannel.outbox]
    assert f"n{len(users) - 1}@example.com" not in sent_to
    assert len(sent_to) == 299 and len(set(sent_to)) == 299
    assert first_mail.address in sent_to
    # Their later newsletters stop as an opt-out of the newsletter, not a suppression of the address.
    assert set(Delivery.objects.filter(recipient_id=users[-1]).values_list("status_reason", flat=True)) == {
        "suppressed:opted_out"
    }
