"""The webhook outbox in /metrics and on the System status page: what waits, for how long, what
ended unknown, and which endpoints are failing or disabled, as an operator alerts on them.

Driven through the real drain against a receiver on loopback that first answers 503, then not
at all: the figures are the outbox's rows as the drain left them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Delivery, WebhookEndpoint, WebhookMessage
from notifications.signals import delivery_statuses_recording
from notifications.webhooks.sending import webhook_endpoint_drain
from ops.metrics import metrics_exposition
from tests.factories import DeliveryFactory, staff_in
from tests.ops.test_metrics import samples

pytestmark = pytest.mark.django_db


def webhook_figures(now) -> dict[str, float]:
    figures = samples(metrics_exposition(now=now))
    found = {name: figures[(name,)] for name in (
        "signalbox_webhook_queue_depth", "signalbox_webhook_oldest_due_age_seconds", "signalbox_webhook_unknown_outcomes",
    )}
    for state in ("enabled", "failing", "disabled"):
        found[state] = figures[("signalbox_webhook_endpoints", ("state", state))]
    return found


def test_waiting_retries_unknowns_and_a_disabled_endpoint_are_counted(endpoint, receiver, settings, client,
                                                                      django_capture_on_commit_callbacks):
    endpoint, _secret = endpoint
    WebhookEndpoint.objects.create(url="https://hooks.example.com/idle", events=["campaign.finished"])
    settings.SIGNALBOX_WEBHOOK_MAX_ATTEMPTS = 2
    settings.SIGNALBOX_WEBHOOK_READ_TIMEOUT = 0.3
    receiver.unavailable["all"] = None
    with django_capture_on_commit_callbacks(execute=True):  # two deliveries' events: two messages
        delivery_statuses_recording.send(sender=Delivery, changes=[(DeliveryFactory(status="sent").pk, "sent"),
                                                                   (DeliveryFactory(status="sent").pk, "sent")])
    now = timezone.now()
    assert WebhookMessage.objects.count() == 2
    before = webhook_figures(now + timedelta(seconds=5))
    assert before["signalbox_webhook_queue_depth"] == 2
    assert 4 <= before["signalbox_webhook_oldest_due_age_seconds"] < 60
    assert (before["enabled"], before["failing"], before["disabled"]) == (2, 0, 0)

    # 503 to both: each waits for its retry 30 s later, and the endpoint is failing.
    webhook_endpoint_drain(endpoint_id=endpoint.pk, now=now)
    waiting = webhook_figures(now + timedelta(seconds=10))
    assert waiting["signalbox_webhook_queue_depth"] == 0  # not due yet
    assert waiting["signalbox_webhook_oldest_due_age_seconds"] == 0
    assert (waiting["enabled"], waiting["failing"], waiting["disabled"]) == (1, 1, 0)
    overdue = webhook_figures(now + timedelta(seconds=100))
    assert overdue["signalbox_webhook_queue_depth"] == 2
    assert 69 <= overdue["signalbox_webhook_oldest_due_age_seconds"] <= 71  # due at +30 s

    # The first retry gets no answer in time: unknown with no attempt left, and the endpoint is
    # disabled; the other message waits for it to be enabled again, no longer owed by a drain.
    receiver.unavailable.clear()
    receiver.slow.add("all")
    with django_capture_on_commit_callbacks(execute=True):
        webhook_endpoint_drain(endpoint_id=endpoint.pk, now=now + timedelta(seconds=100))
    first, second = WebhookMessage.objects.order_by("pk")
    assert (first.status, first.next_attempt_at) == ("unknown", None)
    assert second.status == "deferred" and second.next_attempt_at is not None  # its 503 is retried then
    after = webhook_figures(now + timedelta(seconds=110))
    assert after["signalbox_webhook_queue_depth"] == 0
    assert after["signalbox_webhook_oldest_due_age_seconds"] == 0
    assert after["signalbox_webhook_unknown_outcomes"] == 1
    assert (after["enabled"], after["failing"], after["disabled"]) == (1, 0, 1)

    # The same figures on the System status page, for an Operator, in English and in Chinese.
    client.force_login(staff_in("Operators", "oscar"))
    html = client.get("/admin/status/").content.decode()
    assert 'data-testid="webhook-unknown-outcomes" data-value="1"' in html
    assert 'data-testid="webhook-endpoints-disabled" data-value="1"' in html
    assert 'data-testid="webhook-endpoints-enabled" data-value="1"' in html
    assert 'href="/admin/notifications/webhookendpoint/"' in html
    chinese = client.get("/admin/status/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in ("外发 Webhook", "结果未知，已无重试", "已停用"):
        assert text in chinese, text
