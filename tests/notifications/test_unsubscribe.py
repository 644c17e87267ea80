"""Unsubscribe: RFC 8058 one-click POST, the confirmation page, and what stops going out."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from channels_adapters.locmem import LocmemChannel
from notifications import pipeline, tokens, tracking
from notifications.models import Delivery, DeliveryEvent, Suppression
from tests.factories import DeliveryFactory, RecipientProfileFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("locmem_channels")]

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def user():
    return RecipientProfileFactory(user=UserFactory(username="ada", email="ada@example.com")).user


@pytest.fixture
def delivery(user):
    return DeliveryFactory(recipient=user, status="sent", address="ada@example.com")


@pytest.fixture
def mail_client():
    """A mail provider's server: no cookies, no CSRF token, and CSRF checks on."""
    return Client(enforce_csrf_checks=True)


def url(delivery) -> str:
    return reverse("notifications:unsubscribe", args=[tokens.unsubscribe_token(delivery.pk)])


def snapshot() -> tuple:
    return (
        Suppression.objects.count(),
        DeliveryEvent.objects.count(),
        sorted(Delivery.objects.values_list("pk", "status")),
    )


def test_one_click_post_without_cookies_unsubscribes(mail_client, delivery, user):
    response = mail_client.post(url(delivery), ONE_CLICK)
    assert response.status_code == 200
    assert not response.cookies.get("sessionid")
    assert response["Content-Type"].startswith("text/plain")
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address, suppression.reason, suppression.user) == (
        "email", "ada@example.com", "unsubscribe", user,
    )
    assert DeliveryEvent.objects.filter(delivery=delivery, kind="unsubscribed").count() == 1


def test_one_click_is_idempotent(mail_client, delivery):
    first = mail_client.post(url(delivery), ONE_CLICK)
    second = mail_client.post(url(delivery), ONE_CLICK)
    assert (first.status_code, second.status_code) == (200, 200)
    assert Suppression.objects.count() == 1
    assert DeliveryEvent.objects.filter(kind="unsubscribed").count() == 1


def test_tracking_unsubscribe_url_is_absolute(delivery, settings):
    settings.SITE_URL = "https://signalbox.test"
    assert tracking.unsubscribe_url(delivery) == "https://signalbox.test" + url(delivery)


def test_get_shows_confirmation_and_changes_nothing(mail_client, delivery):
    before = snapshot()
    response = mail_client.get(url(delivery))
    assert response.status_code == 200
    assert b"ada@example.com" in response.content
    assert b'method="post"' in response.content
    assert snapshot() == before


def test_confirmation_form_post_unsubscribes_and_links_preferences(mail_client, delivery):
    response = mail_client.post(url(delivery))
    assert response.status_code == 200
    assert Suppression.objects.filter(address="ada@example.com", reason="unsubscribe").exists()
    assert b"/notifications/preferences/" in response.content


@pytest.mark.parametrize("method", ["get", "one_click", "form_post"])
def test_tampered_token_is_4xx_and_changes_nothing(mail_client, delivery, method):
    token = tokens.unsubscribe_token(delivery.pk)
    bad_tokens = [token[:-1] + ("A" if token[-1] != "A" else "B"), tokens.open_token(delivery.pk), "junk"]
    before = snapshot()
    for bad in bad_tokens:
        target = reverse("notifications:unsubscribe", args=[bad])
        if method == "get":
            response = mail_client.get(target)
        else:
            response = mail_client.post(target, ONE_CLICK if method == "one_click" else {})
        assert 400 <= response.status_code < 500
    assert snapshot() == before


def test_unsubscribe_suppresses_waiting_deliveries_and_send_skips_them(mail_client, delivery, user):
    planned = DeliveryFactory(recipient=user, address="ADA@example.com", status="planned")
    deferred = DeliveryFactory(recipient=user, address="ada@example.com", status="deferred")
    other_channel = DeliveryFactory(recipient=user, channel="sms", address="+14155550100", status="planned")
    someone_else = DeliveryFactory(status="planned")

    assert mail_client.post(url(delivery), ONE_CLICK).status_code == 200

    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses[planned.pk] == statuses[deferred.pk] == "suppressed"
    assert Delivery.objects.get(pk=planned.pk).status_reason == "suppressed:unsubscribe"
    assert statuses[other_channel.pk] == statuses[someone_else.pk] == "planned"
    assert statuses[delivery.pk] == "sent"

    pipeline.deliveries_send(delivery_ids=[planned.pk, deferred.pk, other_channel.pk, someone_else.pk])
    sent_to = {payload.message.address for payload in LocmemChannel.outbox}
    assert sent_to == {"+14155550100", someone_else.address}


def test_delivery_planned_before_unsubscribe_but_claimed_after_is_not_sent(delivery, user):
    """The send-time re-check catches a row the bulk UPDATE could not (already claimed)."""
    claimed = DeliveryFactory(recipient=user, address="ada@example.com", status="planned")
    tracking.unsubscribe(delivery=delivery, source="test")
    Delivery.objects.filter(pk=claimed.pk).update(status="planned", status_reason="")
    summary = pipeline.deliveries_send(delivery_ids=[claimed.pk])
    assert (summary.sent, summary.suppressed) == (0, 1)
    assert LocmemChannel.outbox == []
