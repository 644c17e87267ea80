"""In-app fan-out writes what it must: the inbox is delivered while it is planned (issue 10).

A ``notify()`` to the inbox writes each ledger row as ``sent`` together with its inbox row and
its ``sent`` receipt, with no send task, and stores a message many people get once. Every
guarantee of the ledger holds: idempotency keys, decisions recorded per recipient, signals and
the live update after commit, nothing at all after a rollback.
"""

from __future__ import annotations

from datetime import time

import pytest
from django.db import transaction
from django.urls import reverse

from notifications.api import notify
from notifications.models import (
    Delivery,
    DeliveryEvent,
    MessageTemplate,
    Notification,
    NotificationContent,
    Preference,
    Suppression,
)
from notifications.signals import delivery_status_changed, notification_sent
from tests.factories import CategoryFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

INBOX = reverse("notifications:inbox")


@pytest.fixture
def people():
    return [RecipientProfileFactory(user=UserFactory(username=f"fan{i}", first_name=f"Fan{i}")).user for i in range(4)]


@pytest.fixture
def system():
    return CategoryFactory(key="service-status", name="Service status", kind="system")


@pytest.fixture
def marketing():
    return CategoryFactory(key="promotions", name="Promotions", kind="marketing")


def inbox_html(client, user) -> str:
    client.force_login(user)
    return client.get(INBOX).content.decode()


