"""Engagement conditions of audiences on a realistic ledger: the live count's time and query plan.

Seeds ``--users`` recipients and ``--deliveries`` deliveries over 90 days (email, SMS, in-app;
from ``--runs`` campaign runs and ad-hoc sends), with open receipts and tracked links with click
receipts, then counts each engagement condition as the audience editor's live count does, and
prints the median time and the database's plan for it (``--plans``), so the indexes it uses can
be read on SQLite and PostgreSQL alike::

    python -m bench audience_engagement --plans
    DATABASE_URL=postgres://... python -m bench audience_engagement --plans
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import timedelta

PREFIX = "bench-eng-"


def _seed(opts) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.utils import timezone

    from channels_adapters.features import STANDARD_FEATURES
    from notifications.models import (
        Audience, Campaign, CampaignRun, Category, Delivery, DeliveryEvent, MessageTemplate, TrackedLink,
    )

    User = get_user_model()
    if Delivery.objects.filter(idempotency_key__startswith=PREFIX).count() == opts.deliveries and \
            User.objects.filter(username__startswith=PREFIX).count() == opts.users:
        return {"campaign": Campaign.objects.get(name=f"{PREFIX}campaign"), "seeded": False}
    Delivery.objects.filter(idempotency_key__startswith=PREFIX).delete()
    Campaign.objects.filter(name=f"{PREFIX}campaign").delete()
    User.objects.filter(username__startswith=PREFIX).delete()
    rng = random.Random(13)
    now = timezone.now()
    password = make_password(None)
    User.objects.bulk_create(
        (User(username=f"{PREFIX}{i}", email=f"{PREFIX}{i}@example.com", password=password) for i in range(opts.users)),
        batch_size=2000,
    )
    user_ids = list(User.objects.filter(username__startswith=PREFIX).values_list("pk", flat=True))
    category, _ = Category.objects.get_or_create(key=f"{PREFIX}news", defaults={"name": "Bench news"})
    template, _ = MessageTemplate.objects.get_or_create(key=f"{PREFIX}t", defaults={"name": "Bench"})
    audience, _ = Audience.objects.get_or_create(name=f"{PREFIX}everyone")
    campaign = Campaign.objects.create(name=f"{PREFIX}campaign", audience=audience, template=template,
                                       category=category, channels=["email"], status="completed")
    runs = [CampaignRun.objects.create(campaign=campaign, occurrence=now - timedelta(days=90 - i * 90 // opts.runs),
                                       status="completed") for i in range(opts.runs)]
    rows = []
    for i in range(opts.deliveries):
        created = now - timedelta(minutes=rng.randrange(90 * 24 * 60))
        channel = rng.choices(["email", "sms", "inapp"], weights=[7, 1, 2])[0]
        fate = rng.random()
        row = Delivery(
            idempotency_key=f"{PREFIX}{i}", recipient_id=rng.choice(user_ids), channel=channel, category=category,
            address="x", created_at=created, sent_at=created + timedelta(seconds=5), status="sent",
            run=rng.choice(runs) if rng.random() < 0.6 else None,
        )
        if fate < 0.05:
            row.status, row.failed_at = "bounced", created + timedelta(minutes=1)
        elif STANDARD_FEATURES[channel].tracks_opens and fate < 0.35:  # opens exist only where tracked
            row.status, row.opened_at = "opened", created + timedelta(hours=rng.randrange(1, 48))
            if fate < 0.12:
                row.status, row.clicked_at = "clicked", row.opened_at + timedelta(minutes=3)
        elif fate < 0.6:
            row.status, row.delivered_at = "delivered", created + timedelta(minutes=1)
        rows.append(row)
    Delivery.objects.bulk_create(rows, batch_size=2000)
    engaged = Delivery.objects.filter(idempotency_key__startswith=PREFIX, opened_at__isnull=False)
    DeliveryEvent.objects.bulk_create(
        (DeliveryEvent(delivery_id=pk, kind="opened", source="pixel", provider_event_id=f"open:{pk}", occurred_at=at)
         for pk, at in engaged.values_list("pk", "opened_at")), batch_size=2000,
    )
    clicked = list(engaged.filter(clicked_at__isnull=False).values_list("pk", "clicked_at"))
    links = TrackedLink.objects.bulk_create(
        (TrackedLink(delivery_id=pk, url=url, position=n)
         for pk, _at in clicked for n, url in enumerate(["https://shop.example/pricing", "https://shop.example/blog"])),
        batch_size=2000,
    )
    at_by_delivery = dict(clicked)
    DeliveryEvent.objects.bulk_create(
        (DeliveryEvent(delivery_id=link.delivery_id, kind="clicked", source="click", provider_event_id=f"click:{link.pk}",
                       occurred_at=at_by_delivery[link.delivery_id]) for link in links if link.position == rng.randrange(2)),
        batch_size=2000,
    )
    with connection.cursor() as cursor:  # fresh statistics, as a live database has them
        cursor.execute("ANALYZE")
    return {"campaign": campaign, "seeded": True}


def _median_ms(call, calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 2)


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench audience_engagement")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--deliveries", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--plans", action="store_true", help="print each count's query plan")
    opts = parser.parse_args(argv)

    from django.contrib.auth import get_user_model
    from django.db import connection

    from notifications.audiences import audience_q

    seeded = _seed(opts)
    campaign = seeded["campaign"]
    run_id = campaign.runs.order_by("-occurrence").values_list("pk", flat=True).first()
    conditions = {
        "opened_30d": {"field": "engagement.opened", "op": "within_days", "value": 30},
        "clicked_pricing_30d": {"field": "engagement.clicked", "op": "contains_within_days",
                                "value": {"text": "pricing", "days": 30}},
        "not_sent_14d": {"field": "engagement.sent", "op": "not_within_days", "value": {"days": 14}},
        "not_sent_email_14d": {"field": "engagement.sent", "op": "not_within_days",
                               "value": {"days": 14, "channel": "email"}},
        "campaign_received": {"field": "engagement.campaign", "op": "received", "value": [campaign.pk]},
        "campaign_not_opened": {"field": "engagement.campaign", "op": "not_opened", "value": [campaign.pk]},
        "run_not_opened": {"field": "engagement.campaign_run", "op": "not_opened", "value": [run_id]},
    }
    users = get_user_model().objects.filter(is_active=True, username__startswith=PREFIX)
    figures: dict = {"vendor": connection.vendor, "users": opts.users, "deliveries": opts.deliveries}
    plans = {}
    for name, node in conditions.items():
        matched = users.filter(audience_q(rules=node))
        figures[f"{name}_count"] = matched.count()
        figures[f"{name}_ms"] = _median_ms(matched.count, opts.calls)
        if opts.plans:
            plans[name] = matched.explain()
    if opts.plans:
        figures["plans"] = plans
    return figures
