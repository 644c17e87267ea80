"""Email through the whole pipeline vs raw smtplib, into a loopback aiosmtpd sink (target ratio >= 0.6).

The pipeline side plans deliveries with ``notify()`` and runs every send batch on one worker
(this process): claim, re-check, render the MIME message (text + HTML, tracking pixel), one SMTP
connection per batch, the durable hand-off mark per message, record each result. The raw side
sends the same number of pre-built messages with ``smtplib`` over one connection. Both go to the
same real SMTP server on 127.0.0.1 (its own process).

The two sides alternate in ``--rounds`` rounds, so a change in machine load during the run
(another process waking up) hits both alike instead of skewing the ratio; the figures are the
totals over all rounds.
"""

from __future__ import annotations

import argparse
import smtplib
import time
from email.message import EmailMessage


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench send_email")
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=None, help="the email channel's max_batch_size (default: the adapter's)")
    opts = parser.parse_args(argv)
    per_round = max(1, opts.emails // opts.rounds)
    emails = per_round * opts.rounds

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from bench._sink import start_sink
    from channels_adapters.handler import channels
    from notifications.api import notify
    from notifications.models import Category, Delivery

    sink = start_sink()
    try:
        settings.NOTIFICATION_CHANNELS = {
            "email": {
                "BACKEND": "channels_adapters.email.EmailChannel",
                "OPTIONS": {
                    "backend": "django.core.mail.backends.smtp.EmailBackend",
                    "connection": {"host": sink.hostname, "port": sink.port, "timeout": 10},
                    "from_email": "Signalbox <noreply@signalbox.bench>",
                    **({"max_batch_size": opts.batch} if opts.batch else {}),
                },
            }
        }
        channels.reset()
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
        for i in range(emails):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "noreply@signalbox.bench", f"raw{i}@example.com", "Your receipt"
            msg.set_content("Thanks for your order.\n\nTotal: $42.00")
            msg.add_alternative("<h1>Thanks</h1><p>Total: <b>$42.00</b></p>", subtype="html")
            prebuilt.append((msg["To"], msg.as_bytes()))

        run_key = f"bench-mail-{time.time_ns()}"
        pipeline_seconds = raw_seconds = 0.0
        for round_no in range(opts.rounds):
            batch = users[round_no * per_round:(round_no + 1) * per_round]
            started = time.perf_counter()
            # The immediate task backend runs each send batch as its task would on a worker, in
            # this process, right after the plan commits.
            notify(batch, title="Your receipt", body="Thanks for your order.\n\nTotal: $42.00",
                   html="<h1>Thanks</h1><p>Total: <b>$42.00</b></p>", channels=["email"], category=category,
                   idempotency_key=f"{run_key}-{round_no}")
            pipeline_seconds += time.perf_counter() - started

            started = time.perf_counter()
            with smtplib.SMTP(sink.hostname, sink.port) as smtp:
                for to, raw in prebuilt[round_no * per_round:(round_no + 1) * per_round]:
                    smtp.sendmail("noreply@signalbox.bench", [to], raw)
            raw_seconds += time.perf_counter() - started
        sent = Delivery.objects.filter(idempotency_key__startswith=f"notify:{run_key}-", status="sent").count()
        assert sent == emails, (sent, emails)
    finally:
        received = sink.stop()
    assert received == 2 * emails, (received, 2 * emails)  # every message of both sides arrived

    pipeline_rate = emails / pipeline_seconds
    raw_rate = emails / raw_seconds
    return {
        "ratio_pipeline_to_raw": round(pipeline_rate / raw_rate, 3),
        "pipeline_per_s": round(pipeline_rate, 1),
        "raw_smtplib_per_s": round(raw_rate, 1),
        "emails": emails,
        "rounds": opts.rounds,
        "target_ratio": 0.6,
    }
