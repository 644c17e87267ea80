"""/metrics (issue 11, point 3): who may scrape it, and what it says about the real ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from dashboard.models import ImportJob, Report
from notifications.ledger.recording import IN_FLIGHT
from notifications.ledger.recovery import deliveries_sweep_expired_leases
from notifications.models import Delivery, DeliveryEvent
from ops.metrics import metrics_exposition
from ops.models import Heartbeat, LedgerCount
from ops.services import heartbeat_record, ledger_count
from tests.factories import DeliveryFactory, UserFactory

TOKEN = "scrape-me-0123456789abcdef"


@pytest.fixture
def token(settings):
    settings.SIGNALBOX_METRICS_TOKEN = TOKEN
    settings.SIGNALBOX_METRICS_ALLOWED_IPS = []
    return TOKEN


def samples(body: bytes) -> dict[tuple, float]:
    """{(sample name, (label, value), ...): value} of a text exposition, parsed by prometheus_client."""
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return found


def scrape(client, **headers):
    return client.get("/metrics", **headers)


# --- Who may scrape ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_with_neither_a_token_nor_addresses_configured_everyone_is_refused(client, settings):
    settings.SIGNALBOX_METRICS_TOKEN = ""
    settings.SIGNALBOX_METRICS_ALLOWED_IPS = []
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))  # a session admits nothing
    response = scrape(client, HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 403
    assert response.content.decode().startswith("403 Forbidden: metrics are off: set SIGNALBOX_METRICS_TOKEN")
    assert response.content.decode().count("\n") == 1


@pytest.mark.django_db
def test_the_right_bearer_token_is_let_in_and_a_wrong_or_missing_one_is_not(client, token):
    right = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert right.status_code == 200
    assert right["Content-Type"].startswith("text/plain; version=")
    assert "no-cache" in right["Cache-Control"] and "no-store" in right["Cache-Control"]
    assert b"# TYPE signalbox_unknown_outcomes gauge" in right.content

    wrong = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}x")
    assert (wrong.status_code, wrong.content) == (403, b"403 Forbidden: wrong bearer token\n")
    basic = scrape(client, HTTP_AUTHORIZATION=f"Basic {TOKEN}")
    assert (basic.status_code, basic.content) == (403, b"403 Forbidden: a bearer token is required\n")
    missing = scrape(client)
    assert (missing.status_code, missing.content) == (403, b"403 Forbidden: a bearer token is required\n")
    # Read-only: other methods are refused before anything is read, and no CSRF token is asked for.
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


@pytest.mark.django_db
def test_allowed_addresses_and_networks_need_no_token(client, settings):
    settings.SIGNALBOX_METRICS_TOKEN = ""
    settings.SIGNALBOX_METRICS_ALLOWED_IPS = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
    assert scrape(client, REMOTE_ADDR="10.20.30.40").status_code == 200
    assert scrape(client, REMOTE_ADDR="2001:db8::5").status_code == 200
    assert scrape(client, REMOTE_ADDR="192.0.2.7").status_code == 200
    refused = scrape(client, REMOTE_ADDR="192.0.2.8")
    assert (refused.status_code, refused.content) == (403, b"403 Forbidden: client address 192.0.2.8 is not allowed\n")


@pytest.mark.django_db
def test_a_forged_x_forwarded_for_does_not_get_an_outsider_in(client, settings):
    settings.SIGNALBOX_METRICS_TOKEN = ""
    settings.SIGNALBOX_METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    # No proxy in front: the header is the client's own words and is ignored.
    settings.SIGNALBOX_TRUSTED_PROXY_COUNT = 0
    assert scrape(client, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.1.1.1").status_code == 403
    # One proxy (10.0.0.2) appends the address it saw: what the client wrote before it is ignored.
    settings.SIGNALBOX_TRUSTED_PROXY_COUNT = 1
    forged = scrape(client, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="10.1.1.1, 203.0.113.9")
    assert (forged.status_code, forged.content) == (
        403, b"403 Forbidden: client address 203.0.113.9 is not allowed\n"
    )
    assert scrape(client, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.1.1.1").status_code == 200


def test_a_malformed_allowed_network_is_a_system_check_error(settings):
    from ops.checks import metrics_settings_check

    settings.SIGNALBOX_METRICS_ALLOWED_IPS = ["10.0.0.0/8", "intranet"]
    errors = metrics_settings_check()
    assert [e.id for e in errors] == ["ops.E001"]
    assert "'intranet' is not an IP address or network" in errors[0].msg


# --- What it says -------------------------------------------------------------------------------


def deliveries(n: int, **fields) -> list[Delivery]:
    return [DeliveryFactory(**fields) for _ in range(n)]


@pytest.mark.django_db
def test_the_figures_are_the_ledgers_rows(client, token, django_capture_on_commit_callbacks):
    now = timezone.now()
    sent = deliveries(3, channel="email", status="sent", created_at=now - timedelta(seconds=3), sent_at=now)
    for delivery in sent:
        DeliveryEvent.objects.create(delivery=delivery, kind="sent", source="email", occurred_at=now)
    slow = DeliveryFactory(channel="sms", status="delivered", created_at=now - timedelta(seconds=40), sent_at=now)
    DeliveryEvent.objects.create(delivery=slow, kind="sent", source="sms", occurred_at=now - timedelta(seconds=30))
    # Sent long ago: outside the latency window.
    old = DeliveryFactory(channel="sms", status="sent", created_at=now - timedelta(hours=2), sent_at=now - timedelta(hours=1))
    DeliveryEvent.objects.create(delivery=old, kind="sent", source="sms", occurred_at=now - timedelta(hours=1))
    deliveries(2, channel="email", status="unknown")
    failed = DeliveryFactory(channel="sms", status="failed", failed_at=now)
    DeliveryEvent.objects.create(delivery=failed, kind="failed", source="sms", occurred_at=now - timedelta(seconds=5))
    # Accepted, then reported undelivered by Twilio's status webhook.
    DeliveryEvent.objects.create(delivery=slow, kind="failed", source="twilio", occurred_at=now)
    deliveries(1, channel="email", status="planned", created_at=now - timedelta(minutes=10))
    deliveries(1, channel="email", status="deferred", next_attempt_at=now - timedelta(minutes=4))
    deliveries(1, channel="email", status="deferred", next_attempt_at=now + timedelta(minutes=4))  # not due yet
    # A worker died with one message in flight and one not yet handed over.
    expired = now - timedelta(seconds=1)
    DeliveryFactory(channel="email", status="sending", lease_owner="w", lease_expires_at=expired, status_reason=IN_FLIGHT,
                    attempts=1)
    DeliveryFactory(channel="email", status="sending", lease_owner="w", lease_expires_at=expired, attempts=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_sweep_expired_leases(now=now) == 2
    ImportJob.objects.create(original_name="a.csv", file="imports/a.csv", status="completed")
    ImportJob.objects.create(original_name="b.csv", file="imports/b.csv", status="failed")
    Report.objects.create(kind="deliveries", format="csv", status="queued")
    heartbeat_record(name=Heartbeat.WORKER, now=now - timedelta(seconds=12))

    assert ledger_count(now=now) is True
    assert ledger_count(now=now) is False  # counted this round already
    figures = samples(scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content)

    def deliveries_of(channel: str, status: str) -> float:
        return figures[("signalbox_deliveries", ("channel", channel), ("status", status))]

    assert deliveries_of("email", "sent") == 3
    assert deliveries_of("email", "unknown") == 3  # two, and the one lost in flight
    assert deliveries_of("sms", "failed") == 1
    assert deliveries_of("email", "planned") == 1
    assert deliveries_of("email", "deferred") == 3  # retrying, not due yet, and the one put back in line
    assert deliveries_of("inapp", "clicked") == 0  # every status of every channel, zeros included
    assert sum(v for k, v in figures.items() if k[0] == "signalbox_deliveries") == Delivery.objects.count()
    assert figures[("signalbox_deliveries_count_age_seconds",)] < 60

    assert figures[("signalbox_unknown_outcomes",)] == 3
    assert figures[("signalbox_queue_depth",)] == 3  # planned, the due retry, the one put back
    assert 599 <= figures[("signalbox_oldest_due_delivery_age_seconds",)] < 700
    assert figures[("signalbox_lease_sweeps_total", ("outcome", "unknown"))] == 1
    assert figures[("signalbox_lease_sweeps_total", ("outcome", "requeued"))] == 1
    assert figures[("signalbox_lease_sweeps_total", ("outcome", "resent"))] == 0
    assert figures[("signalbox_provider_errors", ("channel", "sms"))] == 1
    assert figures[("signalbox_provider_errors", ("channel", "email"))] == 0
    assert figures[("signalbox_provider_failure_reports", ("source", "twilio"))] == 1

    assert figures[("signalbox_send_latency_seconds_count", ("channel", "email"))] == 3
    assert figures[("signalbox_send_latency_seconds_bucket", ("channel", "email"), ("le", "2.5"))] == 0
    assert figures[("signalbox_send_latency_seconds_bucket", ("channel", "email"), ("le", "5.0"))] == 3
    assert figures[("signalbox_send_latency_seconds_sum", ("channel", "email"))] == pytest.approx(9, abs=0.1)
    assert figures[("signalbox_send_latency_seconds_count", ("channel", "sms"))] == 1  # the old send is out
    assert figures[("signalbox_send_latency_seconds_bucket", ("channel", "sms"), ("le", "30.0"))] == 0
    assert figures[("signalbox_send_latency_seconds_bucket", ("channel", "sms"), ("le", "60.0"))] == 1

    assert figures[("signalbox_import_jobs", ("status", "completed"))] == 1
    assert figures[("signalbox_import_jobs", ("status", "failed"))] == 1
    assert figures[("signalbox_report_jobs", ("status", "queued"))] == 1
    assert 12 <= figures[("signalbox_heartbeat_age_seconds", ("process", "worker"))] < 60
    assert ("signalbox_heartbeat_age_seconds", ("process", "scheduler")) not in figures  # never beat
    assert figures[("signalbox_heartbeat_max_age_seconds", ("process", "scheduler"))] == 60


@pytest.mark.django_db
def test_deliveries_are_absent_until_the_scheduler_counts_and_the_count_is_replaced_whole(token):
    DeliveryFactory(channel="email", status="sent")
    before = samples(metrics_exposition(now=timezone.now()))
    assert not [k for k in before if k[0] == "signalbox_deliveries"]
    assert ("signalbox_deliveries_count_age_seconds",) not in before

    ledger_count(now=timezone.now())
    Delivery.objects.update(status="delivered")
    ledger_count(now=timezone.now() + timedelta(minutes=2))
    assert set(LedgerCount.objects.values_list("channel", "status", "deliveries")) == {("email", "delivered", 1)}


@pytest.mark.django_db
def test_a_scrape_costs_the_same_queries_whatever_the_ledger_holds(client, token, django_assert_num_queries):
    now = timezone.now()
    for status in ("sent", "failed", "planned", "unknown"):
        deliveries(3, channel="email", status=status, sent_at=now)
    ledger_count(now=now)
    # Heartbeats and the count, ledger counts, due rows, unknowns, sweep counters, provider errors,
    # latency, import jobs, report jobs, the webhook outbox and its endpoints.
    with django_assert_num_queries(11):
        response = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
