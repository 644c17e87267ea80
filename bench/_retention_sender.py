"""A process that sends while data retention purges (``bench retention``, ``tests/ops``).

``python -m bench._retention_sender --stop-file PATH [--users N] [--batch N]`` sends one
``notify()`` after another (email, captured into the Outbox, and the in-app inbox, through the
whole pipeline: plan, claim, send, record; ``TASK_BACKEND=immediate`` runs the send task in
this process) until ``PATH`` exists, then prints one JSON line: calls, messages, errors (a
failed call, or a delivery of its own left other than ``sent``) and the slowest call in ms.
It writes ``PATH.ready`` once its recipients exist, so the caller starts purging only then.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._retention_sender")
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50, help="recipients per notify()")
    parser.add_argument("--tag", default=str(os.getpid()))
    opts = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ.setdefault("TASK_BACKEND", "immediate")
    os.environ["SIGNALBOX_CAPTURE"] = "1"
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from notifications.api import notify
    from notifications.models import Delivery
    from notifications.services import category_ensure

    category_ensure(key="system", name="System", kind="system", user_can_opt_out=False)
    User = get_user_model()
    prefix = f"ret-sender-{opts.tag}-"
    User.objects.bulk_create(
        [User(username=f"{prefix}{n}", email=f"{prefix}{n}@example.com") for n in range(opts.users)],
        ignore_conflicts=True,
    )
    users = list(User.objects.filter(username__startswith=prefix).values_list("pk", flat=True))
    stop = Path(opts.stop_file)
    Path(f"{opts.stop_file}.ready").touch()

    calls = messages = errors = 0
    first_error = ""
    samples: list[float] = []
    while not stop.exists():
        chunk = [users[(calls * opts.batch + n) % len(users)] for n in range(opts.batch)]
        started = time.perf_counter()
        try:
            notify(chunk, title="Flash sale", body="Today only.", channels=["email", "inapp"],
                   idempotency_key=f"{prefix}{calls}")
            messages += 2 * len(set(chunk))
        except Exception as error:  # noqa: BLE001 - counted and reported: the figure this process exists for
            errors += 1
            first_error = first_error or repr(error)
        samples.append((time.perf_counter() - started) * 1000)
        calls += 1
    mine = Delivery.objects.filter(idempotency_key__startswith=f"notify:{prefix}")
    not_sent = mine.exclude(status=Delivery.Status.SENT).count()
    print(json.dumps({
        "calls": calls,
        "messages": messages,
        "deliveries": mine.count(),
        "not_sent": not_sent,
        "errors": errors + not_sent,
        "first_error": first_error,
        "call_p50_ms": round(statistics.median(samples), 1) if samples else 0,
        "call_max_ms": round(max(samples), 1) if samples else 0,
    }))


if __name__ == "__main__":
    main()
