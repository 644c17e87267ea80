"""One email campaign to many recipients on PostgreSQL + RQ with N worker processes, vs one worker.

Needs ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``. Everything runs as real processes, as in
production: the SMTP sink (``bench._sink``), ``manage.py signalbox_scheduler --once`` to start the
run, and ``--workers`` × ``manage.py rqworker`` sending into the sink. The campaign goes to
``--recipients`` users (created once, reused by later runs) in the email channel.

The comparison, measured in the same run (this machine's speed swings 2×): the same kind of
campaign to ``--baseline`` recipients, planned and sent by this one process with the immediate
task backend (no queue, no other process): the rate of one in-process worker.

Prints the workers' rate (msgs/s from the run's start to its last delivery), the time to 100 %, the
in-process rate, their ratio (target >= 2 with two workers) and each worker's peak RSS (VmHWM;
target <= 300 MB).

CPU accounting (``cpu_s_per_1k_messages``, user + system from ``/proc``): on each side, what each
process spent per 1,000 messages sent — the worker processes once registered (with their
scheduler children), this
process (the one-process side), the PostgreSQL backends serving this database (sampled from
``pg_stat_activity`` while the run goes, so a backend that came and went between two samples
is missed) and the SMTP sink. On two shared cores their sum per message bounds the rate: two
workers cannot go twice as fast as one when one already keeps both cores busy. ``--latency-ms``
puts the relay that far away (each SMTP reply that late, ``bench._sink``): where a worker mostly
waits on the network, as with an ESP tens of milliseconds away, the cores are not what bounds
it. ``--worker-class fork`` uses RQ's default forking worker instead of ``config.rq.Worker``, to
see what the fork per job costs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "scale-"


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class CpuMeter:
    """CPU seconds spent by named groups of processes between ``start()`` and the last ``sample()``.

    A process first seen after ``start()`` counts from zero (it was born during the run).
    """

    def __init__(self) -> None:
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}

    def sample(self, group: str, pids: list[int], *, born_during: bool = False) -> None:
        for pid in pids:
            seconds = _cpu_seconds(pid)
            if not seconds and (group, pid) in self.last:
                continue  # gone: keep what it had spent
            self.first.setdefault((group, pid), 0.0 if born_during else seconds)
            self.last[(group, pid)] = seconds

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, seconds in self.last.items():
            out[key[0]] = out.get(key[0], 0.0) + seconds - self.first[key]
        return out


def _pg_backends(since) -> list[tuple[int, bool]]:
    """(pid, started after ``since``) of the PostgreSQL backends connected to this database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start > %s FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            [since],
        )
        return cursor.fetchall()


def _sample_pg(meter: CpuMeter, since, own_backend: int | None = None) -> None:
    for pid, born in _pg_backends(since):
        meter.sample("postgresql", [pid], born_during=born)
    if own_backend is not None:
        meter.sample("postgresql", [own_backend])


