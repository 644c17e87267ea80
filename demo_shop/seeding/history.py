"""Weeks of demo delivery history: deliveries, receipts and inbox rows, deterministic per day.

Split from ``data`` (which seeds people and logins and calls this). Each day of history draws
from its own ``Random(f"{SEED}:{date}")`` and every delivery has the key
``demo:<date>:<user id>:<channel>:<n>``, so re-running a day inserts nothing.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from notifications.models import (
    Category,
    Delivery,
    DeliveryEvent,
    Notification,
    Preference,
    Suppression,
)
from notifications.querysets import normalise_address

from .data import (
    BATCH_SIZE,
    DAILY_RATE,
    DEMO_UNREAD,
    SEED,
    Recipient,
    _chunks,
    _weighted,
)

CHANNEL_WEIGHTS = {"email": 45, "inapp": 35, "sms": 8, "webpush": 7, "chat": 5}
CATEGORY_WEIGHTS = {
    "email": {"order-updates": 25, "account-security": 10, "newsletter": 30, "promotions": 25, "service-status": 10},
    "inapp": {"order-updates": 30, "account-security": 10, "newsletter": 15, "promotions": 30, "service-status": 15},
    "sms": {"order-updates": 40, "account-security": 40, "promotions": 20},
    "webpush": {"order-updates": 30, "promotions": 50, "service-status": 20},
    "chat": {"account-security": 40, "service-status": 60},
}
# Local hours 07..22, busiest mid-morning and early evening.
HOUR_WEIGHTS = [2, 5, 8, 9, 8, 6, 7, 6, 5, 5, 6, 8, 9, 8, 6, 3]
SUPPRESSED_REASON = {"unsubscribe": "suppressed:unsubscribed", "hard_bounce": "suppressed:hard_bounce",
                     "complaint": "suppressed:complaint", "manual": "suppressed:manual", "stop": "suppressed:sms_stop"}
# Inbox and push text in the recipient's language. Demo *data*, so not in the gettext catalogue.
MESSAGES = {
    "order-updates": [
        ({"en": "Your order {order} has shipped", "zh-hans": "您的订单 {order} 已发货"},
         {"en": "It is on its way and should arrive within 3 days.", "zh-hans": "包裹正在路上，预计 3 天内送达。"}),
        ({"en": "Payment received for order {order}", "zh-hans": "订单 {order} 付款成功"},
         {"en": "Thanks! We are preparing your items.", "zh-hans": "感谢您的购买，我们正在为您备货。"}),
    ],
    "account-security": [
        ({"en": "New sign-in to your account", "zh-hans": "您的账户有新的登录"},
         {"en": "A new device signed in. If this was not you, change your password.",
          "zh-hans": "有新设备登录了您的账户。如果不是您本人操作，请立即修改密码。"}),
        ({"en": "Your password was changed", "zh-hans": "您的密码已修改"},
         {"en": "Your password was changed just now.", "zh-hans": "您的账户密码刚刚被修改。"}),
    ],
    "newsletter": [
        ({"en": "This week at Signalbox Shop", "zh-hans": "本周精选"},
         {"en": "New arrivals, staff picks and a story from our workshop.", "zh-hans": "新品上架、店员推荐和工坊故事。"}),
    ],
    "promotions": [
        ({"en": "{pct}% off this weekend", "zh-hans": "周末限时优惠，立减 {pct}%"},
         {"en": "Use code WEEKEND at checkout.", "zh-hans": "结账时输入优惠码 WEEKEND 即可享受。"}),
        ({"en": "Your cart misses you", "zh-hans": "购物车里的商品还在等您"},
         {"en": "The items you saved are almost sold out.", "zh-hans": "您收藏的商品库存紧张，欲购从速。"}),
    ],
    "service-status": [
        ({"en": "Scheduled maintenance on {day}", "zh-hans": "{day} 系统维护通知"},
         {"en": "Signalbox will be read-only for 15 minutes from 02:00 UTC.", "zh-hans": "系统将于 UTC 02:00 起只读 15 分钟。"}),
        ({"en": "All systems operational", "zh-hans": "服务已全部恢复"},
         {"en": "The earlier delay in notifications is resolved.", "zh-hans": "此前的通知延迟问题已解决。"}),
    ],
}
FAILURES = {
    "email": ("smtp", "smtp:554 5.7.1 message rejected"),
    "sms": ("twilio", "twilio:30003 unreachable handset"),
    "webpush": ("webpush", "webpush:410 subscription expired"),
    "chat": ("chat", "chat:404 channel not found"),
}


@dataclass(frozen=True)
class _Medium:
    """How one channel's demo history goes: its receipts' source and the odds of each outcome."""

    source: str  # the source of its sent/delivered receipts
    needs: str = ""  # a recipient without this attribute gets ``instead`` (no phone: email)
    instead: str = ""
    failure_rate: float = 0.0  # refused by the provider before delivery (``FAILURES``)
    bounce: tuple[float, str, str] | None = None  # (rate, receipt kind, reason) after the send
    delivered_after: tuple[float, float] = (1, 90)  # seconds after the send
    seen: tuple[str, str, float, float] | None = None  # (kind, source, rate, mean seconds later)
    clicked: tuple[float, tuple[float, float] | float] | None = None  # (rate, (min, max) s after seen | mean s)
    message_id: str = ""  # the provider's message id, from a digest of the key
    in_inbox: bool = False  # delivered means a row in the recipient's inbox


MEDIA = {
    "email": _Medium(source="smtp", failure_rate=0.012, bounce=(0.032, "bounced", "hard_bounce:550 5.1.1 user unknown"),
                     seen=("opened", "pixel", 0.38, 10800), clicked=(0.11, (5, 600)),
                     message_id="<{digest}@signalbox.local>"),
    "sms": _Medium(source="twilio", needs="phone", instead="email", failure_rate=0.015,
                   bounce=(0.035, "failed", "twilio:30005 unknown destination"), clicked=(0.08, 1200),
                   message_id="SM{digest}"),
    "inapp": _Medium(source="inbox", delivered_after=(0.1, 2), seen=("read", "inbox", 0.65, 28800),
                     clicked=(0.15, (2, 120)), in_inbox=True),
    "webpush": _Medium(source="webpush", failure_rate=0.03, clicked=(0.08, 1200)),
    "chat": _Medium(source="chat", needs="chat_ids", instead="inapp", failure_rate=0.02),
}
STEP_FIELDS = {"sent": "sent_at", "delivered": "delivered_at", "opened": "opened_at", "read": "read_at",
               "clicked": "clicked_at", "bounced": "failed_at", "failed": "failed_at"}


@dataclass
class _Plan:
    recipient: Recipient
    key: str
    channel: str
    category: str
    created_at: datetime
    address: str
    steps: list[tuple[str, datetime, str]]  # kind, when, source
    reason: str = ""
    title: str = ""
    body: str = ""


def history_plan(
    *, recipients: Sequence[Recipient], days: int, now: datetime, categories: dict[str, Category]
) -> list[_Plan]:
    """Every delivery of the last ``days`` days (today included), drawn day by day."""
    suppressed = {(channel, address): reason for channel, address, reason
                  in Suppression.objects.values_list("channel", "address", "reason")}
    # Only categories recipients may opt out of honour an opt-out (order updates always go out).
    key_of = {category.pk: key for key, category in categories.items() if category.user_can_opt_out}
    opted_out = {(user_id, key_of[category_id], channel) for user_id, category_id, channel
                 in Preference.objects.filter(enabled=False).values_list("user_id", "category_id", "channel")
                 if category_id in key_of}
    today = now.astimezone(UTC).date()
    plans: list[_Plan] = []
    for offset in range(days):
        day = today - timedelta(days=offset)
        rng = random.Random(f"{SEED}:{day.isoformat()}")
        factor = 0.6 if day.weekday() >= 5 else 1.1
        for recipient in recipients:
            draws: list[tuple[str, str | None]] = []  # (channel, category or None to draw)
            if recipient.is_demo:  # the demo login: a busy inbox worth showing
                draws += [("inapp", None)] * 3 + ([("email", None)] if rng.random() < 0.5 else [])
            else:
                rate = DAILY_RATE * factor * recipient.activity / 3
                draws += [(_weighted(rng, CHANNEL_WEIGHTS), None) for _slot in range(3) if rng.random() < rate]
                if day.weekday() == 1 and rng.random() < 0.3:
                    draws.append(("email", "newsletter"))
            sequence: dict[str, int] = defaultdict(int)
            for channel, category in draws:
                plan = _delivery_plan(rng, recipient=recipient, day=day, now=now, channel=channel, category=category,
                                      suppressed=suppressed, opted_out=opted_out)
                plan.key = f"demo:{day.isoformat()}:{recipient.id}:{plan.channel}:{sequence[plan.channel]}"
                sequence[plan.channel] += 1
                if plan.created_at >= recipient.date_joined:
                    plans.append(plan)
    # The demo login keeps up with its inbox except for the newest messages, so the unread badge
    # and the "mark all read" button have something to show.
    demo_inbox = sorted((p for p in plans if p.recipient.is_demo and MEDIA[p.channel].in_inbox),
                        key=lambda p: p.created_at, reverse=True)
    for plan in demo_inbox[:DEMO_UNREAD]:
        plan.steps = [step for step in plan.steps if step[0] in ("sent", "delivered")]
    for plan in demo_inbox[DEMO_UNREAD:]:
        kinds = [kind for kind, _when, _source in plan.steps]
        if "delivered" in kinds and "read" not in kinds:
            read_at = plan.steps[kinds.index("delivered")][1] + timedelta(hours=2)
            if read_at <= now:
                plan.steps.append(("read", read_at, "inbox"))
    return plans


def _delivery_plan(rng: random.Random, *, recipient: Recipient, day: date, now: datetime, channel: str,
                   category: str | None, suppressed: dict, opted_out: set) -> _Plan:
    medium = MEDIA[channel]
    if medium.needs and not getattr(recipient, medium.needs):
        channel = medium.instead  # sms without a phone: email; chat without a chat id: the inbox
    category = category or _weighted(rng, CATEGORY_WEIGHTS[channel])
    if category == "order-updates" and not recipient.is_customer:
        category = "promotions"
    hour = rng.choices(range(7, 23), weights=HOUR_WEIGHTS)[0]
    local = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=ZoneInfo(recipient.timezone))
    created = local.astimezone(UTC)
    # Nothing is still in flight: the newest delivery is a quarter of an hour old.
    while created > now - timedelta(minutes=15):
        created -= timedelta(days=1)
    title, body = rng.choice(MESSAGES[category])
    lang = recipient.locale if recipient.locale in title else "en"
    values = {"order": f"SB-{rng.randrange(10**6):06d}", "pct": rng.choice([10, 15, 20, 30]),
              "day": (day + timedelta(days=3)).isoformat()}
    address = {"email": recipient.email, "sms": recipient.phone, "inapp": "",
               "webpush": f"https://push.example.net/wp/{recipient.id:x}",
               "chat": next(iter(f"{k}:{v}" for k, v in recipient.chat_ids.items()), "")}[channel]
    plan = _Plan(recipient=recipient, key="", channel=channel, category=category, created_at=created,
                 address=address, steps=[], title=title[lang].format(**values), body=body[lang].format(**values))
    reason = suppressed.get((channel, normalise_address(channel, address))) if address else None
    if reason:
        plan.reason = SUPPRESSED_REASON.get(reason, f"suppressed:{reason}")
    elif (recipient.id, category, channel) in opted_out:
        plan.reason = "suppressed:opted_out"
    else:
        plan.steps, plan.reason = _outcome(rng, channel=channel, created=created)
        plan.steps = [step for step in plan.steps if step[1] <= now]
    return plan


def _outcome(rng: random.Random, *, channel: str, created: datetime) -> tuple[list[tuple[str, datetime, str]], str]:
    """The receipts one delivery collects: mostly delivered, some engagement, ~2-3 % failures."""
    at = created + timedelta(seconds=rng.uniform(0.2, 40))
    roll = rng.random()
    medium = MEDIA[channel]
    if channel in FAILURES and roll < medium.failure_rate:
        source, reason = FAILURES[channel]
        return [("failed", at + timedelta(seconds=rng.uniform(30, 600)), source)], reason
    source = medium.source
    steps = [("sent", at, source)]
    if medium.bounce and roll < medium.bounce[0]:
        _rate, kind, reason = medium.bounce
        return [*steps, (kind, at + timedelta(seconds=rng.uniform(5, 600)), source)], reason
    at += timedelta(seconds=rng.uniform(*medium.delivered_after))
    steps.append(("delivered", at, source))
    engage = rng.random()
    if medium.seen:
        kind, seen_source, rate, mean = medium.seen
        if engage < rate:
            at += timedelta(seconds=rng.expovariate(1 / mean))
            steps.append((kind, at, seen_source))
            if medium.clicked and engage < medium.clicked[0]:
                steps.append(("clicked", at + timedelta(seconds=rng.uniform(*medium.clicked[1])), "click"))
    elif medium.clicked and engage < medium.clicked[0]:
        steps.append(("clicked", at + timedelta(seconds=rng.expovariate(1 / medium.clicked[1])), "click"))
    return steps, ""


def history_insert(*, plans: Sequence[_Plan], categories: dict[str, Category]) -> None:
    """Insert the planned deliveries that do not exist yet, then their receipts and inbox rows."""
    existing: set[str] = set()
    for chunk in _chunks([plan.key for plan in plans]):
        existing.update(Delivery.objects.filter(idempotency_key__in=chunk).values_list("idempotency_key", flat=True))
    new_plans = [plan for plan in plans if plan.key not in existing]
    deliveries = [_delivery(plan, categories=categories) for plan in new_plans]
    # Inside one transaction that took SQLite's write lock at BEGIN, nothing else can insert these
    # keys between the check above and this insert, so no conflict handling is needed and the ids
    # come back with the rows. (On PostgreSQL a concurrent second run fails on the unique key and
    # rolls back, rather than attaching a second set of receipts.)
    Delivery.objects.bulk_create(deliveries, batch_size=BATCH_SIZE)
    if any(delivery.pk is None for delivery in deliveries):  # a backend that cannot return ids
        ids = {}
        for chunk in _chunks([d.idempotency_key for d in deliveries]):
            ids.update(Delivery.objects.filter(idempotency_key__in=chunk).values_list("idempotency_key", "id"))
        for delivery in deliveries:
            delivery.pk = ids[delivery.idempotency_key]
    events = [DeliveryEvent(delivery_id=delivery.pk, kind=kind, source=source, occurred_at=when,
                            data={"reason": plan.reason} if kind in ("failed", "bounced") else {})
              for plan, delivery in zip(new_plans, deliveries, strict=True) for kind, when, source in plan.steps]
    DeliveryEvent.objects.bulk_create(events, batch_size=BATCH_SIZE)
    inbox = [Notification(recipient_id=delivery.recipient_id, category_id=delivery.category_id, title=plan.title,
                          body=plan.body, delivery_id=delivery.pk, created_at=delivery.delivered_at,
                          read_at=delivery.read_at)
             for plan, delivery in zip(new_plans, deliveries, strict=True)
             if MEDIA[delivery.channel].in_inbox and delivery.delivered_at]
    Notification.objects.bulk_create(inbox, batch_size=BATCH_SIZE)


def _delivery(plan: _Plan, *, categories: dict[str, Category]) -> Delivery:
    delivery = Delivery(
        idempotency_key=plan.key, recipient_id=plan.recipient.id, channel=plan.channel,
        category_id=categories[plan.category].pk,
        address=plan.address,
        content={"title": plan.title, "body": plan.body}, created_at=plan.created_at, status_reason=plan.reason,
        status=Delivery.Status.SUPPRESSED if plan.reason.startswith("suppressed:") else Delivery.Status.SENT,
        attempts=0 if plan.reason.startswith("suppressed:") else 1,
    )
    for kind, when, _source in plan.steps:
        setattr(delivery, STEP_FIELDS[kind], when)
        delivery.status = kind
    if delivery.status in (Delivery.Status.FAILED, Delivery.Status.BOUNCED):
        delivery.last_error = plan.reason
        delivery.attempts = 3 if delivery.sent_at is None else 1
    message_id = MEDIA[plan.channel].message_id
    if delivery.sent_at and message_id:
        digest = hashlib.sha256(plan.key.encode()).hexdigest()[:32]
        delivery.provider_message_id = message_id.format(digest=digest)
    return delivery
