"""Migration 0024 moves the webhook outbox onto the ledger: every message, its state and its
attempt log arrive as a delivery a drain goes on with (a site upgraded mid-retry loses nothing)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("notifications", "0023_lift_wechat_subscribe_refusals")]
AFTER = [("notifications", "0024_webhooks_on_the_ledger")]


@pytest.mark.django_db(transaction=True)
def test_outbox_messages_become_webhook_deliveries_with_their_log():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Endpoint, Outbox, Attempt = (old.get_model("notifications", name)
                                 for name in ("WebhookEndpoint", "WebhookMessage", "WebhookAttempt"))
    now = timezone.now()
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/", events=["campaign.finished"], secret="whsec_x")
    rows = {}
    for key, status, next_at in [("sent", "sent", None), ("waiting", "pending", now),
                                 ("retry-unknown", "unknown", now + timedelta(minutes=5)),
                                 ("retry-failed", "failed", now + timedelta(minutes=5)),
                                 ("gave-up", "failed", None), ("lost", "unknown", None)]:
        rows[key] = Outbox.objects.create(
            endpoint=endpoint, event_type="campaign.finished", event_key=f"run:1:{key}", ordering_key="run:1",
            webhook_id=f"msg_{key}", payload={"type": "campaign.finished", "data": {"run_id": 1}}, status=status,
            attempts=0 if status == "pending" else 2, next_attempt_at=next_at, created_at=now,
        )
    Attempt.objects.create(message=rows["sent"], outcome="sent", response_code=204, latency_ms=12)
    Attempt.objects.create(message=rows["retry-unknown"], outcome="unknown", error="No answer in time")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)

    from notifications.models import WebhookAttempt, WebhookMessage

    moved = {m.webhook_id: m for m in WebhookMessage.objects.all()}
    assert {wid: (m.status, m.status_reason) for wid, m in moved.items()} == {
        "msg_sent": ("sent", ""), "msg_waiting": ("planned", ""), "msg_retry-unknown": ("deferred", "unknown"),
        "msg_retry-failed": ("deferred", ""), "msg_gave-up": ("failed", ""), "msg_lost": ("unknown", ""),
    }
    waiting = moved["msg_waiting"]
    assert (waiting.channel, waiting.webhook_endpoint_id, waiting.ordering_key, waiting.event_type) == (
        "webhook", endpoint.pk, "run:1", "campaign.finished")
    assert waiting.idempotency_key == f"webhook:{endpoint.pk}:run:1:waiting"
    assert waiting.payload == {"type": "campaign.finished", "data": {"run_id": 1}}
    assert moved["msg_retry-unknown"].next_attempt_at is not None and moved["msg_retry-unknown"].attempts == 2
    assert {(a.delivery.provider_message_id, a.outcome, a.response_code) for a in WebhookAttempt.objects.all()} == {
        ("msg_sent", "sent", 204), ("msg_retry-unknown", "unknown", None)}
