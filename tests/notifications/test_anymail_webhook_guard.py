"""``/webhooks/anymail/<esp>/tracking/`` refuses what it cannot verify with a 4xx, never a 500.

On the old code the mount depended on ``ANYMAIL_WEBHOOK_SECRET`` at import, and with the secret
set but an ESP's own signing key missing (Mailgun, Postal, Mandrill, MailerSend, Unisender Go,
Amazon SES without boto3), anymail raised ``ImproperlyConfigured`` while building its view: an
unsigned post from anyone was a 500. Now a guard answers 403 (and logs an error for the
operator), 403 for missing or wrong credentials, 404 while the secret is unset, and
``manage.py check`` warns about the missing key. Real HTTP requests through the project's URLs.
"""

from __future__ import annotations

import base64
import importlib
import json

import pytest
from django.conf import settings as django_settings
from django.core import checks
from django.urls import clear_url_caches

from notifications.models import DeliveryEvent
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

MESSAGE_ID = "guard@signalbox.test"
SECRET = "user:pass"
BASIC = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}
# ESPs that verify their own signature with a key of their own, besides the basic-auth secret.
KEYED = ["mailgun", "postal", "mandrill", "mailersend", "unisender_go", "amazon_ses"]
# ESPs whose only protection is the basic-auth secret.
BASIC_ONLY = ["postmark", "sendgrid", "brevo", "sendinblue", "sparkpost", "mailjet", "mailtrap", "resend"]


def url(esp: str) -> str:
    return f"/webhooks/anymail/{esp}/tracking/"


def _load_urls() -> None:
    """(Re)load the URL conf under the current settings, as a process does when it starts."""
    importlib.reload(importlib.import_module(django_settings.ROOT_URLCONF))
    clear_url_caches()


@pytest.fixture
def anymail(settings):
    """A deployment started with ``ANYMAIL_WEBHOOK_SECRET`` set and no ESP signing key."""
    before = settings.ANYMAIL
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    _load_urls()
    yield settings
    settings.ANYMAIL = before
    _load_urls()


@pytest.fixture
def delivery():
    return DeliveryFactory(channel="email", status="sent", address="ada@example.com", provider_message_id=MESSAGE_ID)


def event_body() -> str:
    return json.dumps({
        "RecordType": "Delivery", "MessageID": MESSAGE_ID, "Recipient": "ada@example.com",
        "DeliveredAt": "2026-01-02T03:04:05Z",
        "event-data": {"event": "delivered", "id": "e1", "timestamp": 1767323045,
                       "message": {"headers": {"message-id": MESSAGE_ID}}, "recipient": "ada@example.com"},
        "signature": {"token": "t", "timestamp": "1767323045", "signature": "0" * 64},
    })


def assert_nothing_changed(delivery) -> None:
    delivery.refresh_from_db()
    assert delivery.status == "sent" and not DeliveryEvent.objects.exists()


@pytest.mark.parametrize("esp", KEYED)
@pytest.mark.parametrize("credentials", [{}, BASIC], ids=["unsigned", "with the secret"])
def test_an_esp_without_its_signing_key_refuses_with_403_and_logs(client, anymail, delivery, caplog, esp,
                                                                  credentials):
    with caplog.at_level("ERROR", logger="notifications.receipts.anymail_urls"):
        response = client.post(url(esp), event_body(), content_type="application/json", **credentials)

    assert response.status_code == 403
    assert f"{esp}_tracking_webhook" in caplog.text and "not configured" in caplog.text
    assert_nothing_changed(delivery)


@pytest.mark.parametrize("esp", BASIC_ONLY + ["mailgun"])
@pytest.mark.parametrize("auth", [None, b"user:wrong"], ids=["unsigned", "wrong secret"])
def test_missing_or_wrong_credentials_are_403(client, anymail, delivery, esp, auth):
    anymail.ANYMAIL = {**anymail.ANYMAIL, "MAILGUN_WEBHOOK_SIGNING_KEY": "mailgun-key"}
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(auth).decode()} if auth else {}

    response = client.post(url(esp), event_body(), content_type="application/json", **headers)

    assert response.status_code == 403
    assert_nothing_changed(delivery)


def test_a_bad_mailgun_signature_is_403_even_with_the_secret(client, anymail, delivery):
    anymail.ANYMAIL = {**anymail.ANYMAIL, "MAILGUN_WEBHOOK_SIGNING_KEY": "mailgun-key"}
    response = client.post(url("mailgun"), event_body(), content_type="application/json", **BASIC)
    assert response.status_code == 403
    assert_nothing_changed(delivery)


@pytest.mark.parametrize("esp", KEYED + BASIC_ONLY)
def test_without_the_secret_every_webhook_is_404(client, anymail, delivery, esp):
    anymail.ANYMAIL = {}  # anymail alone would accept unauthenticated posts for basic-auth ESPs
    response = client.post(url(esp), event_body(), content_type="application/json", **BASIC)
    assert response.status_code == 404
    assert_nothing_changed(delivery)


def test_inbound_mail_webhooks_are_not_mounted(client, anymail):
    assert client.post("/webhooks/anymail/postmark/inbound/", "{}", content_type="application/json",
                       **BASIC).status_code == 404


def test_a_signed_postmark_event_is_still_recorded(client, anymail, delivery):
    response = client.post(url("postmark"), event_body(), content_type="application/json", **BASIC)
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def security_warnings() -> list[str]:
    return [message.id for message in checks.run_checks(tags=[checks.Tags.security])]


def test_check_warns_when_the_esps_signing_key_is_missing(settings):
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    assert "signalbox.W101" in security_warnings()
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": "key"}
    assert "signalbox.W101" not in security_warnings()
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"  # basic auth only: nothing missing
    assert "signalbox.W101" not in security_warnings()
