"""A trigger's in-app part is in the inbox when the save commits; only the rest waits for a worker.

``notifications.triggers.inline``: the receivers' on-commit callback plans the in-app channels
at once, through ``trigger_fire`` (so the cap and approval checks and the count apply once),
and enqueues the other channels; any failure there queues the whole firing instead.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from channels_adapters.inapp import InappChannel
from demo_shop.models import Order
from notifications.models import Delivery, Notification, SignalTrigger
from notifications.triggers.tasks import trigger_fire_task

pytestmark = pytest.mark.django_db

DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.fixture(autouse=True)
def db_task_backend(settings):
    """The database task backend whatever the environment says, so queued work can be read back."""
    settings.TASKS = DB_TASKS


def queued_firings() -> list[dict]:
    from django_tasks_db.models import DBTaskResult

    rows = DBTaskResult.objects.filter(task_path="notifications.triggers.tasks.trigger_fire_task").order_by("enqueued_at")
    return [firing for row in rows for firing in row.args_kwargs["kwargs"]["firings"]]


def pay(order: Order, capture) -> None:
    """Save the order as paid in its own transaction, as a request would, and let it commit."""
    with capture(execute=True):
        with transaction.atomic():
            order.status = Order.Status.PAID
            order.save()


def inbox_titles(client, user) -> str:
    client.force_login(user)
    return client.get(reverse("notifications:inbox")).content.decode()


def test_the_inbox_has_it_when_the_save_commits_and_only_the_email_is_queued(
    client, make_trigger, make_order, customer, django_capture_on_commit_callbacks
):
    trigger = make_trigger(channels=["inapp", "email"])
    order = make_order()

    pay(order, django_capture_on_commit_callbacks)

    # No worker has run: the in-app delivery is already sent and on the customer's page.
    assert f"Order {order.number} paid" in inbox_titles(client, customer.user)
    assert list(Delivery.objects.values_list("channel", "status")) == [("inapp", "sent")]
    (rest,) = queued_firings()
    assert (rest["channels"], rest["counted"], rest["pk"]) == (["email"], False, order.pk)
    assert SignalTrigger.objects.get(pk=trigger.pk).fired_count == 1

    # The worker's part: the email, with the same firing's keys; the event is not counted twice.
    trigger_fire_task.call(firings=[rest])
    assert sorted(Delivery.objects.values_list("channel", flat=True)) == ["email", "inapp"]
    assert SignalTrigger.objects.get(pk=trigger.pk).fired_count == 1
    assert Notification.objects.count() == 1


def test_an_inapp_only_trigger_queues_nothing(make_trigger, make_order, customer, django_capture_on_commit_callbacks):
    make_trigger(channels=["inapp"])
    pay(make_order(), django_capture_on_commit_callbacks)
    assert Notification.objects.filter(recipient=customer.user).count() == 1
    assert queued_firings() == []


def test_a_rolled_back_save_notifies_no_one(make_trigger, make_order, django_capture_on_commit_callbacks):
    make_trigger(channels=["inapp", "email"])
    order = make_order()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            order.status = Order.Status.PAID
            order.save()
            raise RuntimeError("the request failed")
    assert not Delivery.objects.exists() and not Notification.objects.exists()
    assert queued_firings() == []


def test_the_approval_check_still_holds_an_event_once(
    settings, make_trigger, make_order, django_capture_on_commit_callbacks
):
    trigger = make_trigger(channels=["inapp", "email"])
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 0  # now every event reaches more people than allowed unapproved

    pay(make_order(), django_capture_on_commit_callbacks)

    trigger.refresh_from_db()
    assert trigger.held_count == 1 and trigger.fired_count == 0
    assert "approv" in trigger.last_held_reason.lower()
    assert not Delivery.objects.exists()
    assert queued_firings() == []  # held: nothing left for a worker either


class UnwritableInbox(InappChannel):
    """An inbox whose table cannot be written (a test double in the shape of a real adapter)."""

    def deliver_planned(self, messages):
        raise DatabaseError("disk I/O error")


def test_a_failure_after_commit_falls_back_to_the_queue_and_never_fails_the_save(
    settings, make_trigger, make_order, customer, django_capture_on_commit_callbacks, caplog
):
    trigger = make_trigger(channels=["inapp", "email"])
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        "inapp": {"BACKEND": f"{__name__}.UnwritableInbox", "OPTIONS": {}},
    }
    order = make_order()

    pay(order, django_capture_on_commit_callbacks)  # does not raise

    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert not Delivery.objects.exists()
    (firing,) = queued_firings()
    assert "channels" not in firing and firing["pk"] == order.pk  # the whole firing, for the worker
    assert "queued instead" in caplog.text
    assert SignalTrigger.objects.get(pk=trigger.pk).fired_count == 0


def test_an_audience_trigger_goes_to_the_queue_whole(make_trigger, make_order, django_capture_on_commit_callbacks):
    from tests.factories import AudienceFactory

    audience = AudienceFactory(rules={"all": []})
    make_trigger(channels=["inapp"], recipient_path="", audience=audience)
    pay(make_order(), django_capture_on_commit_callbacks)
    assert not Delivery.objects.exists()
    (firing,) = queued_firings()
    assert "channels" not in firing
