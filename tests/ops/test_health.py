"""/healthz and /readyz (issue 11, point 3), and the heartbeats behind them.

The last test runs the real thing: a scheduler, a task worker and uvicorn as OS processes on the
test database, with short thresholds; killing the worker turns /readyz red, a new worker green.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from ops.models import Heartbeat
from ops.selectors import readiness
from ops.services import heartbeat_record, heartbeats_tick, worker_heartbeat_request
from tests.processes import descendants, free_port, start_worker, wait_for


@pytest.fixture
def short_heartbeats(settings):
    settings.SIGNALBOX_HEARTBEAT_SECONDS = 10
    settings.SIGNALBOX_WORKER_MAX_AGE_SECONDS = 60
    settings.SIGNALBOX_SCHEDULER_MAX_AGE_SECONDS = 30


class FakeTask:
    """Stands in for the heartbeat task: counts enqueues instead of queueing."""

    def __init__(self, enqueue) -> None:
        self.enqueue = enqueue


def checks(response) -> dict:
    return json.loads(response.content)["checks"]


def test_healthz_answers_without_touching_the_database(client):
    response = client.get("/healthz")  # no django_db mark: any query would raise
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_503_until_both_heartbeats_are_seen(client, short_heartbeats):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True and body["checks"]["database"]["latency_ms"] >= 0
    assert body["checks"]["worker"] == {"ok": False, "max_age_seconds": 60.0, "error": "no heartbeat yet"}
    assert body["checks"]["scheduler"]["ok"] is False


@pytest.mark.django_db
def test_readyz_is_200_with_fresh_heartbeats_and_503_once_one_is_too_old(client, short_heartbeats):
    now = timezone.now()
    heartbeat_record(name=Heartbeat.SCHEDULER, now=now - timedelta(seconds=5))
    heartbeat_record(name=Heartbeat.WORKER, now=now - timedelta(seconds=59))
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"
    worker = checks(response)["worker"]
    assert worker["ok"] is True and 59 <= worker["age_seconds"] < 70 and worker["max_age_seconds"] == 60

    later = readiness(now=now + timedelta(seconds=5))
    assert [c.name for c in later.checks if not c.ok] == ["worker"]
    assert not later.ok
    assert next(c for c in later.checks if c.name == "worker").error == "last heartbeat 64 s ago"


@pytest.mark.django_db
def test_readyz_reports_redis_when_configured(client, settings, short_heartbeats):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    now = timezone.now()
    heartbeat_record(name=Heartbeat.SCHEDULER, now=now)
    heartbeat_record(name=Heartbeat.WORKER, now=now)
    response = client.get("/readyz")
    assert response.status_code == 503
    redis_check = checks(response)["redis"]
    assert redis_check["ok"] is False and "ConnectionError" in redis_check["error"]
    assert all(checks(response)[name]["ok"] for name in ("database", "worker", "scheduler"))


@pytest.mark.django_db
def test_a_heartbeat_never_moves_back(short_heartbeats):
    now = timezone.now()
    heartbeat_record(name=Heartbeat.WORKER, now=now)
    heartbeat_record(name=Heartbeat.WORKER, now=now - timedelta(seconds=30))  # a late, older beat
    assert Heartbeat.objects.get(name=Heartbeat.WORKER).beat_at == now


@pytest.mark.django_db(transaction=True)
def test_one_worker_heartbeat_task_waits_at_a_time(short_heartbeats, monkeypatch):
    enqueued = []
    monkeypatch.setattr("ops.tasks.worker_heartbeat_task", FakeTask(lambda: enqueued.append(1)))
    now = timezone.now()
    assert worker_heartbeat_request(now=now) is True
    assert len(enqueued) == 1  # after the commit
    # Not run yet: nothing more until the worker threshold says the task is lost.
    assert worker_heartbeat_request(now=now + timedelta(seconds=59)) is False
    assert worker_heartbeat_request(now=now + timedelta(seconds=61)) is True
    # Run: the next one is due after SIGNALBOX_HEARTBEAT_SECONDS.
    heartbeat_record(name=Heartbeat.WORKER, now=now + timedelta(seconds=62))
    assert worker_heartbeat_request(now=now + timedelta(seconds=65)) is False
    assert worker_heartbeat_request(now=now + timedelta(seconds=72)) is True
    assert len(enqueued) == 3


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_tick_is_registered_and_beats(short_heartbeats, monkeypatch):
    from notifications.scheduling import ticks

    assert "heartbeats" in [t.name for t in ticks()]
    assert max(ticks(), key=lambda t: t.order).name == "heartbeats"  # last: a whole round got through
    monkeypatch.setattr("ops.tasks.worker_heartbeat_task", FakeTask(lambda: None))
    assert heartbeats_tick(once=True) == ["recorded the scheduler heartbeat, asked a worker for one"]
    assert Heartbeat.objects.get(name=Heartbeat.SCHEDULER).beat_at is not None


# --- Real processes ------------------------------------------------------------------------------

def get_readyz(port: int) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.tasks
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_killing_the_worker_turns_readyz_red_and_a_new_worker_green(processes):
    env = {"SIGNALBOX_HEARTBEAT_SECONDS": "0.5", "SIGNALBOX_WORKER_MAX_AGE_SECONDS": "4",
           "SIGNALBOX_SCHEDULER_MAX_AGE_SECONDS": "4"}
    port = free_port()
    processes.start("scheduler", "manage.py", "signalbox_scheduler", "--interval", "0.2", env=env)
    worker = start_worker(processes, env=env)
    processes.start("web", "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--lifespan", "off",
                    env=env)
    seen: dict = {}

    def readyz_is(code: int, *, worker_ok: bool, scheduler_ok: bool = True) -> bool:
        try:
            status, body = get_readyz(port)
        except OSError:
            return False
        seen.update(body)
        return (status == code and body["checks"]["worker"]["ok"] is worker_ok
                and body["checks"]["scheduler"]["ok"] is scheduler_ok)

    wait_for(lambda: readyz_is(200, worker_ok=True), seconds=90, what="/readyz green", processes=processes)

    # The worker and what it forked (RQ's --with-scheduler process), all at once, as a crash would.
    for pid in {worker.pid, *descendants(worker.pid)}:
        os.kill(pid, signal.SIGKILL)
    worker.wait(timeout=10)
    killed_at = time.monotonic()
    wait_for(lambda: readyz_is(503, worker_ok=False), seconds=30, what="/readyz red after the kill",
             processes=processes)
    red_after = time.monotonic() - killed_at
    assert red_after >= 2.5, f"red {red_after:.1f} s after the kill: before the 4 s threshold could pass"
    assert seen["checks"]["worker"]["age_seconds"] >= 4  # rounded to 0.1 s; not ok means past 4

    start_worker(processes, name="worker-2", env=env)
    took = wait_for(lambda: readyz_is(200, worker_ok=True), seconds=60, what="/readyz green with a new worker",
                    processes=processes)
    print(f"red {red_after:.1f} s after the kill; green {took:.1f} s after a new worker started", file=sys.stderr)
