"""POST /api/v1/notifications and /api/v1/broadcasts: the same ledger as notify()."""

from __future__ import annotations

import pytest

from notifications.models import AuditEntry, Broadcast, Delivery, Notification
from tests.factories import (
    CategoryFactory,
    MessageTemplateFactory,
    RecipientProfileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_a_notification_by_id_external_id_and_email_reaches_three_inboxes(api):
    from api.models import ExternalId

    ada, grace, alan = (RecipientProfileFactory(user=UserFactory(username=n)).user for n in ("ada", "grace", "alan"))
    ExternalId.objects.create(user=grace, external_id="crm-42")
    response = api.post("/api/v1/notifications", {
        "recipients": [{"id": ada.pk}, {"external_id": "crm-42"}, {"email": "ALAN@example.com"}],
        "title": "Your order shipped", "body": "It is on its way.", "url": "/orders/1",
    })
    assert response.status_code == 202, response.content
    assert response.json()["planned"] == 3
    assert len(response.json()["delivery_ids"]) == 3
    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == sorted([ada.pk, grace.pk, alan.pk])


def test_a_template_is_rendered_with_the_context(api, recipient):
    MessageTemplateFactory(key="shipped", inapp_title="Order {{ order }} shipped", inapp_body="")
    response = api.post("/api/v1/notifications", {
        "recipients": [{"id": recipient.pk}], "template": "shipped", "context": {"order": "A-17"},
    })
    assert response.status_code == 202, response.content
    assert Notification.objects.get(recipient=recipient).title == "Order A-17 shipped"


def test_unknown_recipient_template_category_are_422_naming_the_field(api, recipient):
    response = api.post("/api/v1/notifications", {"recipients": [{"id": recipient.pk}, {"email": "nobody@x.org"}],
                                                   "title": "Hi"})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "recipients.1", "message": "No such recipient."}]
    response = api.post("/api/v1/notifications", {"recipients": [{"id": recipient.pk}], "template": "nope"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "template"
    response = api.post("/api/v1/notifications", {"recipients": [{"id": recipient.pk}], "title": "Hi",
                                                   "category": "nope"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "category"
    assert not Delivery.objects.exists()


def test_the_same_idempotency_key_twice_sends_once(api, recipient):
    body = {"recipients": [{"id": recipient.pk}], "title": "Once", "channels": ["inapp"]}
    first = api.post("/api/v1/notifications", body, headers={"Idempotency-Key": "order-17-shipped"})
    second = api.post("/api/v1/notifications", body, headers={"Idempotency-Key": "order-17-shipped"})
    assert first.status_code == second.status_code == 202
    assert (first.json()["planned"], second.json()["planned"]) == (1, 0)
    assert second.json()["already_known"] == 1
    assert first.json()["delivery_ids"] == second.json()["delivery_ids"]
    assert Delivery.objects.count() == 1 and Notification.objects.count() == 1
    third = api.post("/api/v1/notifications", body, headers={"Idempotency-Key": "another"})
    assert third.json()["planned"] == 1


def test_an_idempotency_key_reused_with_another_body_is_422(api, recipient, other_recipient):
    CategoryFactory(key="promotions", name="Promotions")
    MessageTemplateFactory(key="shipped", inapp_title="Order {{ order }} shipped", inapp_body="")
    sent = {"recipients": [{"id": recipient.pk}], "title": "Once", "channels": ["inapp"]}
    by_template = {"recipients": [{"id": recipient.pk}], "template": "shipped", "context": {"order": "A-17"}}
    assert api.post("/api/v1/notifications", sent, headers={"Idempotency-Key": "k1"}).status_code == 202
    assert api.post("/api/v1/notifications", by_template, headers={"Idempotency-Key": "k2"}).status_code == 202
    for key, body in [
        ("k1", {**sent, "title": "Twice"}),  # another message
        ("k1", {**sent, "url": "/orders/2"}),
        ("k1", {**sent, "channels": ["inapp", "email"]}),  # another channel
        ("k1", {**sent, "recipients": [{"id": recipient.pk}, {"id": other_recipient.pk}]}),  # someone more
        ("k2", {**by_template, "context": {"order": "B-2"}}),
        ("k1", by_template),
        ("k1", {**sent, "category": "promotions"}),  # another category
    ]:
        response = api.post("/api/v1/notifications", body, headers={"Idempotency-Key": key})
        assert response.status_code == 422, (key, body, response.content)
        assert response.json()["type"] == "/api/problems/idempotency-key-reused"
    assert Delivery.objects.count() == Notification.objects.count() == 2
    # The same body again is still the first answer.
    again = api.post("/api/v1/notifications", by_template, headers={"Idempotency-Key": "k2"})
    assert again.status_code == 202 and again.json()["already_known"] == 1


def test_idempotency_keys_belong_to_their_api_key(make_key, recipient):
    from tests.api.conftest import ApiClient

    body = {"recipients": [{"id": recipient.pk}], "title": "Hi"}
    for _ in range(2):
        ApiClient(make_key(["notify"]).secret).post("/api/v1/notifications", body, headers={"Idempotency-Key": "k1"})
    assert Delivery.objects.count() == 2


def test_a_broadcast_lands_in_every_inbox_and_the_call_is_audited_by_key(api, recipient):
    CategoryFactory(key="news")
    response = api.post("/api/v1/broadcasts", {"title": "Maintenance tonight", "category": "news"})
    assert response.status_code == 201, response.content
    broadcast = Broadcast.objects.get()
    assert response.json()["id"] == broadcast.pk and broadcast.category.key == "news"
    call = AuditEntry.objects.filter(action="api.call").get()
    assert call.actor_repr.startswith("API key Test server")
    assert call.changes == {"method": "POST", "path": "/api/v1/broadcasts", "status": 201}


def test_a_broadcast_with_a_javascript_link_is_422(api):
    response = api.post("/api/v1/broadcasts", {"title": "Hi", "url": "javascript:alert(1)"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "url"
