"""A worker killed with SIGKILL mid-send, five times: every recipient gets exactly one email.

Real parts throughout: a ``db_worker`` OS process sending through Django's SMTP backend to the
aiosmtpd sink, killed at random moments; the lease sweeper and the lost-task backstop bring
the interrupted batches back; the hand-off mark tells "the server has it" from "it does not".
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from notifications import pipeline
from notifications.api import notify
from notifications.models import Category, Delivery
from tests.conftest import ROOT, child_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 5000
LEASE_SECONDS = 3


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def recover() -> None:
    """What ``signalbox_scheduler`` does each tick, without its grace period."""
    pipeline.deliveries_sweep_expired_leases()
    pipeline.deliveries_requeue_stale(grace=timedelta(0))


def test_sigkilled_worker_delivers_each_recipient_exactly_once(smtp_sink, settings):
    User = get_user_model()
    password = make_password(None)
    User.objects.bulk_create(
        (User(username=f"k{i}", email=f"k{i}@example.com", password=password) for i in range(RECIPIENTS)), batch_size=1000
    )
    # The planner and the workers share one configuration, as in production (batch sizes come
    # from the email adapter).
    settings.EMAIL_HOST, settings.EMAIL_PORT = smtp_sink.host, smtp_sink.port
    settings.NOTIFICATION_CHANNELS = {"email": {"BACKEND": "channels_adapters.email.EmailChannel", "OPTIONS": {}}}
    receipts = Category.objects.create(key="receipts", name="Receipts", kind="transactional", user_can_opt_out=False)
    env = child_env(EMAIL_HOST=smtp_sink.host, EMAIL_PORT=str(smtp_sink.port), SIGNALBOX_LEASE_SECONDS=str(LEASE_SECONDS),
                    TASK_BACKEND="db", TASKS_LOG_LEVEL="WARNING")
    notify(list(User.objects.values_list("id", flat=True)), title="Your receipt", body="Thanks.", html="<p>Thanks.</p>",
           channels=["email"], category=receipts, idempotency_key="crash-test")

    rng = random.Random(int(os.environ.get("SIGNALBOX_CRASH_SEED", "20261123")))
    kills_mid_send = 0
    for _ in range(5):
        worker = start_worker(env)
        before = len(smtp_sink.handler.received)
        deadline = time.monotonic() + 20
        # Wait until this worker is sending, then kill it at a random moment.
        while len(smtp_sink.handler.received) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.05, 1.5))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        kills_mid_send += Delivery.objects.filter(status="sending").exists()
        time.sleep(LEASE_SECONDS + 0.5)  # the dead worker's lease runs out
        recover()

    worker = start_worker(env)
    try:
        deadline = time.monotonic() + 180
        while Delivery.objects.exclude(status="sent").exists() and time.monotonic() < deadline:
            time.sleep(1)
            recover()
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    per_recipient = Counter(rcpt for mail in smtp_sink.handler.received for rcpt in mail.rcpt_tos)
    duplicates = {address: n for address, n in per_recipient.items() if n > 1}
    assert duplicates == {}
    assert len(per_recipient) == RECIPIENTS  # none lost
    assert Delivery.objects.filter(status="sent").count() == RECIPIENTS
    assert kills_mid_send >= 3  # the kills really landed mid-batch
    # Some messages were on the wire when a worker died: the hand-off mark saved them from a re-send.
    assert Delivery.objects.filter(status_reason="recovered_after_crash").exists()
