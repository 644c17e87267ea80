"""Twilio webhooks: signature checked against the public URL, replays change nothing, STOP suppresses,
START lifts a STOP."""

from __future__ import annotations

import pytest
from django.urls import reverse
from twilio.request_validator import RequestValidator

from notifications.api import notify
from notifications.models import AuditEntry, Delivery, DeliveryEvent, Suppression
from tests.factories import CategoryFactory, DeliveryFactory, RecipientProfileFactory

pytestmark = pytest.mark.django_db

TOKEN = "twilio-test-auth-token"


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.SITE_URL = "https://signalbox.example.com"


def post(client, name: str, params: dict, *, signature: str | None = "sign"):
    path = reverse(name)
    if signature == "sign":
        signature = RequestValidator(TOKEN).compute_signature(f"https://signalbox.example.com{path}", params)
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    return client.post(path, params, headers=headers)


@pytest.fixture
def sms_delivery():
    return DeliveryFactory(channel="sms", address="+14155550101", status="sent", provider_message_id="SM" + "a" * 32)


def test_status_callback_advances_the_delivery_once(client, sms_delivery):
    params = {"MessageSid": sms_delivery.provider_message_id, "MessageStatus": "delivered", "To": sms_delivery.address}
    assert post(client, "webhooks:twilio_status", params).status_code == 204
    sms_delivery.refresh_from_db()
    assert sms_delivery.status == "delivered" and sms_delivery.delivered_at is not None
    assert post(client, "webhooks:twilio_status", params).status_code == 204  # replay
    assert DeliveryEvent.objects.filter(delivery=sms_delivery, kind="delivered").count() == 1


def test_undelivered_records_the_error_code(client, sms_delivery):
    params = {"MessageSid": sms_delivery.provider_message_id, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    post(client, "webhooks:twilio_status", params)
    event = DeliveryEvent.objects.get(delivery=sms_delivery)
    assert event.kind == "failed" and event.data["error_code"] == "30003"


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "sign-for-other-params"])
def test_unsigned_or_missigned_callbacks_are_403_and_change_nothing(client, sms_delivery, signature):
    params = {"MessageSid": sms_delivery.provider_message_id, "MessageStatus": "delivered"}
    if signature == "sign-for-other-params":
        signature = RequestValidator(TOKEN).compute_signature(
            "https://signalbox.example.com" + reverse("webhooks:twilio_status"), {**params, "MessageStatus": "failed"}
        )
    assert post(client, "webhooks:twilio_status", params, signature=signature).status_code == 403
    sms_delivery.refresh_from_db()
    assert sms_delivery.status == "sent" and not DeliveryEvent.objects.exists()


def test_signature_is_checked_against_the_public_url(client, sms_delivery):
    params = {"MessageSid": sms_delivery.provider_message_id, "MessageStatus": "delivered"}
    wrong_host = RequestValidator(TOKEN).compute_signature("http://testserver" + reverse("webhooks:twilio_status"), params)
    assert post(client, "webhooks:twilio_status", params, signature=wrong_host).status_code == 403


def test_get_is_not_allowed(client):
    assert client.get(reverse("webhooks:twilio_status")).status_code == 405


@pytest.mark.parametrize("body", ["STOP", "stop ", "Unsubscribe", "退订"])
def test_stop_keywords_suppress_the_number_and_confirm_once(client, body):
    waiting = DeliveryFactory(channel="sms", address="+14155550102", status="planned")
    params = {"From": "+14155550102", "Body": body, "MessageSid": "SM" + "b" * 32}
    first = post(client, "webhooks:twilio_inbound", params)
    assert first.status_code == 200 and b"<Message>" in first.content
    assert Suppression.objects.get(channel="sms", address="+14155550102").reason == "stop"
    waiting.refresh_from_db()
    assert waiting.status == "suppressed" and waiting.status_reason == "suppressed:stop"
    second = post(client, "webhooks:twilio_inbound", params)
    assert b"<Message>" not in second.content
    assert Suppression.objects.count() == 1


def test_other_inbound_text_changes_nothing(client):
    response = post(client, "webhooks:twilio_inbound", {"From": "+14155550103", "Body": "Hello?"})
    assert response.status_code == 200 and b"<Message>" not in response.content
    assert not Suppression.objects.exists()
    assert not Delivery.objects.exists()


# --- START: re-subscribe --------------------------------------------------------------------

@pytest.mark.parametrize("body", ["START", " start ", "Unstop", "开始"])
def test_start_lifts_a_stop_and_confirms_once(client, body):
    stop = {"From": "+14155550104", "Body": "STOP", "MessageSid": "SM" + "c" * 32}
    post(client, "webhooks:twilio_inbound", stop)
    assert Suppression.objects.filter(channel="sms", address="+14155550104").exists()

    start = {**stop, "Body": body, "MessageSid": "SM" + "d" * 32}
    first = post(client, "webhooks:twilio_inbound", start)
    assert first.status_code == 200 and b"<Message>" in first.content
    assert not Suppression.objects.exists()
    second = post(client, "webhooks:twilio_inbound", start)
    assert second.status_code == 200 and b"<Message>" not in second.content
    entry = AuditEntry.objects.get(action="suppression.lift")
    assert entry.actor is None and entry.changes["address"] == "+14155550104" and entry.changes["reason"] == "stop"


def test_after_start_texts_reach_the_number_again(client):
    user = RecipientProfileFactory(phone="+14155550105").user
    category = CategoryFactory(key="offers", kind="marketing")
    params = {"From": "+14155550105", "Body": "STOP"}
    post(client, "webhooks:twilio_inbound", params)
    notify([user], title="Sale", channels=["sms"], category=category, idempotency_key="during-stop")
    assert Delivery.objects.get().status_reason == "suppressed:stop"
    post(client, "webhooks:twilio_inbound", {**params, "Body": "START"})
    notify([user], title="Sale", channels=["sms"], category=category, idempotency_key="after-start")
    assert Delivery.objects.get(idempotency_key__startswith="notify:after-start").status == "planned"


@pytest.mark.parametrize("reason", ["manual", "hard_bounce", "complaint"])
def test_start_does_not_lift_a_suppression_the_number_did_not_make(client, reason):
    Suppression.objects.create(channel="sms", address="+14155550106", reason=reason)
    response = post(client, "webhooks:twilio_inbound", {"From": "+14155550106", "Body": "START"})
    assert response.status_code == 200 and b"<Message>" not in response.content
    assert Suppression.objects.get().reason == reason
    assert not AuditEntry.objects.filter(action="suppression.lift").exists()


@pytest.mark.parametrize("signature", [None, "bm90IGEgc2lnbmF0dXJl"])
def test_unsigned_start_is_403_and_changes_nothing(client, signature):
    Suppression.objects.create(channel="sms", address="+14155550107", reason="stop")
    response = post(client, "webhooks:twilio_inbound", {"From": "+14155550107", "Body": "START"}, signature=signature)
    assert response.status_code == 403
    assert Suppression.objects.filter(address="+14155550107").exists()


def test_start_matches_the_number_in_any_notation(client, settings):
    """Suppressions and inbound numbers meet in E.164, whatever form the number was written in."""
    settings.SIGNALBOX_IMPORT_PHONE_REGION = "US"
    Suppression.objects.create(channel="sms", address="+14155550108", reason="stop")
    post(client, "webhooks:twilio_inbound", {"From": "(415) 555-0108", "Body": "start"})
    assert not Suppression.objects.exists()
