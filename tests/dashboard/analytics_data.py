"""A small, hand-made ledger whose every analytics figure is known (tests/dashboard/test_analytics*.py).

``NOW`` is Wednesday 11 March 2026, 12:00 UTC. The campaign "Spring sale" ran on Monday 9 March;
what each delivery did is spelled out next to it, and ``EXPECTED`` holds the figures for the
last 7 days (5–11 March) that follow from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model

from notifications.models import (
    Audience,
    Campaign,
    CampaignRun,
    Category,
    Delivery,
    DeliveryEvent,
    MessageTemplate,
)

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
MON = datetime(2026, 3, 9, tzinfo=UTC)


def at(day: datetime, hh: int, mm: int = 0) -> datetime:
    return day.replace(hour=hh, minute=mm)


@dataclass
class Ledger:
    news: Category
    orders: Category
    campaign: Campaign
    run: CampaignRun
    deliveries: dict[str, Delivery]


def build_ledger() -> Ledger:
    User = get_user_model()
    user = User.objects.create(username="ana", email="ana@example.com")
    news = Category.objects.create(key="news-a", name="News")
    orders = Category.objects.create(key="orders-a", name="Orders", kind=Category.Kind.TRANSACTIONAL)
    audience = Audience.objects.create(name="Everyone (analytics)")
    template = MessageTemplate.objects.create(key="spring-a", name="Spring", email_subject="Hi")
    campaign = Campaign.objects.create(
        name="Spring sale", audience=audience, template=template, category=news, channels=["email"],
        status=Campaign.Status.COMPLETED, created_at=MON - timedelta(days=1),
    )
    run = CampaignRun.objects.create(
        campaign=campaign, occurrence=at(MON, 9), status=CampaignRun.Status.COMPLETED, started_at=at(MON, 9),
        finished_at=at(MON, 10), planned=6,
    )
    tue, today, week_before = MON + timedelta(days=1), MON + timedelta(days=2), MON - timedelta(days=6)
    d: dict[str, Delivery] = {}

    def delivery(key, *, created, channel="email", category=news, run=run, status, events=(), **stamps):
        d[key] = Delivery.objects.create(
            idempotency_key=f"analytics:{key}", recipient=user, channel=channel, category=category, run=run,
            address=f"{key}@example.com", status=status, created_at=created, **stamps,
        )
        DeliveryEvent.objects.bulk_create(
            DeliveryEvent(delivery=d[key], kind=kind, source="test", occurred_at=when, data=data[0] if data else {})
            for kind, when, *data in events
        )

    # Monday, the campaign (email, News):
    delivery("a", created=at(MON, 9), status="clicked", sent_at=at(MON, 9, 1), delivered_at=at(MON, 9, 2),
             opened_at=at(MON, 18, 30), clicked_at=at(MON, 18, 31),
             events=[("sent", at(MON, 9, 1)), ("delivered", at(MON, 9, 2)), ("opened", at(MON, 18, 30)),
                     ("clicked", at(MON, 18, 31))])
    delivery("b", created=at(MON, 9), status="opened", sent_at=at(MON, 9, 1), delivered_at=at(MON, 9, 2),
             opened_at=at(tue, 8, 15),
             events=[("sent", at(MON, 9, 1)), ("delivered", at(MON, 9, 2)),
                     ("opened", at(MON, 9, 3), {"machine_open": True}),  # Apple's proxy: not an open
                     ("opened", at(tue, 8, 15)), ("opened", at(tue, 8, 20))])
    delivery("c", created=at(MON, 9), status="delivered", sent_at=at(MON, 9, 1), delivered_at=at(MON, 9, 2),
             events=[("sent", at(MON, 9, 1)), ("delivered", at(MON, 9, 2))])
    delivery("d", created=at(MON, 9), status="bounced", sent_at=at(MON, 9, 1),
             events=[("sent", at(MON, 9, 1)), ("bounced", at(MON, 9, 5), {"reason": "550 user unknown"})])
    delivery("e", created=at(MON, 9), status="suppressed")
    delivery("f", created=at(MON, 9), status="delivered", sent_at=at(MON, 9, 1), delivered_at=at(MON, 9, 2),
             events=[("sent", at(MON, 9, 1)), ("delivered", at(MON, 9, 2)), ("unsubscribed", at(MON, 11))])
    # Monday, an order update in the inbox (no campaign):
    delivery("g", created=at(MON, 20), channel="inapp", category=orders, run=None, status="read",
             sent_at=at(MON, 20), delivered_at=at(MON, 20), read_at=at(MON, 20, 10),
             events=[("sent", at(MON, 20)), ("delivered", at(MON, 20)), ("read", at(MON, 20, 10))])
    # Today, order texts (no campaign): one failed before sending, one waiting, one clicked unopened.
    delivery("h", created=at(today, 8), channel="sms", category=orders, run=None, status="failed",
             failed_at=at(today, 8, 1), events=[("failed", at(today, 8, 1), {"reason": "30005"})])
    delivery("i", created=at(today, 9), channel="sms", category=orders, run=None, status="planned")
    delivery("j", created=at(today, 10), channel="sms", category=orders, run=None, status="clicked",
             sent_at=at(today, 10), delivered_at=at(today, 10, 1), clicked_at=at(today, 11),
             events=[("sent", at(today, 10)), ("delivered", at(today, 10, 1)), ("clicked", at(today, 11))])
    # The week before (3 March): one delivered, one failed.
    delivery("k", created=at(week_before, 9), run=None, status="delivered", sent_at=at(week_before, 9),
             delivered_at=at(week_before, 9, 1), events=[("sent", at(week_before, 9)), ("delivered", at(week_before, 9, 1))])
    delivery("l", created=at(week_before, 9), run=None, status="failed", failed_at=at(week_before, 9, 2),
             events=[("failed", at(week_before, 9, 2))])
    return Ledger(news=news, orders=orders, campaign=campaign, run=run, deliveries=d)


# The last 7 days (5–11 March, UTC), no filter.
EXPECTED = {
    "total": 10,
    "status_waiting": 1, "status_suppressed": 1, "status_sent": 0, "status_unknown": 0, "status_delivered": 2,
    "status_opened": 2, "status_clicked": 2, "status_failed": 2,
    "reached_sent": 7, "reached_delivered": 6, "reached_opened": 4, "reached_clicked": 2,
    "unsubscribed": 1,
}
# Opens by (weekday, hour): a on Monday 18h, b twice on Tuesday 8h (not its machine open), g read Monday 20h.
EXPECTED_OPENS = {(0, 18): 1, (1, 8): 2, (0, 20): 1}
