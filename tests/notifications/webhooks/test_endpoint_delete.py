"""An endpoint deleted or disabled while other processes still hold the old routing table.

Status events are written inside the ledger's own transaction, so a webhook row that points at a
deleted endpoint would fail the commit of the deliveries' outcomes (a deferred foreign key). The
routing table only nominates endpoints: the recorder reads them again and holds them, and a delete
waits for a recorder that holds its endpoint."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.urls import reverse

from channels_adapters.handler import channels
from notifications.api import notify
from notifications.models import AuditEntry, Category, Delivery, WebhookEndpoint, WebhookEvent, WebhookMessage
from notifications.signals import delivery_statuses_recording
from notifications.webhooks.events import ROUTES_KEY, routes
from notifications.webhooks.services import webhook_endpoint_delete
from tests.factories import DeliveryFactory, staff_in

from .conftest import make_endpoint

HOOK = "http://127.0.0.1:9/hooks"


@pytest.fixture
def inapp(settings):
    settings.NOTIFICATION_CHANNELS = {"inapp": {"BACKEND": "channels_adapters.inapp.InappChannel", "OPTIONS": {}}}
    channels.reset()
    yield
    channels.reset()


def _another_process_changes(change) -> None:
    """``change`` the endpoints as another process would: this process keeps the table it read."""
    table = routes()
    change()
    cache.set(ROUTES_KEY, table)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["delete", "disable", "unsubscribe"])
def test_a_stale_routing_table_never_fails_the_ledgers_commit(loopback_allowed, inapp, change):
    user = get_user_model().objects.create(username="ada")
    endpoint, _ = make_endpoint(HOOK, events=[WebhookEvent.DELIVERY_STATUS])
    endpoints = WebhookEndpoint.objects.filter(pk=endpoint.pk)
    _another_process_changes({
        "delete": endpoints.delete,
        "disable": lambda: endpoints.update(enabled=False),
        "unsubscribe": lambda: endpoints.update(events=[WebhookEvent.CAMPAIGN_FINISHED]),
    }[change])

    result = notify([user.pk], title="Your order shipped", category=Category.objects.create(key="orders", name="Orders"),
                    channels=["inapp"])

    assert result.delivered == 1
    assert Delivery.objects.get().status == Delivery.Status.SENT
    assert user.notifications.count() == 1
    assert not WebhookMessage.objects.exists()  # nothing for an endpoint that is gone, off or no longer subscribed


@pytest.mark.django_db(transaction=True)
def test_a_delete_waits_for_a_recorder_holding_its_endpoint_and_takes_its_rows_too(loopback_allowed):
    endpoint, _ = make_endpoint(HOOK, events=[WebhookEvent.DELIVERY_STATUS])
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    routes()
    held, finished, errors = threading.Event(), [], []

    def ledger_batch():  # a worker recording a batch's moves in its ledger transaction
        try:
            with transaction.atomic():
                delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
                held.set()
                threading.Event().wait(0.5)  # the rest of the batch's transaction
                finished.append("ledger committed")
        except Exception as error:  # noqa: BLE001 - asserted below
            errors.append(error)
            held.set()
        finally:
            connection.close()

    worker = threading.Thread(target=ledger_batch)
    worker.start()
    assert held.wait(30)
    deleted = webhook_endpoint_delete(endpoint=endpoint)
    finished.append("endpoint deleted")
    worker.join(30)

    assert not errors and deleted
    assert finished == ["ledger committed", "endpoint deleted"]
    assert not WebhookEndpoint.objects.exists() and not WebhookMessage.objects.exists()


@pytest.mark.django_db
def test_deleting_in_the_admin_is_audited_and_takes_the_outbox_along(client, loopback_allowed):
    boss = staff_in(None, "root")
    client.force_login(boss)
    endpoint, _ = make_endpoint(HOOK, events=[WebhookEvent.DELIVERY_STATUS])
    delivery_statuses_recording.send(sender=Delivery, changes=[(DeliveryFactory(status="sent").pk, "sent")])
    assert WebhookMessage.objects.count() == 1

    response = client.post(reverse("admin:notifications_webhookendpoint_delete", args=[endpoint.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists() and not WebhookMessage.objects.exists()
    entry = AuditEntry.objects.get(action="webhook.delete")
    assert entry.actor == boss and entry.changes == {"url": HOOK}


@pytest.mark.django_db(transaction=True)
def test_the_ledger_never_waits_for_a_delete_in_progress(loopback_allowed):
    """A delete holds the endpoint's row while it removes the rest: a batch recording its moves
    meanwhile skips that endpoint and commits at once (on PostgreSQL; SQLite has one writer)."""
    endpoint, _ = make_endpoint(HOOK, events=[WebhookEvent.DELIVERY_STATUS])
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    routes()
    locked, release, recorded = threading.Event(), threading.Event(), []

    def deleting():
        try:
            with transaction.atomic():
                WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)  # as the delete does, last
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    def ledger_batch():
        try:
            with transaction.atomic():
                delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
            recorded.append(WebhookMessage.objects.count())
        finally:
            connection.close()

    if connection.vendor == "postgresql":
        holder = threading.Thread(target=deleting)
        holder.start()
        assert locked.wait(30)
        batch = threading.Thread(target=ledger_batch)
        batch.start()
        batch.join(20)
        finished_first = not batch.is_alive()
        release.set()
        holder.join(30)
        batch.join(30)
        assert finished_first and recorded == [0]  # committed while the delete held the row, nothing for it
    release.set()
    ledger_batch()
    assert recorded[-1] == 1  # once the row is free again, the endpoint gets its event


@pytest.mark.django_db
def test_a_large_outbox_goes_in_batches_with_its_log(loopback_allowed, monkeypatch):
    from notifications.webhooks import services
    from notifications.models import WebhookAttempt

    monkeypatch.setattr(services, "DELETE_BATCH", 3)
    endpoint, _ = make_endpoint(HOOK, events=[WebhookEvent.DELIVERY_STATUS])
    keep, _ = make_endpoint(HOOK, events=[WebhookEvent.DELIVERY_STATUS])
    delivery_statuses_recording.send(sender=Delivery, changes=[(DeliveryFactory(status="sent").pk, "sent")
                                                               for _ in range(8)])
    for message in WebhookMessage.objects.all():
        WebhookAttempt.objects.create(delivery=message, outcome="failed", error="HTTP 500")

    assert webhook_endpoint_delete(endpoint=endpoint)

    assert not WebhookMessage.objects.filter(webhook_endpoint_id=endpoint.pk).exists()
    assert WebhookMessage.objects.filter(webhook_endpoint=keep).count() == 8  # another endpoint's outbox stays
    assert WebhookAttempt.objects.count() == 8
    assert not webhook_endpoint_delete(endpoint=endpoint)  # deleting again: nothing to do


@pytest.mark.django_db
def test_an_endpoint_deleted_during_a_post_ends_the_drain_cleanly(loopback_allowed, monkeypatch):
    """Staff delete an endpoint while a drain is waiting for its receiver: the answer has no
    message left to be logged against, so the drain logs nothing (no attempt pointing at a deleted
    delivery, which the database would refuse at commit) and stops instead of posting the rest."""
    from notifications.models import WebhookAttempt
    from notifications.webhooks import sending
    from notifications.webhooks.sending import webhook_endpoint_drain

    endpoint, _ = make_endpoint(HOOK, events=[WebhookEvent.DELIVERY_STATUS])
    delivery_statuses_recording.send(sender=Delivery, changes=[(DeliveryFactory(status="sent").pk, "sent")
                                                               for _ in range(3)])
    posted = []

    def deleted_while_waiting(endpoint_, message, **kwargs):
        posted.append(message.pk)
        assert webhook_endpoint_delete(endpoint=WebhookEndpoint.objects.get(pk=endpoint_.pk))
        return sending.Answer(WebhookAttempt.Outcome.SENT, code=200)

    monkeypatch.setattr(sending, "_request", deleted_while_waiting)
    webhook_endpoint_drain(endpoint_id=endpoint.pk)

    assert len(posted) == 1
    assert not WebhookMessage.objects.exists() and not WebhookAttempt.objects.exists()
