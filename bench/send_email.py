"""Email through the whole pipeline vs raw smtplib, into a loopback aiosmtpd sink (target ratio >= 0.6).

The pipeline side plans N deliveries with ``notify()`` and runs every send batch on one worker
(this process): claim, render the MIME message (text + HTML), one SMTP connection per batch,
record each result. The raw side sends the same number of pre-built messages with ``smtplib``
over one connection. Both go to the same real SMTP server on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import smtplib
import time
from email.message import EmailMessage


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench send_email")
    parser.add_argument("--emails", type=int, default=2000)
    opts = parser.parse_args(argv)

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
            for i in range(opts.emails)
        )
        users = list(User.objects.filter(username__startswith="bench-mail-").values_list("id", flat=True))
        category, _ = Category.objects.get_or_create(
            key="bench-transactional", defaults={"name": "Bench", "kind": "transactional", "user_can_opt_out": False}
        )

        key = f"bench-mail-{time.time_ns()}"
        started = time.perf_counter()
        # The benchmark runs with the immediate task backend: each send batch runs as its task
        # would on a worker, in this process, right after the plan commits.
        notify(users, title="Your receipt", body="Thanks for your order.\n\nTotal: $42.00",
               html="<h1>Thanks</h1><p>Total: <b>$42.00</b></p>", channels=["email"], category=category,
               idempotency_key=key)
        pipeline_seconds = time.perf_counter() - started
        sent = Delivery.objects.filter(idempotency_key__startswith=f"notify:{key}:", status="sent").count()
        assert sent == opts.emails, (sent, opts.emails)

        prebuilt = []
        for i in range(opts.emails):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "noreply@signalbox.bench", f"raw{i}@example.com", "Your receipt"
            msg.set_content("Thanks for your order.\n\nTotal: $42.00")
            msg.add_alternative("<h1>Thanks</h1><p>Total: <b>$42.00</b></p>", subtype="html")
            prebuilt.append((msg["To"], msg.as_bytes()))
        started = time.perf_counter()
        with smtplib.SMTP(sink.hostname, sink.port) as smtp:
            for to, raw in prebuilt:
                smtp.sendmail("noreply@signalbox.bench", [to], raw)
        raw_seconds = time.perf_counter() - started
    finally:
        received = sink.stop()
    assert received == 2 * opts.emails, (received, 2 * opts.emails)  # every message of both runs arrived

    pipeline_rate = opts.emails / pipeline_seconds
    raw_rate = opts.emails / raw_seconds
    return {
        "ratio_pipeline_to_raw": round(pipeline_rate / raw_rate, 3),
        "pipeline_per_s": round(pipeline_rate, 1),
        "raw_smtplib_per_s": round(raw_rate, 1),
        "emails": opts.emails,
        "target_ratio": 0.6,
    }
