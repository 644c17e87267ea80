"""The ledger pipeline: plan, claim, send, record, retry, sweep — with the locmem twins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.api import notify
from notifications.models import Delivery, DeliveryEvent, Notification, Preference, Suppression
from tests.factories import CategoryFactory, RecipientProfileFactory, UserFactory
from tests.notifications.conftest import LOCMEM

pytestmark = pytest.mark.django_db



@pytest.fixture(autouse=True)
def quick_retries(locmem_channels):
    locmem_channels.SIGNALBOX_RETRY_BASE_SECONDS = 10
    locmem_channels.SIGNALBOX_MAX_ATTEMPTS = 3
    return locmem_channels


@pytest.fixture
def people():
    return [RecipientProfileFactory(user=UserFactory(username=f"p{i}")).user for i in range(3)]


@pytest.fixture
def transactional():
    return CategoryFactory(key="order-updates", name="Order updates", kind="transactional", user_can_opt_out=False)


@pytest.fixture
def marketing():
    return CategoryFactory(key="promotions", name="Promotions", kind="marketing")


def planned_ids(**filters) -> list[int]:
    return list(Delivery.objects.filter(status="planned", **filters).order_by("id").values_list("id", flat=True))


def test_notify_inapp_sends_each_recipient_once(people, transactional, django_capture_on_commit_callbacks):
    # The inbox is a local channel: planning writes the deliveries as sent with their inbox rows
    # (tests/notifications/test_inapp_fanout.py); no send task, one live update and one announcement.
    with django_capture_on_commit_callbacks() as callbacks:
        result = notify(people, title="Order shipped", body="Tracking 1Z", category=transactional, idempotency_key="o-1")
    assert (result.planned, result.delivered, result.batches, len(callbacks)) == (3, 3, 0, 2)
    assert ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True))).claimed == 0
    assert Notification.objects.filter(content__title="Order shipped", content__body="Tracking 1Z").count() == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert DeliveryEvent.objects.filter(kind="sent").count() == 3

    again = notify(people, title="Order shipped", body="Tracking 1Z", category=transactional, idempotency_key="o-1")
    assert (again.planned, again.already_known) == (0, 3)
    assert ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True))).claimed == 0
    assert Notification.objects.count() == 3


def test_dropped_recipients_are_recorded_with_a_reason(people, marketing, transactional):
    opted_out, suppressed, no_phone = people
    Preference.objects.create(user=opted_out, category=marketing, channel="email", enabled=False)
    Suppression.objects.create(channel="email", address=suppressed.email, reason="hard_bounce")
    no_phone.recipient_profile.phone = ""
    no_phone.recipient_profile.save()

    notify(people, title="Sale", channels=["email", "sms"], category=marketing)
    reasons = dict(Delivery.objects.filter(status="suppressed").values_list("idempotency_key", "status_reason"))
    by_user = {key.split(":")[2] + ":" + key.split(":")[3]: reason for key, reason in reasons.items()}
    assert by_user == {
        f"{opted_out.pk}:email": "suppressed:opted_out",
        f"{suppressed.pk}:email": "suppressed:hard_bounce",
        f"{no_phone.pk}:sms": "suppressed:no_address",
    }
    # Transactional mail ignores the marketing opt-out but never a suppression.
    notify(people, title="Receipt", channels=["email"], category=transactional)
    receipt = Delivery.objects.filter(content__subject="Receipt")
    assert set(receipt.filter(status="planned").values_list("recipient_id", flat=True)) == {opted_out.pk, no_phone.pk}
    assert receipt.get(recipient=suppressed).status_reason == "suppressed:hard_bounce"


def test_transient_errors_retry_with_backoff_then_fail(people, transactional, locmem_channels):
    victim = people[0]
    locmem_channels.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": LOCMEM, "OPTIONS": {"fail_transient": {victim.email}}},
    }
    notify(people, title="Hi", channels=["email"], category=transactional)
    start = timezone.now()
    summary = ledger.deliveries_send(delivery_ids=planned_ids())
    assert (summary.sent, summary.deferred) == (2, 1)
    deferred = Delivery.objects.get(recipient=victim)
    assert deferred.status == "deferred" and deferred.attempts == 1
    assert start + timedelta(seconds=5) <= deferred.next_attempt_at <= timezone.now() + timedelta(seconds=10)
    # Not due yet: nothing to claim.
    assert ledger.deliveries_send(delivery_ids=[deferred.pk]).claimed == 0
    for attempt in (2, 3):
        later = deferred.next_attempt_at + timedelta(seconds=1)
        ledger.deliveries_send(delivery_ids=[deferred.pk], now=later)
        deferred.refresh_from_db()
        assert deferred.attempts == attempt
    assert deferred.status == "failed"
    assert deferred.status_reason == "gave_up:simulated_transient"
    assert len(LocmemChannel.outbox) == 2


def test_permanent_and_unknown_outcomes(people, transactional, locmem_channels):
    refused, lost, fine = people
    locmem_channels.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": LOCMEM, "OPTIONS": {"fail_permanent": {refused.email}, "unknown_outcome": {lost.email}}},
    }
    notify(people, title="Hi", channels=["email"], category=transactional)
    summary = ledger.deliveries_send(delivery_ids=planned_ids())
    assert (summary.sent, summary.failed, summary.unknown, summary.deferred) == (1, 1, 1, 0)
    assert Delivery.objects.get(recipient=refused).status_reason == "simulated_permanent"
    assert Delivery.objects.get(recipient=lost).status == "unknown"
    assert Delivery.objects.get(recipient=fine).provider_message_id.startswith("locmem-")


def test_a_claimed_batch_cannot_be_claimed_again(people, transactional):
    notify(people, title="Hi", channels=["email"], category=transactional)
    ids = planned_ids()
    now = timezone.now()
    first = ledger.deliveries_claim(delivery_ids=ids, owner="w1", now=now)
    second = ledger.deliveries_claim(delivery_ids=ids, owner="w2", now=now)
    assert len(first) == 3 and second == []


def test_unsubscribe_after_planning_wins_at_send_time(people, transactional):
    notify(people, title="Hi", channels=["email"], category=transactional)
    Suppression.objects.create(channel="email", address=people[1].email, reason="unsubscribe")
    summary = ledger.deliveries_send(delivery_ids=planned_ids())
    assert (summary.sent, summary.suppressed) == (2, 1)
    assert people[1].email not in {p.message.address for p in LocmemChannel.outbox}
    assert Delivery.objects.get(recipient=people[1]).status_reason == "suppressed:unsubscribe"


def test_sweeper_requeues_deliveries_that_never_left_on_every_channel(
    people, transactional, django_capture_on_commit_callbacks
):
    """A worker that died after claiming but before handing anything off sent nothing: the
    sweeper puts every such delivery back in line, SMS too (it used to mark SMS unknown)."""
    notify(people, title="Hi", channels=["email", "sms"], category=transactional)
    ids = planned_ids()
    past = timezone.now() - timedelta(hours=1)
    ledger.deliveries_claim(delivery_ids=ids, owner="dead-worker", now=past)  # lease long expired
    with django_capture_on_commit_callbacks() as callbacks:
        assert ledger.deliveries_sweep_expired_leases() == 6
    assert set(Delivery.objects.values_list("status", "attempts")) == {("deferred", 0)}
    assert len(callbacks) == 3  # one send batch per channel, and deliveries_swept (ops counts it)
    summary = ledger.deliveries_send(delivery_ids=ids)
    assert summary.sent == 6
    assert sorted(p.message.address for p in LocmemChannel.outbox) == sorted(
        [p.email for p in people] + [p.recipient_profile.phone for p in people]
    )


def _die_in_flight(ids: list[int]) -> None:
    """A worker claims, marks the deliveries in flight and dies before any answer comes back."""
    past = timezone.now() - timedelta(hours=1)
    ledger.deliveries_claim(delivery_ids=ids, owner="dead-worker", now=past)
    assert ledger.mark_in_flight(delivery_ids=ids, owner="dead-worker") == len(ids)


def test_in_flight_deliveries_of_an_at_most_once_category_become_unknown_never_sent(people, marketing):
    notify(people, title="Sale", channels=["email", "sms"], category=marketing)
    ids = planned_ids()
    _die_in_flight(ids)

    assert ledger.deliveries_sweep_expired_leases() == 6

    assert set(Delivery.objects.values_list("status", "status_reason")) == {("unknown", "lost_in_flight")}
    assert not DeliveryEvent.objects.filter(kind="sent").exists()
    assert ledger.deliveries_send(delivery_ids=ids).claimed == 0  # never re-sent
    assert LocmemChannel.outbox == []


def test_in_flight_deliveries_of_an_at_least_once_category_are_resent_where_the_channel_allows(
    people, transactional
):
    transactional.resend_policy = "at_least_once"
    transactional.save()
    notify(people, title="Receipt", channels=["email", "sms"], category=transactional)
    ids = planned_ids()
    _die_in_flight(ids)

    ledger.deliveries_sweep_expired_leases()

    # Email can go again as the same message; an SMS sent twice is two texts.
    assert set(Delivery.objects.filter(channel="email").values_list("status", "status_reason")) == {
        ("deferred", "resend_after_lost_lease")
    }
    assert set(Delivery.objects.filter(channel="sms").values_list("status", flat=True)) == {"unknown"}
    summary = ledger.deliveries_send(delivery_ids=ids)
    assert summary.sent == 3
    assert {p.message.address for p in LocmemChannel.outbox} == {p.email for p in people}
    keys = {p.message.delivery_id: p.message.idempotency_key for p in LocmemChannel.outbox}
    assert keys == {d.pk: ledger.delivery_message_key(d) for d in Delivery.objects.filter(channel="email")}


def test_a_wave_is_marked_in_flight_before_it_leaves_and_results_are_recorded_as_they_come(
    people, transactional, settings
):
    """What the adapter sees in the ledger at each step: its messages marked in flight before
    they go, the previous message's outcome already recorded."""
    seen: list[tuple] = []

    class Observing(LocmemChannel):
        def send_payload(self, payload, message, lane):
            seen.append({(d.pk, d.status, d.status_reason) for d in Delivery.objects.filter(channel="email")})
            return super().send_payload(payload, message, lane)

    settings.NOTIFICATION_CHANNELS = {**settings.NOTIFICATION_CHANNELS, "email": {
        "BACKEND": f"{__name__}.Observing", "OPTIONS": {},
    }}
    globals()["Observing"] = Observing
    notify(people[:2], title="Receipt", channels=["email"], category=transactional)
    first, second = planned_ids()

    ledger.deliveries_send(delivery_ids=[first, second])

    assert seen[0] == {(first, "sending", "in_flight"), (second, "sending", "")}
    assert seen[1] == {(first, "sent", ""), (second, "sending", "in_flight")}


