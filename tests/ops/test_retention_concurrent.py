"""A purge while another process sends: the send never fails and nothing it wrote is touched."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from dashboard.analytics import analytics_rollup_refresh
from notifications.models import Delivery, DeliveryEvent
from ops.retention import retention_apply
from tests.conftest import ROOT, child_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_purge_beside_a_sending_process_does_not_fail_the_send(settings, tmp_path):
    settings.SIGNALBOX_RETAIN_DELIVERIES_DAYS = "10"
    now = timezone.now()
    old = Delivery.objects.bulk_create(
        Delivery(idempotency_key=f"old:{n}", channel="email", address=f"o{n}@example.com", status="delivered",
                 created_at=now - timedelta(days=40, seconds=n))
        for n in range(3000)
    )
    DeliveryEvent.objects.bulk_create(DeliveryEvent(delivery=d, kind="delivered", source="test") for d in old)
    analytics_rollup_refresh(since=None)
    stop = tmp_path / "stop"
    log = tmp_path / "sender.log"  # a file, not a pipe nobody drains while it runs (a full pipe blocks it)
    with log.open("w") as stderr:
        sender = subprocess.Popen(
            [sys.executable, "-m", "bench._retention_sender", "--stop-file", str(stop), "--users", "40", "--batch", "20"],
            cwd=ROOT, env=child_env(TASK_BACKEND="immediate"), stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not Path(f"{stop}.ready").exists():
            assert sender.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        time.sleep(0.5)
        result = retention_apply(batch=250, budget=timedelta.max)
        time.sleep(0.5)
    finally:
        stop.touch()
        out, _err = sender.communicate(timeout=60)
    assert sender.returncode == 0, log.read_text()[-2000:]
    sent = json.loads(out.strip().splitlines()[-1])

    assert result.kinds[0].deleted == 3000 and result.kinds[0].batches == 12
    assert not Delivery.objects.filter(idempotency_key__startswith="old:").exists()
    assert sent["calls"] > 0 and sent["errors"] == 0, sent
    assert sent["deliveries"] == sent["messages"]  # every message it sent is in the ledger, sent
