"""The webhook admin: SSRF-refused targets are form errors, the secret is shown once, the test
button posts a signed event, "resend" posts again, and only Managers and superusers manage."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from standardwebhooks import Webhook

from notifications.models import Delivery, WebhookEndpoint, WebhookMessage
from notifications.signals import delivery_statuses_recording
from notifications.webhooks.sending import webhook_endpoint_drain
from tests.factories import DeliveryFactory, staff_in

from .conftest import make_endpoint

pytestmark = pytest.mark.django_db
ADD = "admin:notifications_webhookendpoint_add"


@pytest.fixture
def boss_client(client):
    client.force_login(staff_in(None, "root"))
    return client


def _add(client, url: str):
    return client.post(reverse(ADD), {"url": url, "description": "CRM", "events": ["delivery.status_changed"],
                                      "enabled": "on"})


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hooks", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]/x", "ftp://example.com/x", "http://user:pw@example.com/x"])
def test_internal_and_metadata_targets_are_refused_with_a_form_error(boss_client, url):
    response = _add(boss_client, url)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["url"]
    assert not WebhookEndpoint.objects.exists()


def test_metadata_is_refused_even_when_private_networks_are_allowed(boss_client, settings):
    settings.SIGNALBOX_WEBHOOK_ALLOW_PRIVATE = True
    response = _add(boss_client, "http://169.254.169.254/latest/meta-data/")
    assert "169.254.169.254" in str(response.context["adminform"].form.errors["url"])
    assert _add(boss_client, "http://127.0.0.1:9/hooks").status_code == 302  # loopback allowed by the option


def test_the_secret_is_shown_once_and_rotation_shows_a_new_one(boss_client, receiver, loopback_allowed):
    response = _add(boss_client, receiver.url)
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    page = boss_client.get(response.url).content.decode()
    shown = re.search(r'data-testid="webhook-secret">(whsec_[^<]+)<', page).group(1)
    assert shown == endpoint.secret
    again = boss_client.get(reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert endpoint.secret not in again  # masked from now on

    rotate = reverse("admin:notifications_webhookendpoint_rotate_secret", args=[endpoint.pk])
    asked = boss_client.get(rotate)  # a GET only asks
    assert asked.status_code == 200 and b'data-testid="rotation-in-grace"' not in asked.content
    endpoint.refresh_from_db()
    assert endpoint.secret == shown
    page = boss_client.post(rotate, follow=True).content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret != shown and endpoint.previous_secret == shown
    assert endpoint.secret in page
    # Rotating again within the grace period drops the first secret at once: the page says so first.
    assert b'data-testid="rotation-in-grace"' in boss_client.get(rotate).content
    assert "宽限期" in boss_client.get(rotate, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()


def test_send_test_event_posts_a_signed_event_and_says_what_came_back(boss_client, receiver, loopback_allowed):
    endpoint, secret = make_endpoint(receiver.url)
    url = reverse("admin:notifications_webhookendpoint_send_test", args=[endpoint.pk])
    page = boss_client.post(url, follow=True).content.decode()
    assert "HTTP 200" in page
    body = Webhook(secret).verify(receiver.accepted[0][1], receiver.accepted[0][0])
    assert body["type"] == "webhook.test"

    receiver.unavailable["all"] = None
    page = boss_client.post(url, follow=True).content.decode()
    assert "HTTP 503" in page


def test_resend_from_the_delivery_log(boss_client, receiver, loopback_allowed, django_capture_on_commit_callbacks):
    endpoint, secret = make_endpoint(receiver.url)
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    message = WebhookMessage.objects.get()
    log = reverse("admin:notifications_webhookmessage_changelist") + f"?webhook_endpoint__id__exact={endpoint.pk}"
    page = boss_client.get(log).content.decode()
    assert message.webhook_id in page
    boss_client.post(log, {"action": "resend", "_selected_action": [message.pk]})
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    message.refresh_from_db()
    assert message.webhook_attempts.count() == 2 and len(receiver.accepted) == 2
    assert boss_client.get(reverse("admin:notifications_webhookmessage_change", args=[message.pk])).status_code == 200


@pytest.mark.parametrize(("group", "manages"), [("Managers", True), ("Marketers", False), ("Operators", False)])
def test_only_managers_and_superusers_manage_webhooks(client, receiver, loopback_allowed, group, manages):
    endpoint, _secret = make_endpoint(receiver.url)
    client.force_login(staff_in(group, "someone"))
    assert (client.get(reverse(ADD)).status_code == 200) is manages
    send_test = reverse("admin:notifications_webhookendpoint_send_test", args=[endpoint.pk])
    assert (client.post(send_test).status_code == 302) is manages
    assert bool(receiver.received) is manages


def test_ticking_enabled_again_in_the_form_clears_the_disable(boss_client, receiver, loopback_allowed):
    from notifications.webhooks.services import webhook_endpoint_disable

    endpoint, _secret = make_endpoint(receiver.url)
    webhook_endpoint_disable(endpoint=endpoint, reason="5 attempts failed")
    page = boss_client.get(reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk]))
    assert "5 attempts failed" in page.content.decode()
    response = boss_client.post(reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk]), {
        "url": receiver.url, "description": "CRM", "events": ["campaign.finished"], "enabled": "on"})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_at is None and endpoint.disabled_reason == ""
    assert endpoint.events == ["campaign.finished"]