def test_results_of_a_lost_lease_are_not_recorded(people, transactional):
    notify(people[:1], title="Hi", channels=["email"], category=transactional)
    [delivery] = ledger.deliveries_claim(delivery_ids=planned_ids(), owner="slow", now=timezone.now())
    Delivery.objects.filter(pk=delivery.pk).update(lease_owner="someone-else")
    from channels_adapters.base import SendResult

    summary = ledger.SendSummary()
    ledger.deliveries_record_results(
        deliveries=[delivery], results=[SendResult(delivery.pk, provider_message_id="x")], owner="slow", summary=summary
    )
    assert summary.sent == 0
    assert Delivery.objects.get(pk=delivery.pk).status == "sending"


@pytest.mark.parametrize("update_returning", [True, False], ids=["update-returning", "select-for-update"])
def test_a_wave_of_results_is_written_per_message_and_skips_the_one_whose_lease_was_lost(
    transactional, update_returning, monkeypatch,
):
    """One write for a wave: each sent message keeps its own provider id, a refusal fails with
    its receipt, a transient error waits for its retry, and a row the sweeper gave to another
    worker keeps that worker's state and gets no receipt from us. The same where the database
    has no ``UPDATE ... RETURNING`` (SQLite before 3.35: the rows still ours are read first)."""
    from django.db import connection

    from channels_adapters.base import SendResult
    from channels_adapters.errors import PermanentChannelError, TransientChannelError

    recipients = UserFactory.create_batch(5)
    notify(recipients, title="Receipt", channels=["email"], category=transactional)
    claimed = ledger.deliveries_claim(delivery_ids=planned_ids(), owner="me", now=timezone.now())
    a, b, refused, later, taken = claimed
    Delivery.objects.filter(pk=taken.pk).update(lease_owner="someone-else")

    summary = ledger.SendSummary()
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", update_returning)
    ledger.deliveries_record_results(
        deliveries=claimed,
        results=[
            SendResult(a.pk, provider_message_id="id-a"),
            SendResult(b.pk, provider_message_id="id-b"),
            SendResult(refused.pk, error=PermanentChannelError("SMTP 550 no such user", reason="smtp_550")),
            SendResult(later.pk, error=TransientChannelError("SMTP 451 try later", reason="smtp_451")),
            SendResult(taken.pk, provider_message_id="id-taken"),
        ],
        owner="me", summary=summary,
    )

    rows = {d.pk: d for d in Delivery.objects.filter(pk__in=[d.pk for d in claimed])}
    assert (rows[a.pk].status, rows[a.pk].provider_message_id) == ("sent", "id-a")
    assert (rows[b.pk].status, rows[b.pk].provider_message_id) == ("sent", "id-b")
    assert (rows[refused.pk].status, rows[refused.pk].status_reason) == ("failed", "smtp_550")
    assert (rows[later.pk].status, rows[later.pk].status_reason) == ("deferred", "smtp_451")
    assert rows[later.pk].next_attempt_at is not None
    assert all(rows[d.pk].lease_owner == "" for d in (a, b, refused, later))
    assert (rows[taken.pk].status, rows[taken.pk].lease_owner, rows[taken.pk].provider_message_id) == (
        "sending", "someone-else", "")
    assert (summary.sent, summary.failed, summary.deferred) == (2, 1, 1)
    assert set(DeliveryEvent.objects.values_list("delivery_id", "kind")) >= {(a.pk, "sent"), (b.pk, "sent"), (refused.pk, "failed")}
    assert not DeliveryEvent.objects.filter(delivery_id=taken.pk, kind__in=["sent", "failed"]).exists()
    assert taken.status == "sending"  # our copy is left as it was, too


