"""One person's export and erasure with 100k deliveries (the issue: streamed, bounded memory).

Builds a recipient with ``--deliveries`` ledger rows (each with a receipt), half as many inbox
rows, a neighbour with the same, then exports the person to a ZIP file and erases them.
``export_peak_mb`` is the Python heap's peak while exporting (tracemalloc, in a second export so
``export_ms`` is not slowed by it): it must stay flat as ``--deliveries`` grows, since rows are
read a chunk at a time and the archive is written as it goes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc


def _person(username: str, deliveries: int):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from notifications.models import Delivery, DeliveryEvent, Notification, RecipientProfile

    User = get_user_model()
    User.objects.filter(username=username).delete()
    Delivery.objects.filter(idempotency_key__startswith=f"bench-{username}-").delete()
    user = User.objects.create_user(username=username, email=f"{username}@example.com", first_name="Bench")
    RecipientProfile.objects.create(user=user, phone="+14155550199")
    now = timezone.now()
    Delivery.objects.bulk_create(
        (Delivery(idempotency_key=f"bench-{username}-{i}", recipient=user, channel="email", address=user.email,
                  status="opened", content={"subject": f"Offer {i}", "text": "Hello Bench"},
                  provider_message_id=f"esp-{username}-{i}", created_at=now, sent_at=now, opened_at=now)
         for i in range(deliveries)),
        batch_size=5_000,
    )
    ids = Delivery.objects.filter(recipient=user).values_list("pk", flat=True).iterator(chunk_size=5_000)
    DeliveryEvent.objects.bulk_create(
        (DeliveryEvent(delivery_id=pk, kind="opened", source="pixel", data={"user_agent": "Mail/1.0"}) for pk in ids),
        batch_size=5_000,
    )
    Notification.objects.bulk_create(
        (Notification(recipient=user, title=f"Offer {i}", body="Hello Bench") for i in range(deliveries // 2)),
        batch_size=5_000,
    )
    return user


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench person_data")
    parser.add_argument("--deliveries", type=int, default=100_000)
    opts = parser.parse_args(argv)

    from django.contrib.auth import get_user_model
    from django.db import connection

    from accounts.roles import roles_ensure
    from notifications.privacy import person_erase, person_export, person_load

    roles_ensure()
    User = get_user_model()
    User.objects.filter(username="bench-person-admin").delete()
    admin = User.objects.create_superuser("bench-person-admin", "root@example.com", None)
    started = time.perf_counter()
    person = _person("bench-person", opts.deliveries)
    _person("bench-neighbour", opts.deliveries)
    setup_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "person.zip")
        started = time.perf_counter()
        with open(path, "wb") as out:
            counts = person_export(person=person_load(person), actor=admin, out=out)
        export_s = time.perf_counter() - started
        size = os.path.getsize(path)
        # Again under tracemalloc (which slows Python down several times): the heap's peak.
        tracemalloc.start()
        with open(path, "wb") as out:
            person_export(person=person_load(person), actor=admin, out=out)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    started = time.perf_counter()
    rows = person_erase(person=person_load(User.objects.get(pk=person.pk)), actor=admin)
    erase_s = time.perf_counter() - started
    return {
        "export_peak_mb": round(peak / 1048576, 1),
        "export_ms": round(export_s * 1000),
        "export_rows_per_s": round(sum(counts.values()) / export_s),
        "zip_mb": round(size / 1048576, 1),
        "erase_ms": round(erase_s * 1000),
        "deliveries": counts["deliveries"],
        "rows_exported": sum(counts.values()),
        "rows_erased": sum(rows.values()),
        "database": connection.vendor,
        "setup_s": round(setup_s, 1),
    }
