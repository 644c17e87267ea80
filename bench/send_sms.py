"""SMS through the whole pipeline vs the twilio SDK called one message after another.

Target (issue 10): ratio >= 8 with ``--latency-ms 100`` (the fake Twilio API answers each
request 100 ms after it arrived; Twilio itself takes 50-300 ms).

The pipeline side plans deliveries with ``notify()`` and runs every send batch on one worker
(this process, the immediate task backend) through the SMS adapter: its lanes (``--concurrency``,
default the adapter's), each with its own SDK client and kept-alive connection. The channel's
``max_per_second`` is lifted for the measurement (``--rate`` sets one): the shared limiter paces
what an account may send, not how fast one worker can. The sequential side calls
``client.messages.create`` with the same SDK and HTTP client, one call after another. Both talk
to the same fake Twilio API in its own process; the sides alternate in ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import logging
import time


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench send_sms")
    parser.add_argument("--messages", type=int, default=1000, help="sent through the pipeline, over all rounds")
    parser.add_argument("--sequential-messages", type=int, default=None,
                        help="sent by sequential SDK calls over all rounds (default: --messages, at most 100)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=None, help="the SMS channel's lanes (default: the adapter's)")
    parser.add_argument("--rate", type=float, default=None, help="the channel's max_per_second (default: none)")
    opts = parser.parse_args(argv)
    # The SDK logs every request and reply at INFO; both sides would pay for it alike.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    per_round = max(1, opts.messages // opts.rounds)
    messages = per_round * opts.rounds
    sequential_total = opts.sequential_messages if opts.sequential_messages is not None else min(messages, 100)
    seq_per_round = max(1, sequential_total // opts.rounds)
    sequential = seq_per_round * opts.rounds

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from twilio.rest import Client

    from bench._twilio import ACCOUNT_SID, AUTH_TOKEN, start_fake_twilio
    from channels_adapters.handler import channels
    from channels_adapters.sms import RedirectingHttpClient
    from notifications.api import notify
    from notifications.models import Category, Delivery, RecipientProfile

    fake = start_fake_twilio(latency_ms=opts.latency_ms)
    try:
        settings.NOTIFICATION_CHANNELS = {"sms": {"BACKEND": "channels_adapters.sms.SmsChannel", "OPTIONS": {
            "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+15005550006",
            "base_url": fake.base_url, "status_callback": "", "max_per_second": opts.rate,
            **({"concurrency": opts.concurrency} if opts.concurrency else {}),
        }}}
        channels.reset()
        adapter = channels["sms"]
        User = get_user_model()
        User.objects.filter(username__startswith="bench-sms-").delete()
        password = make_password(None)
        User.objects.bulk_create(User(username=f"bench-sms-{i}", password=password) for i in range(messages))
        users = list(User.objects.filter(username__startswith="bench-sms-").order_by("id").values_list("id", flat=True))
        RecipientProfile.objects.bulk_create(
            RecipientProfile(user_id=pk, phone=f"+1415555{i % 10000:04d}") for i, pk in enumerate(users)
        )
        category, _ = Category.objects.get_or_create(
            key="bench-codes", defaults={"name": "Bench codes", "kind": "transactional", "user_can_opt_out": False}
        )
        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(base_url=fake.base_url, timeout=10))

        run_key = f"bench-sms-{time.time_ns()}"
        pipeline_seconds = sequential_seconds = 0.0
        for round_no in range(opts.rounds):
            batch = users[round_no * per_round:(round_no + 1) * per_round]
            started = time.perf_counter()
            notify(batch, title="Code", body="Your code is 123456", channels=["sms"], category=category,
                   idempotency_key=f"{run_key}-{round_no}")
            pipeline_seconds += time.perf_counter() - started

            started = time.perf_counter()
            for i in range(seq_per_round):
                client.messages.create(to=f"+1415555{i % 10000:04d}", from_="+15005550006", body="Your code is 123456")
            sequential_seconds += time.perf_counter() - started
        sent = Delivery.objects.filter(idempotency_key__startswith=f"notify:{run_key}-", status="sent").count()
        assert sent == messages, (sent, messages)
    finally:
        accepted = fake.stop()
    assert accepted == messages + sequential, (accepted, messages + sequential)

    pipeline_rate = messages / pipeline_seconds
    sequential_rate = sequential / sequential_seconds
    return {
        "ratio_pipeline_to_sequential": round(pipeline_rate / sequential_rate, 2),
        "pipeline_per_s": round(pipeline_rate, 1),
        "sequential_sdk_per_s": round(sequential_rate, 1),
        "latency_ms": opts.latency_ms,
        "concurrency": adapter.features.concurrency,
        "max_per_second": opts.rate,
        "messages": messages,
        "sequential_messages": sequential,
        "rounds": opts.rounds,
        "target_ratio": 8,
    }