@pytest.mark.parametrize("channel", ["email", "inapp"])
def test_an_idempotency_key_longer_than_the_column_is_never_cut_into_another_one(people, transactional, channel):
    """Two calls whose keys share their first 255 characters are two calls. PostgreSQL refuses a
    key longer than the column (as an INSERT does); it must not cut it to the column's size and
    take the second call for the first (the rows' values are bound with a cast)."""
    from django.db import DataError, connection, transaction

    prefix = "k" * 260
    for suffix in ("-first", "-second"):
        if connection.vendor == "postgresql":
            with pytest.raises(DataError), transaction.atomic():
                notify(people[:1], title="Hi", channels=[channel], category=transactional,
                       idempotency_key=prefix + suffix)
        else:  # SQLite keeps a text whole whatever its declared size
            result = notify(people[:1], title="Hi", channels=[channel], category=transactional,
                            idempotency_key=prefix + suffix)
            assert (result.planned, result.already_known) == (1, 0)
    keys = set(Delivery.objects.values_list("idempotency_key", flat=True))
    assert all(len(key) > 260 for key in keys) and len(keys) == (0 if connection.vendor == "postgresql" else 2)

    # Looked up the same way: a longer key does not find the row holding its first 255 characters.
    notify(people[:1], title="Hi", channels=[channel], category=transactional, idempotency_key="short")
    Delivery.objects.filter(idempotency_key__contains="short").update(idempotency_key="x" * 255)
    assert Delivery.objects.filter(idempotency_key__in_list={"x" * 255}).exists()
    assert not Delivery.objects.filter(idempotency_key__in_list={"x" * 255 + "y"}).exists()


