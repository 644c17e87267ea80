"""Outbound webhooks end to end against a real HTTP receiver on loopback: Standard Webhooks
signatures verified with the ``standardwebhooks`` library, every event once and in order per
delivery, retries with backoff, disabling with a notice to staff, honest unknowns, resend."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from notifications.models import (
    CampaignRun,
    Delivery,
    DeliveryEvent,
    JourneyEnrollment,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
)
from notifications.receipts.tracking import receipt_record, unsubscribe
from notifications.signals import campaign_finished, delivery_statuses_recording, journey_goal_reached
from notifications.webhooks.sending import webhook_endpoint_drain
from notifications.webhooks.services import webhook_messages_resend
from tests.factories import DeliveryFactory, staff_in

from .conftest import make_endpoint

pytestmark = pytest.mark.django_db
Status = WebhookMessage.Status


def verified(secret: str, received) -> list[dict]:
    """Every accepted body, verified by the reference library (raises on a bad signature)."""
    return [Webhook(secret).verify(raw, headers) for headers, raw in received]


def drain_until_quiet(endpoint, *, start=None, rounds: int = 20) -> list:
    """Drain now, then at each next retry time, until nothing waits (the clock is passed in)."""
    now = start or timezone.now()
    times = []
    for _ in range(rounds):
        webhook_endpoint_drain(endpoint_id=endpoint.pk, now=now)
        times.append(now)
        following = (WebhookMessage.objects.filter(webhook_endpoint=endpoint, next_attempt_at__isnull=False)
                     .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first())
        endpoint.refresh_from_db()
        if following is None or not endpoint.enabled:
            break
        now = max(now, following)
    return times


def test_signed_events_arrive_once_and_in_order_per_delivery(endpoint, receiver, django_capture_on_commit_callbacks):
    endpoint, secret = endpoint
    first, second = DeliveryFactory(status=Delivery.Status.SENT), DeliveryFactory(status=Delivery.Status.SENT)
    receiver.unavailable["all"] = 1  # the very first POST (first's "sent") gets a 503 and is retried
    with django_capture_on_commit_callbacks(execute=True):
        delivery_statuses_recording.send(sender=Delivery, changes=[(first.pk, "sent"), (second.pk, "sent")])
        # The same announcement again (a duplicated signal or retried task): nothing new.
        delivery_statuses_recording.send(sender=Delivery, changes=[(first.pk, "sent"), (second.pk, "sent")])
    for delivery, kind, event_id in ((first, DeliveryEvent.Kind.DELIVERED, "d1"), (first, DeliveryEvent.Kind.OPENED, "o1"),
                                     (second, DeliveryEvent.Kind.DELIVERED, "d2")):
        with django_capture_on_commit_callbacks(execute=True):  # each receipt commits on its own
            receipt_record(delivery=delivery, kind=kind, source="test", provider_event_id=event_id)
    recorded = WebhookMessage.objects.filter(webhook_endpoint=endpoint).count()
    assert recorded == 2 + 3 + 3  # two "sent", three receipts, three status moves they caused

    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    # first's "sent" failed and waits for its retry: nothing later of that delivery overtook it.
    bodies = verified(secret, receiver.accepted)
    assert {b["data"]["delivery_id"] for b in bodies} == {second.pk}
    drain_until_quiet(endpoint, start=timezone.now() + timedelta(minutes=1))

    bodies = verified(secret, receiver.accepted)
    ids = [headers["webhook-id"] for headers, _raw in receiver.accepted]
    assert len(ids) == len(set(ids)) == recorded  # every event once
    stream = [(b["type"], b["data"].get("status") or b["data"].get("kind")) for b in bodies
              if b["data"]["delivery_id"] == first.pk]
    assert stream == [
        ("delivery.status_changed", "sent"),
        ("delivery.receipt", "delivered"), ("delivery.status_changed", "delivered"),
        ("delivery.receipt", "opened"), ("delivery.status_changed", "opened"),
    ]
    assert WebhookMessage.objects.filter(webhook_endpoint=endpoint, status=Status.SENT).count() == recorded
    headers = receiver.accepted[0][0]
    assert headers["webhook-signature"].startswith("v1,") and headers["webhook-timestamp"].isdigit()


def test_a_tampered_or_unsigned_payload_fails_verification(endpoint, receiver, django_capture_on_commit_callbacks):
    endpoint, secret = endpoint
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    headers, raw = receiver.accepted[0]
    assert Webhook(secret).verify(raw, headers)["data"]["delivery_id"] == delivery.pk
    tampered = raw.replace(str(delivery.pk).encode(), str(delivery.pk + 1).encode(), 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(raw, {k: v for k, v in headers.items() if k != "webhook-signature"})
    other_endpoint, other_secret = make_endpoint(endpoint.url)
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(raw, headers)


def test_a_failing_receiver_is_retried_with_backoff_then_disabled_and_staff_told(
    endpoint, receiver, django_capture_on_commit_callbacks
):
    endpoint, secret = endpoint
    manager, boss, marketer = staff_in("Managers", "mia"), staff_in(None, "root"), staff_in("Marketers", "max")
    receiver.unavailable["all"] = None
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
    with django_capture_on_commit_callbacks(execute=True):
        drain_until_quiet(endpoint)

    message = WebhookMessage.objects.get(webhook_endpoint=endpoint)
    attempts = list(WebhookAttempt.objects.filter(delivery=message).order_by("pk"))
    assert [a.outcome for a in attempts] == ["failed"] * 5 and {a.response_code for a in attempts} == {503}
    gaps = [(b.attempted_at - a.attempted_at).total_seconds() for a, b in zip(attempts, attempts[1:])]
    assert gaps == [30, 300, 1800, 7200]  # exponential backoff between the five tries
    assert message.status == Status.FAILED and message.next_attempt_at is None and message.attempts == 5
    assert len(receiver.received) == 5 and not receiver.accepted

    endpoint.refresh_from_db()
    assert not endpoint.enabled and "503" in endpoint.disabled_reason
    notices = Delivery.objects.filter(category__key="staff-webhooks")
    told = set(notices.filter(channel="inapp").values_list("recipient_id", flat=True))
    assert told == {manager.pk, boss.pk}  # Managers and superusers, not Marketers
    assert marketer.pk not in told
    assert set(notices.filter(channel="email").values_list("recipient_id", flat=True)) == told
    assert "Webhook endpoint disabled" in str(notices.filter(channel="inapp").first().content)

    # A disabled endpoint gets no new events.
    with django_capture_on_commit_callbacks(execute=True):
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "delivered")])
    assert WebhookMessage.objects.filter(webhook_endpoint=endpoint).count() == 1


def test_a_timeout_or_a_cut_connection_is_unknown_never_sent(endpoint, receiver, settings,
                                                             django_capture_on_commit_callbacks):
    endpoint, secret = endpoint
    settings.SIGNALBOX_WEBHOOK_READ_TIMEOUT = 0.3
    receiver.slow.add("all")
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    message = WebhookMessage.objects.get(webhook_endpoint=endpoint)
    # Waiting for its retry, marked as an unknown outcome (never sent).
    assert (message.status, message.status_reason, message.sent_at) == (Status.DEFERRED, "unknown", None)
    assert message.outcome_unknown and message.webhook_attempts.get().outcome == "unknown"
    assert len(receiver.received) == 1  # it did arrive: the receiver may have acted on it
    assert message.next_attempt_at is not None  # retried under the same webhook-id, which receivers dedupe

    receiver.slow.clear()
    receiver.dropped.add("all")
    webhook_endpoint_drain(endpoint_id=endpoint.pk, now=message.next_attempt_at)
    message.refresh_from_db()
    assert (message.status, message.status_reason, message.attempts) == (Status.DEFERRED, "unknown", 2)
    assert {h["webhook-id"] for h, _ in receiver.received} == {message.webhook_id}


def test_nothing_sent_when_the_connection_is_refused_is_failed_not_unknown(db, loopback_allowed, receiver):
    port = receiver.server_address[1]
    receiver.stop()
    endpoint, _secret = make_endpoint(f"http://127.0.0.1:{port}/hooks")
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    message = WebhookMessage.objects.get(webhook_endpoint=endpoint)
    assert (message.status, message.status_reason) == (Status.DEFERRED, "") and message.next_attempt_at is not None
    assert message.webhook_attempts.get().outcome == "failed" and not message.outcome_unknown
    assert "Could not connect" in message.last_error


def test_resend_posts_the_same_message_again(endpoint, receiver, django_capture_on_commit_callbacks):
    endpoint, secret = endpoint
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    webhook_endpoint_drain(endpoint_id=endpoint.pk)  # a duplicated task: nothing left to claim
    assert len(receiver.accepted) == 1
    message = WebhookMessage.objects.get(webhook_endpoint=endpoint)
    assert webhook_messages_resend(messages=[message]) == 1
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    message.refresh_from_db()
    # A resend starts a fresh series of attempts; the log keeps every POST.
    assert message.status == Status.SENT and message.attempts == 1 and message.webhook_attempts.count() == 2
    assert [h["webhook-id"] for h, _ in receiver.accepted] == [message.webhook_id] * 2
    assert verified(secret, receiver.accepted)[1]["data"]["delivery_id"] == delivery.pk


def test_unsubscribes_campaigns_and_journey_goals_are_events(endpoint, receiver, django_capture_on_commit_callbacks):
    endpoint, secret = endpoint
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        unsubscribe(delivery=delivery, source="test")
        campaign_finished.send(sender=CampaignRun, run_id=7, campaign_id=3, status="completed")
        journey_goal_reached.send(sender=JourneyEnrollment, enrollment_ids=[], goal="paid")  # nobody: nothing
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    types = [b["type"] for b in verified(secret, receiver.accepted)]
    assert "delivery.unsubscribed" in types and "campaign.finished" in types
    finished = next(b for b in verified(secret, receiver.accepted) if b["type"] == "campaign.finished")
    assert finished["data"] == {"run_id": 7, "campaign_id": 3, "status": "completed"}


def test_an_endpoint_gets_only_the_events_it_subscribed_to(db, receiver, loopback_allowed,
                                                          django_capture_on_commit_callbacks):
    only_finished, _ = make_endpoint(receiver.url, events=[WebhookEvent.CAMPAIGN_FINISHED])
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
        campaign_finished.send(sender=CampaignRun, run_id=1, campaign_id=1, status="cancelled")
    assert list(WebhookMessage.objects.values_list("content__event_type", flat=True)) == ["campaign.finished"]


def test_recording_costs_no_query_when_no_endpoint_wants_the_event(db, django_assert_num_queries):
    deliveries = [DeliveryFactory(status=Delivery.Status.SENT) for _ in range(3)]
    changes = [(d.pk, "sent") for d in deliveries]
    WebhookEndpoint.objects.create(url="https://hooks.example.com/x", events=[WebhookEvent.CAMPAIGN_FINISHED],
                                   secret="whsec_AAAA")
    delivery_statuses_recording.send(sender=Delivery, changes=changes)  # fills the routing cache
    with django_assert_num_queries(0):
        delivery_statuses_recording.send(sender=Delivery, changes=changes)
    assert not WebhookMessage.objects.exists()


def test_recording_a_batch_is_two_reads_and_one_insert(db, receiver, loopback_allowed, django_assert_num_queries):
    make_endpoint(receiver.url, events=[WebhookEvent.DELIVERY_STATUS])
    make_endpoint(receiver.url, events=[WebhookEvent.DELIVERY_STATUS])
    small = [(DeliveryFactory().pk, "sent") for _ in range(2)]
    large = [(DeliveryFactory().pk, "sent") for _ in range(20)]
    delivery_statuses_recording.send(sender=Delivery, changes=small[:1])  # routes cached
    # Two reads (the deliveries; the endpoints the table names, held against a delete) and one
    # insert, in a savepoint of their own (SAVEPOINT, RELEASE): inside the ledger's transaction, a
    # failure here must not take the moves down with it.
    with django_assert_num_queries(5):
        delivery_statuses_recording.send(sender=Delivery, changes=small)
    with django_assert_num_queries(5):
        delivery_statuses_recording.send(sender=Delivery, changes=large)
    assert WebhookMessage.objects.count() == 2 * (1 + 2 + 20) - 2  # small[0] was recorded already


def test_the_secret_is_in_standard_webhooks_form(endpoint):
    endpoint, secret = endpoint
    assert secret.startswith("whsec_") and endpoint.secret == secret
    Webhook(secret)  # the library accepts it
    body = json.dumps({"x": 1}).encode()
    from notifications.webhooks.signing import signed_headers

    headers = signed_headers(secrets_=[secret], webhook_id="msg_1", timestamp=int(timezone.now().timestamp()), body=body)
    assert Webhook(secret).verify(body, headers) == {"x": 1}


@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_post_every_event_once(receiver, loopback_allowed):
    import threading

    from django.db import connection

    endpoint, secret = make_endpoint(receiver.url, events=[WebhookEvent.DELIVERY_STATUS])
    receiver.latency = 0.005
    changes = [(DeliveryFactory(status=Delivery.Status.SENT).pk, "sent") for _ in range(30)]
    delivery_statuses_recording.send(sender=Delivery, changes=changes)
    errors = []

    def drain():
        try:
            webhook_endpoint_drain(endpoint_id=endpoint.pk, limit=5)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    ids = [h["webhook-id"] for h, _ in receiver.accepted]
    assert len(ids) == len(set(ids)) == 30
    assert WebhookMessage.objects.filter(status=Status.SENT).count() == 30


def test_a_drain_that_died_mid_post_leaves_unknown_then_the_post_is_retried(endpoint, receiver,
                                                                             django_capture_on_commit_callbacks):
    endpoint, secret = endpoint
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
    # A worker claimed it and stopped: its lease ran out with no outcome written.
    WebhookMessage.objects.update(status=Status.SENDING, lease_owner="gone",
                                  lease_expires_at=timezone.now() - timedelta(seconds=1))
    from notifications.webhooks.receivers import webhooks_tick

    assert webhooks_tick() == ["webhooks: 1 endpoint(s) drained"]  # the scheduler notices
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    message = WebhookMessage.objects.get()
    assert message.status == Status.SENT and "outcome unknown" not in message.last_error
    assert len(receiver.accepted) == 1
    assert webhooks_tick() == []


def test_enable_again_sends_what_waited_in_order(endpoint, receiver, django_capture_on_commit_callbacks):
    from notifications.webhooks.services import webhook_endpoint_disable, webhook_endpoint_enable

    endpoint, secret = endpoint
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "delivered")])
    webhook_endpoint_disable(endpoint=endpoint, reason="maintenance", actor=object())
    assert webhook_endpoint_drain(endpoint_id=endpoint.pk).sent == 0 and not receiver.received
    assert webhook_endpoint_enable(endpoint=endpoint)
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    assert [b["data"]["status"] for b in verified(secret, receiver.accepted)] == ["sent", "delivered"]


def test_an_open_pixel_hit_costs_no_extra_query_without_endpoints(db, django_assert_num_queries):
    from notifications.receipts.tracking import open_record

    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    open_record(delivery=DeliveryFactory(status=Delivery.Status.SENT), user_agent="x", ip="203.0.113.9")
    # The receipt, the status move, the savepoints: what it cost before webhooks existed.
    with django_assert_num_queries(5):
        open_record(delivery=delivery, user_agent="Mozilla/5.0", ip="203.0.113.9")
    assert not WebhookMessage.objects.exists()


def test_a_drain_slower_than_its_lease_posts_every_message_under_a_live_lease(endpoint, settings, monkeypatch,
                                                                              django_capture_on_commit_callbacks):
    """A slow receiver can make one drain outlast its lease. Messages later in the round keep
    theirs (renewed as the drain goes) and a later round's claim gets a full lease from when it
    claims, not from the drain's start; a lease that ran out would let another drain settle the
    message as unknown and POST it a second time."""
    import time

    from notifications.webhooks import sending

    endpoint, _secret = endpoint
    settings.SIGNALBOX_LEASE_SECONDS = 1
    first, second = DeliveryFactory(status=Delivery.Status.SENT), DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks():
        delivery_statuses_recording.send(sender=Delivery, changes=[(first.pk, "sent"), (second.pk, "sent")])
        delivery_statuses_recording.send(sender=Delivery, changes=[(first.pk, "delivered")])
    posted: list[tuple[str, bool]] = []

    def slow_request(endpoint, message, **kwargs):
        row = WebhookMessage.objects.get(pk=message.pk)
        posted.append((message.idempotency_key.split(":", 2)[2], row.lease_expires_at > timezone.now()))
        if len(posted) == 1:
            time.sleep(1.2)  # longer than the whole lease
        return sending.Answer(WebhookAttempt.Outcome.SENT, code=200)

    monkeypatch.setattr(sending, "_request", slow_request)
    result = webhook_endpoint_drain(endpoint_id=endpoint.pk)

    # Round one: first's and second's "sent"; round two: first's "delivered" (due after its "sent").
    assert result.sent == 3
    assert [key for key, _live in posted] == [f"status:{first.pk}:sent:0", f"status:{second.pk}:sent:0",
                                              f"status:{first.pk}:delivered:0"]
    assert all(live for _key, live in posted), posted


def test_status_events_commit_with_the_moves_not_after_them(endpoint, django_capture_on_commit_callbacks,
                                                           monkeypatch, caplog):
    """The outbox rows of status moves are written inside the ledger's transaction: a worker that
    dies right after its commit (no after-commit callback runs) loses no event; a transaction
    that rolls back takes its events with it; an outbox that fails costs the ledger nothing."""
    from django.db import transaction

    from channels_adapters.base import SendResult
    from notifications import ledger
    from notifications.webhooks import events as webhook_events

    def claimed(n):
        rows = [DeliveryFactory(status=Delivery.Status.PLANNED) for _ in range(n)]
        return ledger.deliveries_claim(delivery_ids=[d.pk for d in rows], owner="w", now=timezone.now())

    def record(deliveries):
        ledger.deliveries_record_results(deliveries=deliveries, owner="w", summary=ledger.SendSummary(),
                                         results=[SendResult(d.pk, provider_message_id=f"p{d.pk}") for d in deliveries])

    batch = claimed(3)
    with django_capture_on_commit_callbacks(execute=False):  # the process dies at the commit
        record(batch)
    statuses = WebhookMessage.objects.filter(content__event_type=WebhookEvent.DELIVERY_STATUS)
    assert sorted(m.payload["data"]["delivery_id"] for m in statuses) == sorted(d.pk for d in batch)

    rolled_back = claimed(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        record(rolled_back)
        raise RuntimeError("the transaction fails after the outcomes were written")
    assert statuses.count() == 3

    def broken(events, **kwargs):  # a statement fails inside the outbox's savepoint (PostgreSQL
        with transaction.get_connection().cursor() as cursor:  # aborts the transaction without one)
            cursor.execute("SELECT * FROM no_such_outbox_table")
    monkeypatch.setattr(webhook_events, "webhook_events_record", broken)
    monkeypatch.setattr("notifications.webhooks.receivers.webhook_events_record", broken)
    last = claimed(2)
    record(last)
    assert set(Delivery.objects.filter(pk__in=[d.pk for d in last]).values_list("status", flat=True)) == {"sent"}
    assert statuses.count() == 3 and "A receiver of a ledger signal failed" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_two_receipts_of_one_delivery_in_flight_at_once_reach_the_endpoint_in_order(receiver, loopback_allowed,
                                                                                     monkeypatch):
    """PostgreSQL hands out ids at INSERT, not at COMMIT. A "delivered" receipt whose transaction is
    still open, an "opened" one that would commit first, and a drain between the two commits: the
    endpoint still gets the delivery's events in the order they committed, never the later first.
    (SQLite has one writer: the receipts cannot interleave there, and run one after the other.)"""
    import threading

    from django.db import connection

    import notifications.receipts.tracking as tracking
    from notifications.receipts.tracking import receipt_record

    endpoint, _ = make_endpoint(receiver.url, events=[WebhookEvent.RECEIPT, WebhookEvent.DELIVERY_STATUS])
    delivery = DeliveryFactory(status=Delivery.Status.SENT, channel="email")
    interleave = connection.vendor == "postgresql"
    recorded, go, opened_done = threading.Event(), threading.Event(), threading.Event()
    real = tracking.delivery_advance_status

    def slow_advance(**kwargs):  # the rest of the "delivered" receipt's transaction takes a while
        if threading.current_thread().name == "delivered":
            recorded.set()
            go.wait(30)
        return real(**kwargs)

    monkeypatch.setattr(tracking, "delivery_advance_status", slow_advance)

    def record(kind: str, **fields):
        try:
            receipt_record(delivery=Delivery.objects.get(pk=delivery.pk), kind=kind, **fields)
        finally:
            if kind == "opened":
                opened_done.set()
            connection.close()

    first = threading.Thread(target=record, name="delivered", args=("delivered",),
                             kwargs={"source": "esp", "provider_event_id": "d-1"})
    second = threading.Thread(target=record, name="opened", args=("opened",), kwargs={"source": "pixel"})
    first.start()
    assert recorded.wait(30)
    if interleave:
        second.start()
        # The "opened" receipt either committed already (the order would be broken) or waits for
        # the delivery's row: a drain runs now, between the commits.
        for _ in range(300):
            if opened_done.is_set() or _someone_waits_for_a_lock():
                break
            threading.Event().wait(0.05)
        webhook_endpoint_drain(endpoint_id=endpoint.pk)
    go.set()
    first.join(30)
    if not interleave:
        second.start()
    second.join(30)
    webhook_endpoint_drain(endpoint_id=endpoint.pk)

    ids = {m.webhook_id: m.pk for m in WebhookMessage.objects.all()}
    posted = [ids[headers["webhook-id"]] for headers, _ in receiver.accepted]
    kinds = [body["data"].get("kind") or body["data"].get("status")
             for body in (json.loads(raw) for _, raw in receiver.accepted)]
    assert kinds[0] == "delivered" and posted == sorted(posted), (posted, kinds)
    assert len(posted) == WebhookMessage.objects.count() >= 3  # delivered (+ its move), opened (+ its move)


def _someone_waits_for_a_lock() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
        return cursor.fetchone()[0] > 0


def test_a_resent_message_is_retried_like_a_new_one_and_the_resend_is_audited(endpoint, receiver, settings,
                                                                             django_capture_on_commit_callbacks):
    from notifications.models import AuditEntry

    endpoint, _ = endpoint
    settings.SIGNALBOX_WEBHOOK_MAX_ATTEMPTS = 2
    with django_capture_on_commit_callbacks(execute=False):
        delivery_statuses_recording.send(sender=Delivery, changes=[(DeliveryFactory(status="sent").pk, "sent")])
    message = WebhookMessage.objects.get()
    # It used up its attempts long ago; the receiver is fixed, then blips once more.
    long_ago = timezone.now() - timedelta(days=1)
    WebhookMessage.objects.filter(pk=message.pk).update(status=Status.FAILED, attempts=2, next_attempt_at=None)
    WebhookAttempt.objects.bulk_create([WebhookAttempt(delivery=message, attempted_at=long_ago, outcome="failed",
                                                       response_code=503)] * 2)
    receiver.unavailable["all"] = None
    boss = staff_in(None, "boss")

    assert webhook_messages_resend(messages=[message], actor=boss) == 1
    webhook_endpoint_drain(endpoint_id=endpoint.pk)

    message.refresh_from_db()
    assert message.status == Status.DEFERRED and message.attempts == 1 and message.next_attempt_at is not None
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled  # a new series: its first failure disables nothing
    assert AuditEntry.objects.get(action="webhook.resend").actor == boss


def test_a_drain_stops_posting_once_staff_disable_the_endpoint(endpoint, receiver, monkeypatch,
                                                               django_capture_on_commit_callbacks):
    from notifications.webhooks import sending
    from notifications.webhooks.services import webhook_endpoint_disable

    endpoint, _ = endpoint
    with django_capture_on_commit_callbacks(execute=False):
        delivery_statuses_recording.send(sender=Delivery, changes=[(DeliveryFactory(status="sent").pk, "sent")
                                                                   for _ in range(3)])
    real = sending._request

    def post_then_staff_disable(endpoint_, message, **kwargs):
        answer = real(endpoint_, message, **kwargs)
        if len(receiver.received) == 1:  # a manager switches the endpoint off while the drain runs
            webhook_endpoint_disable(endpoint=WebhookEndpoint.objects.get(pk=endpoint_.pk), reason="wrong URL",
                                     actor=staff_in(None, "boss"))
        return answer

    monkeypatch.setattr(sending, "_request", post_then_staff_disable)
    webhook_endpoint_drain(endpoint_id=endpoint.pk)

    assert len(receiver.received) == 1
    assert list(WebhookMessage.objects.order_by("pk").values_list("status", flat=True)) == [
        Status.SENT, Status.PLANNED, Status.PLANNED]  # the rest wait for "Enable again"


def test_posts_are_ledger_deliveries_the_send_workers_and_the_figures_for_people_leave_alone(
        endpoint, receiver, django_capture_on_commit_callbacks):
    """A webhook post is a row of the ledger (channel "webhook", the endpoint its recipient), but
    only its endpoint's drain sends it: a send task naming it, the lease sweep and the counts of
    messages to people pass it by, while the webhook figures and the ledger count see it."""
    from dashboard.reports.data import ReportFilters, deliveries_in_scope
    from notifications.ledger import deliveries_send, deliveries_sweep_expired_leases
    from ops.figures import system_figures
    from ops.services import ledger_count

    endpoint, _secret = endpoint
    delivery = DeliveryFactory(status=Delivery.Status.SENT)
    with django_capture_on_commit_callbacks(execute=False):
        delivery_statuses_recording.send(sender=Delivery, changes=[(delivery.pk, "sent")])
    post = Delivery.objects.get(channel="webhook")
    assert (post.webhook_endpoint_id, post.recipient_id, post.status) == (endpoint.pk, None, Status.PLANNED)
    assert post.idempotency_key == f"webhook:{endpoint.pk}:status:{delivery.pk}:sent:0"

    assert deliveries_send(delivery_ids=[post.pk]).claimed == 0  # a send worker never claims it
    now = timezone.now()
    figures = system_figures(now=now)
    assert (figures.queue_depth, figures.webhooks.queue_depth) == (0, 1)
    assert list(deliveries_in_scope(filters=ReportFilters()).values_list("pk", flat=True)) == [delivery.pk]

    # A drain that died mid-POST: the lease sweep for people's messages leaves it to the webhook
    # drain, which settles it as an unknown outcome and posts it again under the same webhook-id.
    Delivery.objects.filter(pk=post.pk).update(status=Status.SENDING, lease_owner="gone",
                                               lease_expires_at=now - timedelta(seconds=1))
    assert deliveries_sweep_expired_leases(now=now) == 0
    assert Delivery.objects.get(pk=post.pk).status == Status.SENDING
    webhook_endpoint_drain(endpoint_id=endpoint.pk)
    post.refresh_from_db()
    assert post.status == Status.SENT and [h["webhook-id"] for h, _ in receiver.accepted] == [post.provider_message_id]

    ledger_count(now=timezone.now(), force=True)
    assert system_figures(now=timezone.now()).deliveries[("webhook", "sent")] == 1


def test_an_endpoint_that_answered_since_a_message_began_is_not_disabled_by_it(
        endpoint, monkeypatch, settings, django_capture_on_commit_callbacks):
    """Disabling needs every POST to have failed since the exhausted message's first attempt: a
    receiver that rejects one event (a 503 on one delivery's stream) but took another meanwhile is
    failing, not down, and stays enabled."""
    from notifications.webhooks import sending

    endpoint, _secret = endpoint
    settings.SIGNALBOX_WEBHOOK_MAX_ATTEMPTS = 3
    rejected, accepted = DeliveryFactory(status="sent"), DeliveryFactory(status="sent")

    def answer(endpoint_, message, **kwargs):
        if message.ordering_key == f"delivery:{rejected.pk}":
            return sending.Answer(WebhookAttempt.Outcome.FAILED, code=503, error="HTTP 503")
        return sending.Answer(WebhookAttempt.Outcome.SENT, code=200)

    monkeypatch.setattr(sending, "_request", answer)
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=False):
        delivery_statuses_recording.send(sender=Delivery, changes=[(rejected.pk, "sent")])
        webhook_endpoint_drain(endpoint_id=endpoint.pk, now=start)  # 503: failing since now
        delivery_statuses_recording.send(sender=Delivery, changes=[(accepted.pk, "sent")])
        webhook_endpoint_drain(endpoint_id=endpoint.pk, now=start + timedelta(seconds=10))  # 200: healthy again
        drain_until_quiet(endpoint, start=start + timedelta(seconds=30))  # the rejected one's two retries

    post = WebhookMessage.objects.get(address=f"delivery:{rejected.pk}")
    assert (post.status, post.attempts) == (Status.FAILED, 3)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since > start + timedelta(seconds=10)  # failing again since the 200
