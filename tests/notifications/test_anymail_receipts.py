"""django-anymail's normalised ``tracking`` signal feeds the delivery ledger (DESIGN.md)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.urls import include, path
from django.utils import timezone

from notifications.models import DeliveryEvent, Preference, Suppression
from tests.factories import CategoryFactory, DeliveryFactory

pytestmark = pytest.mark.django_db

MESSAGE_ID = "abc@signalbox.test"

# A tiny urlconf for the end-to-end webhook test (``settings.ROOT_URLCONF = __name__``).
urlpatterns = [path("anymail/", include("anymail.urls"))]


@pytest.fixture
def delivery():
    return DeliveryFactory(channel="email", status="sent", address="ada@example.com", provider_message_id=MESSAGE_ID)


def send(event_type: str, *, message_id: str = f"<{MESSAGE_ID}>", event_id: str | None = None, at=None, **extra):
    event = AnymailTrackingEvent(
        event_type=event_type, message_id=message_id, event_id=event_id, timestamp=at or timezone.now(), **extra
    )
    tracking.send(sender=object, event=event, esp_name="Postmark")


def test_delivered_then_opened_and_a_late_delivered_does_not_move_it_back(delivery):
    now = timezone.now()
    send("delivered", event_id="ev1", at=now)
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.delivered_at == now
    send("opened", event_id="ev2", at=now + timedelta(minutes=1))
    send("delivered", event_id="ev3", at=now + timedelta(minutes=2))
    delivery.refresh_from_db()
    assert delivery.status == "opened"
    event = DeliveryEvent.objects.get(provider_event_id="ev1")
    assert event.source == "anymail:Postmark" and event.data["esp_event_type"] == "delivered"


def test_bare_message_id_matches_too(delivery):
    send("delivered", message_id=MESSAGE_ID, event_id="ev1")
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_replayed_event_id_records_one_event(delivery):
    send("delivered", event_id="ev1")
    send("delivered", event_id="ev1")
    assert DeliveryEvent.objects.filter(delivery=delivery).count() == 1


def test_hard_bounce_suppresses_the_address(delivery):
    send("bounced", event_id="b1", description="Mailbox does not exist", mta_response="550 5.1.1 " + "x" * 1000)
    delivery.refresh_from_db()
    assert delivery.status == "bounced"
    event = DeliveryEvent.objects.get(delivery=delivery)
    assert event.data["bounce_type"] == "hard" and len(event.data["mta_response"]) <= 300
    assert Suppression.objects.get(channel="email", address="ada@example.com").reason == "hard_bounce"


def test_rejected_is_a_hard_bounce(delivery):
    send("rejected", event_id="r1", reject_reason="invalid")
    assert Suppression.objects.get(address="ada@example.com").reason == "hard_bounce"


def test_deferred_is_a_soft_bounce_that_neither_ends_nor_suppresses(delivery):
    send("deferred", event_id="d1")
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert DeliveryEvent.objects.get(delivery=delivery).data["bounce_type"] == "soft"
    assert not Suppression.objects.exists()


def test_complaint_suppresses(delivery):
    send("complained", event_id="c1")
    assert DeliveryEvent.objects.get(delivery=delivery).kind == "complained"
    assert Suppression.objects.get(address="ada@example.com").reason == "complaint"


def test_unsubscribed_leaves_the_category_and_stops_its_planned_mail(delivery):
    # An ESP-reported unsubscribe is the same act as our one-click link: leave that category.
    delivery.category = CategoryFactory(key="newsletter", kind="marketing")
    delivery.save()
    planned = DeliveryFactory(channel="email", status="planned", address="ADA@example.com", recipient=delivery.recipient,
                              category=delivery.category)
    send("unsubscribed", event_id="u1")
    send("unsubscribed", event_id="u1")  # replay
    assert not Suppression.objects.exists()
    assert Preference.objects.get(user=delivery.recipient, category=delivery.category, channel="email").enabled is False
    planned.refresh_from_db()
    assert planned.status == "suppressed"
    assert DeliveryEvent.objects.filter(delivery=delivery, kind="unsubscribed").count() == 1


def test_clicked_stores_the_url(delivery):
    send("clicked", event_id="k1", click_url="https://example.com/offer")
    delivery.refresh_from_db()
    assert delivery.status == "clicked"
    assert DeliveryEvent.objects.get(delivery=delivery).data["click_url"] == "https://example.com/offer"


def test_failed_is_recorded(delivery):
    send("failed", event_id="f1", description="Template rendering failed")
    assert DeliveryEvent.objects.get(delivery=delivery).kind == "failed"


@pytest.mark.parametrize("event_type", ["queued", "sent", "unknown", "subscribed"])
def test_uninteresting_events_are_ignored(delivery, event_type):
    send(event_type, event_id="x1")
    delivery.refresh_from_db()
    assert delivery.status == "sent" and not DeliveryEvent.objects.exists()


def test_unknown_message_id_changes_nothing(delivery, caplog):
    with caplog.at_level("INFO", logger="notifications.receipts.anymail"):
        send("bounced", message_id="<nobody@signalbox.test>", event_id="b1")
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()
    assert "unknown message id" in caplog.text


def test_other_channels_are_not_matched(delivery):
    DeliveryFactory(channel="sms", status="sent", address="+14155550101", provider_message_id="sms@signalbox.test")
    send("bounced", message_id="sms@signalbox.test", event_id="b1")
    assert not DeliveryEvent.objects.exists()


# --- End to end through anymail's Postmark tracking webhook ---------------------------------

@pytest.fixture
def postmark_webhook(settings):
    settings.ROOT_URLCONF = __name__
    settings.ANYMAIL = {"WEBHOOK_SECRET": "user:pass"}
    return "/anymail/postmark/tracking/"


def postmark_delivery_json() -> str:
    return json.dumps({
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": MESSAGE_ID,
        "Recipient": "ada@example.com",
        "Tag": "welcome",
        "DeliveredAt": "2026-01-02T03:04:05Z",
        "Details": "Test delivery webhook details",
        "Metadata": {},
    })


def test_postmark_webhook_end_to_end(client, delivery, postmark_webhook):
    auth = "Basic " + base64.b64encode(b"user:pass").decode()
    response = client.post(
        postmark_webhook, postmark_delivery_json(), content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert delivery.delivered_at.isoformat() == "2026-01-02T03:04:05+00:00"
    assert DeliveryEvent.objects.get(delivery=delivery).source == "anymail:Postmark"


@pytest.mark.parametrize("credentials", [None, b"user:wrong"])
def test_postmark_webhook_without_the_secret_records_nothing(client, delivery, postmark_webhook, credentials):
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials).decode()} if credentials else {}
    response = client.post(postmark_webhook, postmark_delivery_json(), content_type="application/json", **headers)
    assert response.status_code in (400, 403)
    delivery.refresh_from_db()
    assert delivery.status == "sent" and not DeliveryEvent.objects.exists()