def test_a_wave_of_retries_that_all_went_out_is_written_in_one_update(people, transactional):
    """Retried deliveries each carry their own jittered retry time; a sent outcome leaves it as it
    is, so the wave still differs only in provider ids and is one UPDATE, not one per message."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from channels_adapters.base import SendResult

    notify(people, title="Receipt", channels=["email"], category=transactional)
    now = timezone.now()
    ids = planned_ids()
    for minutes, pk in enumerate(ids, start=1):
        Delivery.objects.filter(pk=pk).update(status="deferred", next_attempt_at=now - timedelta(minutes=minutes))
    claimed = ledger.deliveries_claim(delivery_ids=ids, owner="me", now=now)
    assert len(claimed) == 3

    with CaptureQueriesContext(connection) as queries:
        ledger.deliveries_record_results(
            deliveries=claimed, results=[SendResult(d.pk, provider_message_id=f"id-{d.pk}") for d in claimed],
            owner="me", summary=ledger.SendSummary(),
        )

    assert len([q for q in queries if q["sql"].startswith("UPDATE")]) == 1
    rows = Delivery.objects.filter(pk__in=ids).order_by("id")
    assert [(d.status, d.provider_message_id, d.lease_owner) for d in rows] == [("sent", f"id-{pk}", "") for pk in ids]
    assert [d.next_attempt_at for d in rows] == [now - timedelta(minutes=m) for m in range(1, 4)]  # left as it was


def test_every_status_move_is_announced_per_delivery_and_once_per_batch(
    people, transactional, marketing, django_capture_on_commit_callbacks,
):
    """Integrators hear each move (``delivery_status_changed``) and per-batch listeners the same
    moves once per batch (``delivery_statuses_changed``): recorded outcomes and what the sweeper
    settles alike, after commit only. (The webhook outbox records them before the commit, inside
    it: ``delivery_statuses_recording``, tests/notifications/webhooks.)"""
    from channels_adapters.base import SendResult
    from channels_adapters.errors import PermanentChannelError
    from notifications.signals import delivery_status_changed, delivery_statuses_changed

    each: list[tuple[int, str]] = []
    batches: list[list[tuple[int, str]]] = []
    delivery_status_changed.connect(lambda sender, delivery_id, status, **kw: each.append((delivery_id, status)),
                                    sender=Delivery, weak=False, dispatch_uid="test-pipeline-each")
    delivery_statuses_changed.connect(lambda sender, changes, **kw: batches.append(list(changes)),
                                      sender=Delivery, weak=False, dispatch_uid="test-pipeline-batch")
    try:
        notify(people, title="Receipt", channels=["email"], category=transactional)
        a, b, refused = ledger.deliveries_claim(delivery_ids=planned_ids(), owner="me", now=timezone.now())
        with django_capture_on_commit_callbacks() as callbacks:
            ledger.deliveries_record_results(
                deliveries=[a, b, refused],
                results=[SendResult(a.pk, provider_message_id="id-a"), SendResult(b.pk, provider_message_id="id-b"),
                         SendResult(refused.pk, error=PermanentChannelError("SMTP 550", reason="smtp_550"))],
                owner="me", summary=ledger.SendSummary(),
            )
        assert (each, batches) == ([], [])  # nothing before commit
        for callback in callbacks:
            callback()
        recorded = [(a.pk, "sent"), (b.pk, "sent"), (refused.pk, "failed")]
        assert (each, batches) == (recorded, [recorded])

        each.clear()
        batches.clear()
        notify(people[:2], title="Sale", channels=["email"], category=marketing)
        lost = planned_ids()
        ledger.deliveries_claim(delivery_ids=lost, owner="dead", now=timezone.now() - timedelta(hours=1))
        ledger.mark_in_flight(delivery_ids=lost, owner="dead")
        with django_capture_on_commit_callbacks(execute=True):
            assert ledger.deliveries_sweep_expired_leases() == 2
        swept = [(pk, "unknown") for pk in lost]
        assert (sorted(each), [sorted(batch) for batch in batches]) == (swept, [swept])
    finally:
        delivery_status_changed.disconnect(sender=Delivery, dispatch_uid="test-pipeline-each")
        delivery_statuses_changed.disconnect(sender=Delivery, dispatch_uid="test-pipeline-batch")


def test_a_worker_slower_than_its_lease_keeps_the_batch_it_is_still_sending(people, transactional, settings):
    """The lease is renewed as waves go out: the sweeper does not take a batch from a live worker
    whose provider, rate limit or CPU share made it slower than one lease (which would leave the
    messages it then sends ``unknown`` and the rest sent by someone else)."""
    from freezegun import freeze_time

    from channels_adapters.base import SendResult
    from notifications.ledger.recording import ResultRecorder

    settings.SIGNALBOX_LEASE_SECONDS = 60
    notify(people, title="Receipt", channels=["email"], category=transactional)
    start = timezone.now()
    with freeze_time(start) as clock:
        claimed = ledger.deliveries_claim(delivery_ids=planned_ids(), owner="slow", now=start)
        summary = ledger.SendSummary()
        recorder = ResultRecorder(deliveries=claimed, members={d.pk: [d.pk] for d in claimed}, owner="slow",
                                  summary=summary)
        # One message a wave, forty seconds apart (a slow provider): the batch outlives its lease.
        for wave, delivery in enumerate(claimed):
            if wave:
                clock.tick(timedelta(seconds=40))
                assert ledger.deliveries_sweep_expired_leases() == 0  # another scheduler's sweep
            assert recorder.on_handoff([delivery.pk]) is None  # still ours: nothing was taken
            recorder.on_result(SendResult(delivery.pk, provider_message_id=f"m{delivery.pk}"))
        clock.tick(timedelta(seconds=30))  # 110 s after the claim: well past the first lease
        assert ledger.deliveries_sweep_expired_leases() == 0
        recorder.flush()

    assert summary.sent == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_status_only_moves_forward(people, transactional):
    notify(people[:1], title="Hi", channels=["email"], category=transactional)
    ledger.deliveries_send(delivery_ids=planned_ids())
    delivery = Delivery.objects.get()
    assert ledger.delivery_advance_status(delivery=delivery, status="opened")
    assert not ledger.delivery_advance_status(delivery=delivery, status="delivered")  # late receipt
    delivery.refresh_from_db()
    assert delivery.status == "opened" and delivery.opened_at is not None and delivery.delivered_at is None


def test_retry_delay_grows_and_is_capped(settings):
    import random

    settings.SIGNALBOX_RETRY_BASE_SECONDS = 30
    settings.SIGNALBOX_RETRY_MAX_SECONDS = 600
    rng = random.Random(1)
    delays = [ledger.retry_delay(n, rng=rng).total_seconds() for n in range(1, 8)]
    assert 15 <= delays[0] <= 30 and 30 <= delays[1] <= 60 and 60 <= delays[2] <= 120
    assert all(d <= 600 for d in delays) and delays[-1] >= 300
    assert ledger.retry_delay(1, retry_after=900).total_seconds() == 900


def test_notify_refuses_bad_arguments(people, transactional):
    with pytest.raises(ValueError, match="Unknown channel"):
        notify(people, title="x", channels=["fax"], category=transactional)
    with pytest.raises(ValueError, match="title"):
        notify(people, title="  ", category=transactional)
    assert not Delivery.objects.exists()


def test_a_retry_is_enqueued_for_when_it_is_due(people, transactional, locmem_channels, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    locmem_channels.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": LOCMEM, "OPTIONS": {"fail_transient": {people[0].email}}},
    }
    notify(people, title="Hi", channels=["email"], category=transactional)
    with django_capture_on_commit_callbacks(execute=True):
        ledger.deliveries_send(delivery_ids=planned_ids())
    deferred = Delivery.objects.get(recipient=people[0])
    retry = DBTaskResult.objects.get(task_path="notifications.ledger.tasks.deliveries_send_task")
    assert retry.args_kwargs["kwargs"] == {"delivery_ids": [deferred.pk]}
    assert retry.run_after == deferred.next_attempt_at


def test_scheduler_backstop_requeues_due_work_whose_task_was_lost(people, transactional, django_capture_on_commit_callbacks):
    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    notify(people, title="Hi", channels=["email"], category=transactional)  # its tasks are "lost": never run
    Delivery.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    DBTaskResult.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("signalbox_scheduler", "--once", stdout=open("/dev/null", "w"))
    [task] = DBTaskResult.objects.filter(task_path="notifications.ledger.tasks.deliveries_send_task")
    assert sorted(task.args_kwargs["kwargs"]["delivery_ids"]) == planned_ids()


def test_retry_failed_gives_failed_deliveries_new_attempts_but_never_unknown_ones(people, transactional, locmem_channels):
    from notifications.models import AuditEntry

    refused, lost, fine = people
    locmem_channels.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": LOCMEM, "OPTIONS": {"fail_permanent": {refused.email}, "unknown_outcome": {lost.email}}},
    }
    notify(people, title="Hi", channels=["email"], category=transactional)
    ledger.deliveries_send(delivery_ids=planned_ids())
    locmem_channels.NOTIFICATION_CHANNELS = {"email": {"BACKEND": LOCMEM, "OPTIONS": {}}}  # the fix

    assert ledger.deliveries_retry_failed(deliveries=Delivery.objects.all(), actor=fine) == 1
    summary = ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))
    assert summary.sent == 1
    assert Delivery.objects.get(recipient=refused).status == "sent"
    assert Delivery.objects.get(recipient=lost).status == "unknown"
    assert AuditEntry.objects.filter(action="deliveries.retry_failed").count() == 1


def test_declared_rates_pace_sends_through_the_shared_limiter(people, transactional, locmem_channels, monkeypatch):
    from notifications.ledger import ratelimit

    locmem_channels.NOTIFICATION_CHANNELS = {"sms": {"BACKEND": LOCMEM, "OPTIONS": {"max_per_second": 2}}}
    calls = []
    monkeypatch.setattr(ratelimit, "acquire", lambda **kwargs: calls.append(kwargs))
    for person in people:
        person.recipient_profile.phone = f"+1415555{person.pk:04d}"
        person.recipient_profile.save()
    notify(people, title="Code 1234", channels=["sms"], category=transactional)
    summary = ledger.deliveries_send(delivery_ids=planned_ids())
    assert summary.sent == 3
    assert calls == [{"channel": "sms", "count": 2, "rate": 2.0}, {"channel": "sms", "count": 1, "rate": 2.0}]


def test_inbox_reads_are_receipts(people, transactional):
    from notifications.inbox.services import notification_mark_read, notifications_mark_all_read

    notify(people[:1], title="One", category=transactional)
    notify(people[:1], title="Two", category=transactional)
    ledger.deliveries_send(delivery_ids=planned_ids())
    first, second = Notification.objects.order_by("id")
    notification_mark_read(user=people[0], notification_id=first.pk)
    assert Delivery.objects.get(pk=first.delivery_id).status == "read"
    assert Delivery.objects.get(pk=second.delivery_id).status == "sent"
    notifications_mark_all_read(user=people[0])
    notification_mark_read(user=people[0], notification_id=first.pk)  # again: nothing new
    assert set(Delivery.objects.values_list("status", flat=True)) == {"read"}
    assert DeliveryEvent.objects.filter(kind="read", source="inbox").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_wave_marked_in_flight_while_the_sweep_runs_is_never_put_back_in_line(people, marketing):
    """A worker whose lease ran out may be slow, not dead: it marks its next wave in flight just as
    the sweeper reads the batch. The sweep must see the mark (unknown: the provider may have it),
    never put the wave back in line to be sent again (PostgreSQL interleaves them; found by the
    crash test, where a descheduled worker's chat wave reached the provider twice)."""
    import threading

    from django.db import connection, transaction

    notify(people, title="Sale", channels=["email"], category=marketing)
    ids = planned_ids()
    ledger.deliveries_claim(delivery_ids=ids, owner="slow-worker", now=timezone.now() - timedelta(hours=1))
    marked, release = threading.Event(), threading.Event()

    def slow_worker():
        try:
            with transaction.atomic():  # the mark is written, not yet committed, when the sweep starts
                assert ledger.mark_in_flight(delivery_ids=ids, owner="slow-worker") == len(ids)
                marked.set()
                release.wait(10)
        finally:
            connection.close()

    worker = threading.Thread(target=slow_worker)
    worker.start()
    assert marked.wait(10)
    swept: list[int] = []

    def sweep():
        try:
            swept.append(ledger.deliveries_sweep_expired_leases())
        finally:
            connection.close()

    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    if connection.vendor == "postgresql":
        # The rows the slow worker holds are skipped, not waited for (the sweep never waits on a
        # worker, which might be waiting on the sweep's own locks).
        sweeper.join(10)
        assert swept == [0] and not release.is_set()
    release.set()  # the mark commits (on SQLite, the sweep's write transaction waited for it)
    worker.join()
    sweeper.join()
    ledger.deliveries_sweep_expired_leases()  # the next tick

    assert set(Delivery.objects.values_list("status", "status_reason")) == {("unknown", "lost_in_flight")}
    assert ledger.deliveries_send(delivery_ids=ids).claimed == 0


@pytest.mark.django_db(transaction=True)
def test_a_failing_status_listener_never_stops_a_wave_already_marked_in_flight(people, marketing, caplog):
    """The ledger announces status moves between waves (after each commit). A listener that raises
    (an integrator's, or one of ours) is logged; the batch goes on, so nothing is left marked in
    flight and never sent (which the sweep would later record as unknown)."""
    from notifications.signals import delivery_statuses_changed

    def broken(**kwargs):
        raise RuntimeError("listener bug")

    delivery_statuses_changed.connect(broken, dispatch_uid="t-broken-listener")
    try:
        notify(people, title="Sale", channels=["email"], category=marketing)
        summary = ledger.deliveries_send(delivery_ids=planned_ids())
    finally:
        delivery_statuses_changed.disconnect(dispatch_uid="t-broken-listener")
    assert summary.sent == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert len(LocmemChannel.outbox) == 3
    assert "listener bug" in caplog.text


HOSTILE_TEXTS = ["plain", "", " padded ", 'a "quoted" word', "back\\slash\\", "{braces},commas", "NULL", "中文",
                 "semi;colon'quote", "\\\"both\\\""]


def test_array_literals_carry_every_value_as_psycopg_would(db):
    """``pg_array`` builds one literal instead of letting psycopg quote each element: the array
    PostgreSQL reads from it is the one psycopg's own dumper gives, hostile strings included."""
    from datetime import UTC, date, datetime

    from django.db import connection

    from notifications.querysets import pg_array

    moment = datetime(2026, 12, 4, 21, 30, 15, 123456, tzinfo=UTC)
    cases = [("text", HOSTILE_TEXTS + [None]), ("bigint", [1, -2, 2**40, None]),
             ("timestamptz", [moment, None, moment]), ("date", [date(2026, 2, 28), None]), ("text", [])]
    for db_type, values in cases:
        literal = pg_array(values)
        assert isinstance(literal, str), (db_type, literal)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT %s::{db_type}[], %s::{db_type}[]", [literal, values])
                mine, psycopgs = cursor.fetchone()
            assert mine == psycopgs == values, (db_type, mine, psycopgs)
        else:  # no server to read it: the literal itself, as PostgreSQL's array syntax has it
            assert literal.startswith("{") and literal.endswith("}")
    assert pg_array(["a", 'b"c']) == '{"a","b\\"c"}'
    assert pg_array([True, 1.5]) == [True, 1.5]  # not handled here: psycopg's own dumper


def test_in_list_finds_hostile_strings_and_only_them(people, transactional):
    keys = [f"key {text}" for text in HOSTILE_TEXTS]
    for key in keys:
        notify(people[:1], title="Hi", channels=["inapp"], category=transactional, idempotency_key=key)
    stored = set(Delivery.objects.values_list("idempotency_key", flat=True))
    assert len(stored) == len(keys)
    wanted = {stored_key for stored_key in stored if any(key in stored_key for key in keys[::2])}
    assert len(wanted) == len(keys[::2])
    assert set(Delivery.objects.filter(idempotency_key__in_list=wanted).values_list("idempotency_key", flat=True)) == wanted