def _users(count: int) -> list[int]:
    """``count`` recipients named scale-000001...: created once (COPY-speed bulk inserts), then reused."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    User = get_user_model()
    have = User.objects.filter(username__startswith=PREFIX).count()
    if have < count:
        password = make_password(None)
        for start in range(have, count, 10_000):
            User.objects.bulk_create(
                (User(username=f"{PREFIX}{i:07d}", email=f"{PREFIX}{i}@example.com", password=password)
                 for i in range(start, min(count, start + 10_000))),
                batch_size=10_000,
            )
    return list(User.objects.filter(username__startswith=PREFIX).order_by("id").values_list("id", flat=True)[:count])


def _campaign(name: str, user_ids: list[int]):
    from django.utils import timezone

    from notifications.models import Audience, AudienceMember, Campaign, Category, MessageTemplate

    category, _ = Category.objects.get_or_create(
        key="bench-scale", defaults={"name": "Bench scale", "kind": "transactional", "user_can_opt_out": False}
    )
    template, _ = MessageTemplate.objects.get_or_create(
        key="bench-scale", defaults={"name": "Bench scale", "email_subject": "Hello {{ recipient.first_name }}",
                                     "email_body": "Your **receipt**, {{ recipient.username }}."},
    )
    audience = Audience.objects.create(name=f"{name} {time.time_ns()}", kind=Audience.Kind.STATIC)
    for start in range(0, len(user_ids), 20_000):
        AudienceMember.objects.bulk_create(
            [AudienceMember(audience=audience, user_id=pk) for pk in user_ids[start:start + 20_000]], batch_size=20_000
        )
    campaign = Campaign.objects.create(
        name=name, audience=audience, template=template, category=category, channels=["email"],
    )
    # Approved as a Manager would (the audience is above the approval threshold).
    from django.contrib.auth import get_user_model

    from notifications.campaigns.approvals import campaign_fingerprint

    manager, _ = get_user_model().objects.get_or_create(username="bench-scale-manager", defaults={"is_staff": True})
    Campaign.objects.filter(pk=campaign.pk).update(
        approved_by=manager, approved_at=timezone.now(), approved_size=len(user_ids),
        approval_fingerprint=campaign_fingerprint(campaign),
    )
    return campaign


def _wait_registered(count: int, timeout: float = 120) -> None:
    """Wait until ``count`` RQ workers are registered, i.e. started and listening."""
    from redis import Redis
    from rq import Worker

    connection = Redis.from_url(os.environ["REDIS_URL"])
    deadline = time.monotonic() + timeout
    while Worker.count(connection=connection) < count and time.monotonic() < deadline:
        time.sleep(0.2)


def _wait_done(run_id: int, expected: int, timeout: float, *, on_tick=None) -> float:
    from notifications.models import CampaignRun, Delivery

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if on_tick is not None:
            on_tick()
        run = CampaignRun.objects.filter(pk=run_id).first()
        done = Delivery.objects.filter(run_id=run_id, status="sent").count()
        if run is not None and run.status == "completed" and done >= expected:
            last = Delivery.objects.filter(run_id=run_id).order_by("-sent_at").values_list("sent_at", flat=True).first()
            return (last - run.started_at).total_seconds()
        time.sleep(1)
    raise SystemExit(f"run {run_id} did not finish in {timeout:.0f} s")


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench campaign_scale")
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--baseline", type=int, default=20_000, help="recipients of the one-process comparison")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="config.rq.Worker", help='"fork" for RQ\'s default forking worker')
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="the sink answers each SMTP command this late (a relay or ESP that far away)")
    opts = parser.parse_args(argv)

    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        raise SystemExit("bench campaign_scale needs DATABASE_URL=postgres://... and REDIS_URL=redis://...")

    from bench._sink import start_sink
    from channels_adapters.handler import channels
    from notifications.campaigns.runs import campaign_run_plan, campaign_run_start
    from notifications.models import Campaign, CampaignRun, Delivery

    users = _users(max(opts.recipients, opts.baseline))
    sink = start_sink(latency_ms=opts.latency_ms)
    workers: list[subprocess.Popen] = []
    try:
        # --- one process, no queue ---------------------------------------------------------
        settings.NOTIFICATION_CHANNELS = {"email": {
            "BACKEND": "channels_adapters.email.EmailChannel",
            "OPTIONS": {"backend": "django.core.mail.backends.smtp.EmailBackend",
                        "connection": {"host": sink.hostname, "port": sink.port, "timeout": 30}},
        }}
        channels.reset()
        baseline = _campaign("Bench scale (one process)", users[:opts.baseline])
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            own_backend = cursor.fetchone()[0]
        one_cpu = CpuMeter()
        one_cpu.sample("postgresql", [own_backend])
        one_cpu.sample("sink", [sink.process.pid])
        cpu_started = time.process_time()
        started = time.perf_counter()
        now = timezone.now()
        Campaign.objects.filter(pk=baseline.pk).update(status="scheduled", next_run_at=now)
        run = campaign_run_start(campaign_id=baseline.pk, occurrence=now, now=now)
        campaign_run_plan(run_id=run.pk)  # immediate backend: every send task runs here, as planned
        one_seconds = time.perf_counter() - started
        one_process_cpu = time.process_time() - cpu_started
        one_cpu.sample("postgresql", [own_backend])
        one_cpu.sample("sink", [sink.process.pid])
        one_sent = Delivery.objects.filter(run_id=run.pk, status="sent").count()

        # --- N RQ workers ------------------------------------------------------------------
        env = {
            **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "0", "TASK_BACKEND": "rq",
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + "x" * 50), "EMAIL_HOST": sink.hostname,
            "EMAIL_PORT": str(sink.port), "LOG_LEVEL": "WARNING", "TASKS_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        worker_args = ["--worker-class", opts.worker_class] if opts.worker_class != "fork" else []
        for n in range(opts.workers):
            workers.append(subprocess.Popen(
                [sys.executable, "manage.py", "rqworker", "default", "--with-scheduler", "--job-class",
                 "django_tasks_rq.Job", "--name", f"bench-scale-{os.getpid()}-{n}", *worker_args],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        campaign = _campaign("Bench scale (workers)", users[:opts.recipients])
        workers_cpu = CpuMeter()
        since = timezone.now()
        _wait_registered(len(workers))  # their start-up (imports, connections) is not sending

        def sample_workers() -> None:
            for worker in workers:
                workers_cpu.sample("workers", [worker.pid, *_children(worker.pid)])
            workers_cpu.sample("sink", [sink.process.pid])
            _sample_pg(workers_cpu, since)

        sample_workers()
        Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", next_run_at=timezone.now())
        subprocess.run([sys.executable, "manage.py", "signalbox_scheduler", "--once"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        run_id = CampaignRun.objects.filter(campaign=campaign).values_list("id", flat=True).get()
        seconds = _wait_done(run_id, opts.recipients, opts.timeout, on_tick=sample_workers)
        sample_workers()
        rss = [_peak_rss_mb(w.pid) for w in workers]
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
        sink.stop()

    rate = opts.recipients / seconds
    one_rate = one_sent / one_seconds
    def per_k(seconds: float, sent: int) -> float | None:
        return round(1000 * seconds / sent, 2) if sent else None

    one_totals, workers_totals = one_cpu.totals(), workers_cpu.totals()
    return {
        "ratio_workers_to_one_process": round(rate / one_rate, 2),
        "workers_per_s": round(rate, 1),
        "time_to_100_percent_ms": round(seconds * 1000),
        "one_process_per_s": round(one_rate, 1),
        "worker_peak_rss_mb": rss,
        # CPU seconds per 1,000 messages sent, per process group (see the module docstring).
        "cpu_s_per_1k_messages": {
            "one_process": {"this_process": per_k(one_process_cpu, one_sent),
                            **{k: per_k(v, one_sent) for k, v in one_totals.items()}},
            "workers": {k: per_k(v, opts.recipients) for k, v in workers_totals.items()},
        },
        "recipients": opts.recipients,
        "workers": opts.workers,
        "latency_ms": opts.latency_ms,
        "worker_class": opts.worker_class,
        "target_ratio": 2.0,
        "target_rss_mb": 300,
    }
