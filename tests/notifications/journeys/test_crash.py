"""A worker SIGKILLed in the middle of a tick, then the tick run again: every step still once.

A real ``db_worker`` process runs ``journeys_tick_task`` in small chunks and is killed with
SIGKILL as soon as its first chunk has committed (so later chunks are claimed, half-written or
untouched). What it committed stays; what it had claimed comes due again when the lease runs out;
what it had written in an open transaction is gone. The re-run must send each step to each person
exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.test.utils import override_settings

from notifications.journeys.engine import LEASE, journeys_tick
from notifications.journeys.services import journey_enter
from notifications.journeys.tasks import journeys_tick_task
from notifications.models import Delivery, JourneyEnrollment, JourneyStepRun
from tests.conftest import ROOT, child_env

from .conftest import T0, make_people

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PEOPLE = 3000
DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


def test_a_sigkilled_tick_then_a_rerun_sends_each_step_once(make_journey):
    make_journey()
    people = make_people(PEOPLE)
    journey_enter(journey="welcome", user_ids=people, now=T0)
    with override_settings(TASKS=DB_TASKS):
        journeys_tick_task.enqueue(now=T0.isoformat(), chunk_size=100)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.05"],
        cwd=ROOT, env=child_env(TASKS_LOG_LEVEL="WARNING"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not JourneyStepRun.objects.exists():
            assert time.monotonic() < deadline, "the worker never committed a chunk"
            time.sleep(0.005)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    done_by_worker = JourneyStepRun.objects.filter(step_id="welcome").count()
    assert 0 < done_by_worker < PEOPLE  # killed mid-tick, not before nor after

    journeys_tick(now=T0)  # what the worker never claimed
    journeys_tick(now=T0)
    journeys_tick(now=T0 + LEASE)  # what it had claimed when it died
    journeys_tick(now=T0 + timedelta(days=2, minutes=10))
    journeys_tick(now=T0 + timedelta(days=2, minutes=10))

    steps = Counter(key.split(":")[2] for key in
                    Delivery.objects.filter(idempotency_key__startswith="journey:").values_list("idempotency_key", flat=True))
    assert steps == {"welcome": PEOPLE, "reminder": PEOPLE}
    per_person = Counter(Delivery.objects.values_list("recipient_id", flat=True))
    assert set(per_person.values()) == {2}
    assert Counter(JourneyStepRun.objects.values_list("step_id", flat=True)) == {
        "welcome": PEOPLE, "pause": PEOPLE, "opened?": PEOPLE, "reminder": PEOPLE}
    assert set(JourneyEnrollment.objects.values_list("state", flat=True)) == {"completed"}


def test_two_processes_ticking_at_once_advance_each_enrollment_once(make_journey):
    """Two schedulers (or a duplicated task) on two processes: the claim lets one take each chunk."""
    make_journey()
    people = make_people(2000)
    journey_enter(journey="welcome", user_ids=people, now=T0)
    code = (
        "import django; django.setup()\n"
        "from datetime import datetime\n"
        "from notifications.journeys.engine import journeys_tick\n"
        f"r = journeys_tick(now=datetime.fromisoformat({T0.isoformat()!r}), chunk_size=50)\n"
        "print(r.enrollments)\n"
    )
    runs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=child_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-2000:] for _out, err in outputs]
    advanced = [int(out.strip()) for out, _err in outputs]
    assert sum(advanced) == 2000  # each enrollment advanced by exactly one of them
    assert Delivery.objects.filter(idempotency_key__startswith="journey:").count() == 2000
    assert JourneyStepRun.objects.count() == 4000  # welcome and the start of the wait, once each
