"""A journey goal reached is posted to a webhook endpoint that wants ``journey.goal_reached``."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from notifications.journeys.engine import journeys_tick
from notifications.journeys.services import journey_enter
from notifications.models import JourneyEnrollment, WebhookEndpoint, WebhookEvent
from notifications.webhooks.services import webhook_endpoint_save
from tests.factories import CustomerFactory, OrderFactory
from tests.fake_webhook_receiver import FakeWebhookReceiver

from .conftest import T0, welcome_graph


@pytest.fixture
def receiver(settings):
    settings.SIGNALBOX_WEBHOOK_ALLOW_PRIVATE = ["127.0.0.1/32"]
    server = FakeWebhookReceiver()
    server.start()
    yield server
    server.stop()


def test_a_goal_reached_is_posted_signed_to_the_endpoint(make_journey, immediate_tasks, receiver,
                                                         django_capture_on_commit_callbacks):
    endpoint = WebhookEndpoint(url=receiver.url, events=[WebhookEvent.JOURNEY_GOAL])
    secret = webhook_endpoint_save(endpoint=endpoint).secret
    graph = welcome_graph(goals=[{"name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
                                  "conditions": [{"field": "status", "op": "eq", "value": "paid"}]}])
    journey = make_journey(graph=graph)
    buyer, other = CustomerFactory(), CustomerFactory()
    journey_enter(journey="welcome", user_ids=[buyer.user_id, other.user_id], now=T0)
    journeys_tick(now=T0)
    with django_capture_on_commit_callbacks(execute=True):
        order = OrderFactory(customer=buyer, status="pending", paid_at=None)
        order.status = "paid"
        order.save()
    enrollment = JourneyEnrollment.objects.get(user=buyer.user)
    bodies = [Webhook(secret).verify(raw, headers) for headers, raw in receiver.accepted]
    assert bodies and all(b["type"] == "journey.goal_reached" for b in bodies)
    assert [b["data"] for b in bodies] == [{
        "enrollment_id": enrollment.pk, "user_id": buyer.user_id, "journey_id": journey.pk, "journey": "welcome",
        "version_id": enrollment.version_id, "goal": "paid",
    }]
