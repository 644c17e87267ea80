"""Email through the whole pipeline vs raw smtplib over one connection, into a loopback sink.

Targets (issue 10): ratio >= 15 with ``--latency-ms 10`` (a relay 10 ms away), >= 1.0 at 0.

The pipeline side plans deliveries with ``notify()`` and runs every send batch on one worker
(this process, the immediate task backend): claim, re-check, render the MIME message (text +
HTML, tracking pixel), mark each wave in flight, send over the email adapter's pool of
connections (``--concurrency``, default the adapter's), pipelining when the sink offers it,
record each result. The raw side sends pre-built messages with ``smtplib.sendmail`` over one
connection, one after another. Both go to the same real SMTP server on 127.0.0.1 (its own
process, ``bench._sink``), which answers each command ``--latency-ms`` after it arrived.

The two sides alternate in ``--rounds`` rounds, so a change in machine load during the run
hits both alike; the figures are the totals over all rounds. At a latency the raw side sends
fewer messages per round (``--raw-emails``), its rate being the point, not its count.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import time
from email.message import EmailMessage


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench send_email")
    parser.add_argument("--emails", type=int, default=5000, help="sent through the pipeline, over all rounds")
    parser.add_argument("--raw-emails", type=int, default=None,
                        help="sent by raw smtplib over all rounds (default: --emails, or 600 with a latency)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the sink answers each command this late")
    parser.add_argument("--concurrency", type=int, default=None, help="the email channel's connections (default: the adapter's)")
    parser.add_argument("--batch", type=int, default=None, help="the email channel's max_batch_size (default: the adapter's)")
    parser.add_argument("--no-pipelining", action="store_true", help="the sink does not offer PIPELINING")
    opts = parser.parse_args(argv)
    per_round = max(1, opts.emails // opts.rounds)
    emails = per_round * opts.rounds
    raw_total = opts.raw_emails if opts.raw_emails is not None else (min(emails, 600) if opts.latency_ms else emails)
    raw_per_round = max(1, raw_total // opts.rounds)
    raw_emails = raw_per_round * opts.rounds

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from bench._sink import start_sink
    from channels_adapters.handler import channels
    from notifications.api import notify
    from notifications.models import Category, Delivery

    warm: list[int] = []
    sink = start_sink(latency_ms=opts.latency_ms, pipelining=not opts.no_pipelining)
    try:
        settings.NOTIFICATION_CHANNELS = {
            "email": {
                "BACKEND": "channels_adapters.email.EmailChannel",
                "OPTIONS": {
                    "backend": "django.core.mail.backends.smtp.EmailBackend",
                    "connection": {"host": sink.hostname, "port": sink.port, "timeout": 10},
                    "from_email": "Signalbox <noreply@signalbox.bench>",
                    **({"max_batch_size": opts.batch} if opts.batch else {}),
                    **({"concurrency": opts.concurrency} if opts.concurrency else {}),
                },
            }
        }
        channels.reset()
        adapter = channels["email"]
        User = get_user_model()
        User.objects.filter(username__startswith="bench-mail-").delete()
        Delivery.objects.filter(idempotency_key__startswith="notify:bench-mail").delete()
        password = make_password(None)
        User.objects.bulk_create(
            User(username=f"bench-mail-{i}", email=f"bench{i}@example.com", password=password)
            for i in range(emails)
        )
        users = list(User.objects.filter(username__startswith="bench-mail-").order_by("id").values_list("id", flat=True))
        category, _ = Category.objects.get_or_create(
            key="bench-transactional", defaults={"name": "Bench", "kind": "transactional", "user_can_opt_out": False}
        )
        prebuilt = []
        for i in range(raw_emails):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "noreply@signalbox.bench", f"raw{i}@example.com", "Your receipt"
            msg.set_content("Thanks for your order.\n\nTotal: $42.00")
            msg.add_alternative("<h1>Thanks</h1><p>Total: <b>$42.00</b></p>", subtype="html")
            prebuilt.append((msg["To"], msg.as_bytes()))

        run_key = f"bench-mail-{time.time_ns()}"
        # A worker runs for hours: its first batch's one-off costs (importing the URL conf for
        # the tracking links, opening the database) are not its sending speed. One small round,
        # not counted, on both sides.
        warm = list(User.objects.filter(username__startswith="bench-warm-").values_list("id", flat=True))
        if not warm:
            warm = [User.objects.create(username=f"bench-warm-{i}", email=f"warm{i}@example.com", password=password).pk
                    for i in range(20)]
        notify(warm, title="Warm-up", body="Warm-up", html="<p>Warm-up</p>", channels=["email"], category=category,
               idempotency_key=f"{run_key}:warm")
        with smtplib.SMTP(sink.hostname, sink.port) as smtp:
            smtp.sendmail("noreply@signalbox.bench", [prebuilt[0][0]], prebuilt[0][1])
        pipeline_seconds = raw_seconds = 0.0
        # CPU seconds of this process and of the sink on each side (``cpu_ms_per_message``).
        cpu = {"pipeline": 0.0, "pipeline_sink": 0.0, "raw": 0.0, "raw_sink": 0.0}
        sink_pid = sink.process.pid
        for round_no in range(opts.rounds):
            batch = users[round_no * per_round:(round_no + 1) * per_round]
            started, cpu_started, sink_started = time.perf_counter(), time.process_time(), _cpu_seconds(sink_pid)
            # The immediate task backend runs each send batch as its task would on a worker, in
            # this process, right after the plan commits.
            notify(batch, title="Your receipt", body="Thanks for your order.\n\nTotal: $42.00",
                   html="<h1>Thanks</h1><p>Total: <b>$42.00</b></p>", channels=["email"], category=category,
                   idempotency_key=f"{run_key}-{round_no}")
            pipeline_seconds += time.perf_counter() - started
            cpu["pipeline"] += time.process_time() - cpu_started
            cpu["pipeline_sink"] += _cpu_seconds(sink_pid) - sink_started

            started, cpu_started, sink_started = time.perf_counter(), time.process_time(), _cpu_seconds(sink_pid)
            with smtplib.SMTP(sink.hostname, sink.port) as smtp:
                for to, raw in prebuilt[round_no * raw_per_round:(round_no + 1) * raw_per_round]:
                    smtp.sendmail("noreply@signalbox.bench", [to], raw)
            raw_seconds += time.perf_counter() - started
            cpu["raw"] += time.process_time() - cpu_started
            cpu["raw_sink"] += _cpu_seconds(sink_pid) - sink_started
        sent = Delivery.objects.filter(idempotency_key__startswith=f"notify:{run_key}-", status="sent").count()
        assert sent == emails, (sent, emails)
    finally:
        received = sink.stop()
    assert received == emails + raw_emails + len(warm) + 1, (received, emails + raw_emails)  # every message of both sides arrived

    pipeline_rate = emails / pipeline_seconds
    raw_rate = raw_emails / raw_seconds
    return {
        "ratio_pipeline_to_raw": round(pipeline_rate / raw_rate, 3),
        "pipeline_per_s": round(pipeline_rate, 1),
        "raw_smtplib_per_s": round(raw_rate, 1),
        "cpu_ms_per_message": {
            "pipeline": round(1000 * cpu["pipeline"] / emails, 3),
            "sink_during_pipeline": round(1000 * cpu["pipeline_sink"] / emails, 3),
            "raw_smtplib": round(1000 * cpu["raw"] / raw_emails, 3),
            "sink_during_raw": round(1000 * cpu["raw_sink"] / raw_emails, 3),
        },
        "latency_ms": opts.latency_ms,
        "concurrency": adapter.features.concurrency,
        "batch": adapter.max_batch_size,
        "pipelining": not opts.no_pipelining,
        "emails": emails,
        "raw_emails": raw_emails,
        "rounds": opts.rounds,
        "target_ratio": 15 if opts.latency_ms >= 10 else 1.0,
    }
