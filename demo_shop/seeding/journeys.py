"""The demo journeys (issue 13, point 7), published, with demo people at different steps.

* **Welcome series** (``demo-welcome``): a user signs up → welcome email → wait 2 days → opened
  it? → a tip in the inbox, or a reminder email. Goal: a paid order after entering. People leave
  when they opt out of the newsletter.
* **Review request** (``demo-review``): an order is marked paid → wait 3 days → ask for a review
  (email, in-app if there is no email). Exit: the customer's order is cancelled (the demo shop's
  refund; ``Order`` has no refunded status).

Both enter through the signal entries ``journeys.entry`` supports, so "Mark as paid" on the demo
shop and a new sign-up enter people live. To make the counters non-zero on first login, a few
dozen demo recipients are entered in the past and advanced with ``journeys_tick(now=...)``:
some are still waiting, some took the tip or the reminder, a few paid an order a day after
signing up (converted), a few left (opted out); their journey messages are marked sent (and a
third of the first welcome emails opened) in the ledger, like the seeded history.

Idempotent: the journeys and templates are keyed; people are entered only when a journey is
created, so a second run neither adds anyone nor moves anyone on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model

from notifications.journeys.engine import journeys_tick
from notifications.journeys.services import journey_enter, journey_publish, journey_save
from notifications.models import Category, Delivery, DeliveryEvent, Journey, MessageTemplate, MessageTemplateVariant
from notifications.triggers.registry import MODEL_POST_SAVE, SELF, USER_SIGNED_UP

from ..models import Customer, Order

WELCOME_KEY = "demo-welcome"
REVIEW_KEY = "demo-review"

TEMPLATES = [
    {"key": "journey-welcome", "name": "Journey: welcome",
     "email_subject": "Welcome to the shop, {{ recipient.first_name }}",
     "email_body": "Hi {{ recipient.first_name }},\n\nwelcome! [Have a look around](https://shop.example.com/new).",
     "inapp_title": "Welcome to the shop", "inapp_body": "Have a look at what is new.",
     "zh-hans": {"email_subject": "欢迎光临，{{ recipient.first_name }}",
                 "email_body": "{{ recipient.first_name }} 您好：\n\n欢迎！[随便逛逛](https://shop.example.com/new)。",
                 "inapp_title": "欢迎光临", "inapp_body": "看看有什么新品。"}},
    {"key": "journey-tip", "name": "Journey: tip",
     "inapp_title": "Tip: save your favourites", "inapp_body": "Tap the heart on any product to find it again later.",
     "inapp_url": "https://shop.example.com/favourites",
     "zh-hans": {"inapp_title": "小贴士：收藏喜欢的商品", "inapp_body": "点击商品上的爱心，以后就能再找到它。"}},
    {"key": "journey-reminder", "name": "Journey: reminder",
     "email_subject": "{{ recipient.first_name }}, did you see our welcome gift?",
     "email_body": "Hi {{ recipient.first_name }},\n\nyour first order ships free. [Start shopping](https://shop.example.com).",
     "zh-hans": {"email_subject": "{{ recipient.first_name }}，您看到我们的见面礼了吗？",
                 "email_body": "{{ recipient.first_name }} 您好：\n\n首单包邮。[开始购物](https://shop.example.com)。"}},
    {"key": "journey-review", "name": "Journey: review request",
     "email_subject": "How was your order {{ instance.number }}?",
     "email_body": "Hi {{ recipient.first_name }},\n\nhow do you like order **{{ instance.number }}**? "
                   "[Write a review](https://shop.example.com/reviews).",
     "inapp_title": "How was order {{ instance.number }}?", "inapp_body": "Tell others what you think.",
     "inapp_url": "https://shop.example.com/reviews",
     "zh-hans": {"email_subject": "订单 {{ instance.number }} 还满意吗？",
                 "email_body": "{{ recipient.first_name }} 您好：\n\n订单 **{{ instance.number }}** 还满意吗？"
                               "[写评价](https://shop.example.com/reviews)。",
                 "inapp_title": "订单 {{ instance.number }} 还满意吗？", "inapp_body": "分享您的看法。"}},
]

PAID_GOAL = {"name": "first order paid", "model": "demo_shop.order", "recipient_path": "customer.user",
             "conditions": [{"field": "status", "op": "eq", "value": "paid"}], "since_field": "paid_at"}

JOURNEYS = [
    {
        "key": WELCOME_KEY, "name": "Welcome series", "category": "newsletter",
        "reentry": Journey.Reentry.ONCE,
        "entry": {"kind": "signal", "signal": USER_SIGNED_UP, "model": "", "events": ["fired"],
                  "conditions": [], "recipient_path": SELF},
        "graph": {
            "start": "welcome",
            "steps": [
                {"id": "welcome", "type": "send", "template": "journey-welcome", "channels": ["email"], "next": "pause"},
                {"id": "pause", "type": "wait", "days": 2, "next": "opened?"},
                {"id": "opened?", "type": "branch", "if": {"step": "welcome", "event": "opened", "within_hours": 48},
                 "yes": "tip", "no": "reminder"},
                {"id": "tip", "type": "send", "template": "journey-tip", "channels": ["inapp"]},
                {"id": "reminder", "type": "send", "template": "journey-reminder", "channels": ["email"]},
            ],
            "goals": [PAID_GOAL],
            "exits": [{"kind": "opted_out"}],
        },
    },
    {
        "key": REVIEW_KEY, "name": "Review request after a paid order", "category": "promotions",
        "reentry": Journey.Reentry.ALWAYS,
        "entry": {"kind": "signal", "signal": MODEL_POST_SAVE, "model": "demo_shop.order", "events": ["updated"],
                  "changed_field": "status", "changed_to": "paid", "conditions": [],
                  "recipient_path": "customer.user"},
        "graph": {
            "start": "after-3-days",
            "steps": [
                {"id": "after-3-days", "type": "wait", "days": 3, "next": "review"},
                {"id": "review", "type": "send", "template": "journey-review", "channels": ["email", "inapp"],
                 "fallback": True},
            ],
            "goals": [],
            "exits": [{"kind": "condition", "name": "refunded", "model": "demo_shop.order",
                       "recipient_path": "customer.user",
                       "conditions": [{"field": "status", "op": "eq", "value": "cancelled"}]}],
        },
    },
]


def demo_journeys_ensure(*, categories: dict[str, Category], author, now: datetime) -> list[Journey]:
    """Create the demo journeys that do not exist yet, publish them and put demo people on them."""
    for spec in TEMPLATES:
        _template_ensure(spec, category=categories["newsletter"])
    journeys = []
    for spec in JOURNEYS:
        journey = Journey.objects.filter(key=spec["key"]).first()
        if journey is None:
            journey = Journey(key=spec["key"], name=spec["name"], category=categories[spec["category"]],
                              reentry=spec["reentry"], entry=spec["entry"], graph=spec["graph"])
            journey_save(journey=journey, actor=None)
            journey.created_by = author
            journey_publish(journey=journey, actor=None, now=now - timedelta(days=10))
            _people_ensure(journey, now=now)
        journeys.append(journey)
    return journeys


def _people_ensure(journey: Journey, *, now: datetime) -> None:
    """Enter demo recipients in the past, in cohorts, so they stand at different steps now."""
    User = get_user_model()
    if journey.key == WELCOME_KEY:
        people = list(User.objects.filter(username__startswith="r0").order_by("pk").values_list("pk", flat=True)[:48])
        cohorts = [(people[0:24], now - timedelta(days=5)), (people[24:36], now - timedelta(days=1)),
                   (people[36:48], now - timedelta(hours=2))]
        for user_ids, at in cohorts:
            if not user_ids:
                continue
            journey_enter(journey=journey, user_ids=user_ids, now=at)
            journeys_tick(now=at)
            # The welcome emails went out; a third of the first cohort opened theirs.
            sent = Delivery.objects.filter(idempotency_key__startswith="journey:", recipient_id__in=user_ids,
                                           idempotency_key__contains=":welcome:", status=Delivery.Status.PLANNED)
            sent.filter(recipient_id__in=user_ids[::3]).update(
                status=Delivery.Status.OPENED, sent_at=at, delivered_at=at, opened_at=at + timedelta(hours=4))
            sent.update(status=Delivery.Status.SENT, sent_at=at)
            if at == cohorts[0][1]:
                _first_orders(user_ids, paid_at=at + timedelta(days=1))
        journeys_tick(now=now)
        _mark_sent(journey_key=journey.key, now=now)
        return
    orders = list(Order.objects.filter(status__in=[Order.Status.PAID, Order.Status.SHIPPED])
                  .select_related("customer").order_by("pk")[:30])
    entries = sorted(((now - timedelta(days=index % 6, hours=index % 5), order) for index, order in enumerate(orders)),
                     key=lambda pair: (pair[0], pair[1].pk))
    for at, order in entries:  # oldest first, each advanced at its own time: waits run from entry
        context = {"instance": {"number": order.number, "total": str(order.total), "currency": order.currency}}
        journey_enter(journey=journey, user_ids=[order.customer.user_id], context=context,
                      entry_key=f"demo_shop.order:{order.pk}", now=at)
        journeys_tick(now=at)
    journeys_tick(now=now)
    _mark_sent(journey_key=journey.key, now=now)


def _first_orders(user_ids: list[int], *, paid_at: datetime) -> None:
    """A few people of the first cohort paid an order a day after signing up: the welcome goal.

    Inserted without ``save()`` signals, so the "order paid" trigger and journey stay quiet; the
    next tick sees the goal (``since_field``) and counts them converted.
    """
    customers = list(Customer.objects.filter(user_id__in=user_ids).order_by("user_id").values_list("pk", "user_id")[:3])
    Order.objects.bulk_create(
        [Order(customer_id=pk, number=f"WELCOME-{user_id}", status=Order.Status.PAID, total=Decimal("24.90"),
               created_at=paid_at - timedelta(minutes=5), paid_at=paid_at) for pk, user_id in customers],
        ignore_conflicts=True,
    )


def _mark_sent(*, journey_key: str, now: datetime) -> None:
    """Planned demo journey messages went out (as the seeded history's did, nothing real is sent),
    with the receipts the ledger would hold: "sent" from SMTP, "opened" from the pixel."""
    mine = Delivery.objects.filter(idempotency_key__startswith="journey:",
                                   recipient__journey_enrollments__journey__key=journey_key)
    mine.filter(status=Delivery.Status.PLANNED).update(status=Delivery.Status.SENT, sent_at=now)
    rows = mine.filter(events__isnull=True, sent_at__isnull=False).distinct().values_list("pk", "sent_at", "opened_at")
    events = []
    for pk, sent_at, opened_at in rows:
        events.append(DeliveryEvent(delivery_id=pk, kind=DeliveryEvent.Kind.SENT, source="smtp", occurred_at=sent_at))
        if opened_at:
            events.append(DeliveryEvent(delivery_id=pk, kind=DeliveryEvent.Kind.OPENED, source="pixel",
                                        occurred_at=opened_at))
    DeliveryEvent.objects.bulk_create(events)


def _template_ensure(spec: dict, *, category: Category) -> MessageTemplate:
    spec = dict(spec)
    variant = spec.pop("zh-hans", None)
    key = spec.pop("key")
    template, created = MessageTemplate.objects.get_or_create(key=key, defaults={**spec, "category": category})
    if created and variant:
        MessageTemplateVariant.objects.create(template=template, locale="zh-hans", **variant)
    return template