def test_notify_puts_the_message_in_every_inbox_at_once(client, people, system, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = notify(people, title="Maintenance tonight", body="Read-only 02:00-02:15 UTC.", url="/status/",
                        category=system, idempotency_key="maint-1")

    # No send task and no worker: every recipient already has it, with their badge counting it.
    assert (result.planned, result.delivered, result.batches) == (4, 4, 0)
    for person in people:
        html = inbox_html(client, person)
        assert "Maintenance tonight" in html and "Read-only 02:00-02:15 UTC." in html
        assert client.get(reverse("notifications:badge")).content.decode().count(">1</span>") == 1
    # The ledger is complete: each delivery sent, with its receipt and its inbox row.
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert DeliveryEvent.objects.filter(kind="sent", delivery__channel="inapp").count() == 4
    assert Notification.objects.filter(delivery__isnull=False).count() == 4
    # The text is stored once, not per recipient.
    shared = NotificationContent.objects.get()
    assert (shared.title, shared.url) == ("Maintenance tonight", "/status/")
    assert set(Notification.objects.values_list("content_id", "title", "body")) == {(shared.pk, "", "")}


def test_planning_the_same_key_again_delivers_only_to_those_not_reached_yet(people, system):
    first, *others = people
    notify([first], title="Maintenance tonight", category=system, idempotency_key="maint-2")

    again = notify(people, title="Maintenance tonight", category=system, idempotency_key="maint-2")

    assert (again.planned, again.already_known) == (3, 1)
    for person in people:
        assert Notification.objects.filter(recipient=person).count() == 1
    assert Delivery.objects.count() == DeliveryEvent.objects.filter(kind="sent").count() == 4
    # A repeat of a whole fan-out writes nothing at all.
    assert notify(people, title="Maintenance tonight", category=system, idempotency_key="maint-2").planned == 0
    assert Notification.objects.count() == 4


def test_decisions_are_recorded_per_recipient_and_quiet_hours_do_not_hold_the_inbox(client, people, marketing):
    opted_out, suppressed, sleeping, digest = people
    Preference.objects.create(user=opted_out, category=marketing, channel="inapp", enabled=False)
    Suppression.objects.create(channel="inapp", address=str(suppressed.pk), reason="manual")
    profile = sleeping.recipient_profile
    profile.quiet_hours_start, profile.quiet_hours_end = time(0, 0), time(23, 59)  # asleep all day
    profile.save()
    Preference.objects.create(user=digest, category=marketing, channel="inapp", digest="daily")

    notify(people, title="Spring sale", category=marketing, idempotency_key="sale-1")

    outcome = {d.recipient_id: (d.status, d.status_reason) for d in Delivery.objects.all()}
    assert outcome[opted_out.pk] == ("suppressed", "suppressed:opted_out")
    assert outcome[suppressed.pk] == ("suppressed", "suppressed:manual")
    assert outcome[sleeping.pk] == ("sent", "")  # the inbox waits silently: quiet hours do not hold it
    assert outcome[digest.pk] == ("planned", "digest:daily")  # folded into tomorrow's digest, as before
    assert "Spring sale" in inbox_html(client, sleeping)
    for person in (opted_out, suppressed, digest):
        assert "Spring sale" not in inbox_html(client, person)


def test_signals_and_live_updates_go_out_after_commit_only(people, system, django_capture_on_commit_callbacks):
    heard: list[tuple] = []

    def on_sent(sender, delivery_ids, **kwargs):
        heard.append(("sent", sorted(delivery_ids)))

    def on_status(sender, delivery_id, status, **kwargs):
        heard.append(("status", status))

    notification_sent.connect(on_sent, dispatch_uid="test-fanout-sent")
    delivery_status_changed.connect(on_status, dispatch_uid="test-fanout-status")
    try:
        with django_capture_on_commit_callbacks() as callbacks:
            notify(people, title="Maintenance tonight", category=system, idempotency_key="maint-3")
        assert heard == []  # nothing is announced before the transaction commits
        for callback in callbacks:
            callback()
    finally:
        notification_sent.disconnect(dispatch_uid="test-fanout-sent")
        delivery_status_changed.disconnect(dispatch_uid="test-fanout-status")
    ids = sorted(Delivery.objects.values_list("id", flat=True))
    assert heard[0] == ("sent", ids)
    assert heard[1:] == [("status", "sent")] * 4


def test_a_rolled_back_notify_leaves_no_trace(people, system, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        with transaction.atomic():
            notify(people, title="Never mind", category=system)
            raise RuntimeError("the caller failed")
    assert callbacks == []
    assert not Delivery.objects.exists() and not Notification.objects.exists()
    assert not NotificationContent.objects.exists()


def test_templated_inbox_messages_are_rendered_per_recipient_and_keep_their_own_text(client, people, system):
    MessageTemplate.objects.create(key="hello-inbox", name="Hello", category=system,
                                   inapp_title="Hello {{ recipient.first_name }}", inapp_body="Welcome aboard.")
    notify(people[:2], template="hello-inbox", idempotency_key="hello-1")

    assert "Hello Fan0" in inbox_html(client, people[0])
    assert "Hello Fan1" in inbox_html(client, people[1])
    assert "Hello Fan0" not in inbox_html(client, people[1])
    assert not NotificationContent.objects.exists()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_template_that_cannot_render_fails_its_delivery_with_the_reason(client, people, system):
    MessageTemplate.objects.create(key="broken-inbox", name="Broken", category=system,
                                   inapp_title="Order {{ order.number }} paid")  # no "order" given
    notify(people[:1], template="broken-inbox", idempotency_key="broken-1")

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.status_reason, delivery.sent_at) == ("failed", "template_error", None)
    assert list(DeliveryEvent.objects.values_list("kind", flat=True)) == ["failed"]
    assert not Notification.objects.exists()
    assert "Order" not in inbox_html(client, people[0])


def test_a_fan_out_planned_in_several_chunks_stores_its_text_once(client, people, system):
    from notifications.ledger import PlannedDelivery, deliveries_plan

    content = {"subject": "Maintenance tonight", "text": "Read-only."}
    planned = [
        PlannedDelivery(idempotency_key=f"chunks:{p.pk}:inapp", channel="inapp", address=str(p.pk), recipient_id=p.pk,
                        category_id=system.pk, content=content)
        for p in people
    ]
    with transaction.atomic():
        result = deliveries_plan(planned=planned, chunk_size=3)  # two chunks

    assert result.delivered == 4
    assert NotificationContent.objects.count() == 1
    assert set(Notification.objects.values_list("content__title", flat=True)) == {"Maintenance tonight"}
    assert "Maintenance tonight" in inbox_html(client, people[-1])


def test_staff_see_a_fan_out_s_shared_text_in_the_notification_admin(client, people, system):
    from django.contrib.auth import get_user_model

    notify(people, title="Maintenance tonight", category=system, idempotency_key="admin-list")
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    changelist = reverse("admin:notifications_notification_changelist")
    assert client.get(changelist).content.decode().count("Maintenance tonight") == 4
    assert client.get(changelist, {"q": "Maintenance"}).content.decode().count("Maintenance tonight") == 4


def test_a_fan_out_s_queries_do_not_grow_with_its_recipients(system, django_assert_num_queries):
    from django.db import connection

    few = [UserFactory(username=f"few{i}").pk for i in range(3)]
    many = [UserFactory(username=f"many{i}").pk for i in range(120)]
    notify(few[:1], title="Warm-up", category=system)  # caches filled once per process (category, channels)
    # Reads: recipients, preferences, suppressions; writes: the shared text, then ledger rows,
    # inbox rows and receipts (one statement each per chunk: on SQLite they bypass Django's query
    # log, see ``ledger.rows``); plus the savepoint of notify()'s transaction inside the test's.
    expected = 6 if connection.vendor == "sqlite" else 9
    for recipients in (few, many):
        with django_assert_num_queries(expected):
            result = notify(recipients, title=f"To {len(recipients)}", category=system)
        assert result.delivered == len(recipients)
    assert Notification.objects.filter(recipient_id__in=many, content__title="To 120").count() == 120
    assert DeliveryEvent.objects.filter(kind="sent", delivery__recipient_id__in=many).count() == 120
