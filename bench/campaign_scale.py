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
target <= 300 MB). ``--worker-class fork`` uses RQ's default forking worker instead of
``config.rq.Worker``, to see what the fork per job costs.
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


def _wait_done(run_id: int, expected: int, timeout: float) -> float:
    from notifications.models import CampaignRun, Delivery

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
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
    sink = start_sink()
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
        started = time.perf_counter()
        now = timezone.now()
        Campaign.objects.filter(pk=baseline.pk).update(status="scheduled", next_run_at=now)
        run = campaign_run_start(campaign_id=baseline.pk, occurrence=now, now=now)
        campaign_run_plan(run_id=run.pk)  # immediate backend: every send task runs here, as planned
        one_seconds = time.perf_counter() - started
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
        Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", next_run_at=timezone.now())
        subprocess.run([sys.executable, "manage.py", "signalbox_scheduler", "--once"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        run_id = CampaignRun.objects.filter(campaign=campaign).values_list("id", flat=True).get()
        seconds = _wait_done(run_id, opts.recipients, opts.timeout)
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
    return {
        "ratio_workers_to_one_process": round(rate / one_rate, 2),
        "workers_per_s": round(rate, 1),
        "time_to_100_percent_ms": round(seconds * 1000),
        "one_process_per_s": round(one_rate, 1),
        "worker_peak_rss_mb": rss,
        "recipients": opts.recipients,
        "workers": opts.workers,
        "worker_class": opts.worker_class,
        "target_ratio": 2.0,
        "target_rss_mb": 300,
    }
