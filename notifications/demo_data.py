"""Demo data for trying Signalbox: recipients, staff logins, a shop, and weeks of delivery history.

Everything is deterministic and idempotent, so ``seed_demo`` can run on every ``make run``:

- Recipients come from ``random.Random(SEED)`` and seeded Fakers, in index order (``r00001``...),
  so recipient *i* is the same whatever ``--users`` says; rows that exist are left alone.
- Each day of history draws from its own ``Random(f"{SEED}:{date}")`` and every delivery has the
  key ``demo:<date>:<user id>:<channel>:<n>``. Re-running the same day inserts nothing; running
  a week later adds only the new days. Receipts and inbox rows are derived from the deliveries
  inserted *by this run*, so they are never created twice either.
- No delivery is left in a state a worker would pick up (planned, retrying, sending): the
  history is over, and demo addresses must never be sent to for real. Emails use the reserved
  ``example.*`` domains; US phones are in the fictional 555-01xx range.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import phonenumbers
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dashboard.roles import roles_ensure
from demo_shop.models import Customer, Order

from . import services
from .models import (
    Audience, Campaign, Category, Channel, Delivery, DeliveryEvent, MessageTemplate, Notification, Preference,
    RecipientProfile, SignalTrigger, Suppression,
)
from .querysets import normalise_address

DEMO_PASSWORD = "signalbox-demo"
SEED = 2026
# Mean deliveries per recipient per day (~18 over 60 days); weekends are quieter, Tuesdays
# carry the newsletter.
DAILY_RATE = 0.27
BATCH_SIZE = 500
# Unread messages the demo login is left with (with --days 3 or more).
DEMO_UNREAD = 8
# Reserved for documentation (RFC 2606): mail to them can never reach anyone.
DOMAINS = ("example.com", "example.net", "example.org")

CATEGORIES = [
    # key, name, kind, user_can_opt_out
    ("order-updates", "Order updates", Category.Kind.TRANSACTIONAL, False),
    ("account-security", "Account security", Category.Kind.TRANSACTIONAL, False),
    ("newsletter", "Newsletter", Category.Kind.MARKETING, True),
    ("promotions", "Promotions", Category.Kind.MARKETING, True),
    ("service-status", "Service status", Category.Kind.SYSTEM, True),
]
TIMEZONES = {
    "en": {"America/New_York": 30, "America/Chicago": 10, "America/Denver": 4, "America/Los_Angeles": 20,
           "Europe/London": 15, "Europe/Berlin": 10, "Australia/Sydney": 8, "Asia/Tokyo": 3},
    "zh-hans": {"Asia/Shanghai": 75, "Asia/Singapore": 6, "Asia/Tokyo": 4, "America/Los_Angeles": 7,
                "Europe/London": 4, "Australia/Sydney": 4},
}
US_AREA_CODES = {"America/New_York": ["212", "646", "718", "917"], "America/Chicago": ["312", "773"],
                 "America/Denver": ["303", "720"], "America/Los_Angeles": ["213", "310", "415", "650"]}
CN_MOBILE_PREFIXES = [
    *(f"13{d}" for d in "0123456789"), *(f"15{d}" for d in "01235679"), *(f"18{d}" for d in "0125689")
]
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
STEP_FIELDS = {"sent": "sent_at", "delivered": "delivered_at", "opened": "opened_at", "read": "read_at",
               "clicked": "clicked_at", "bounced": "failed_at", "failed": "failed_at"}


@dataclass(frozen=True)
class RecipientSpec:
    """One generated recipient, before it has a database id."""

    index: int
    username: str
    first_name: str
    last_name: str
    email: str
    locale: str
    timezone: str
    phone: str
    joined_days_ago: float
    activity: float = 1.0
    chat_ids: dict = field(default_factory=dict)
    quiet_hours: tuple[time, time] | None = None
    frequency_cap: int | None = None
    customer: tuple[str, bool] | None = None  # (company, vip)
    orders: tuple[tuple[str, str, Decimal, float], ...] = ()  # number, status, total, days ago
    preferences: tuple[tuple[str, str, bool, str], ...] = ()  # category, channel, enabled, digest
    suppressions: tuple[tuple[str, str], ...] = ()  # channel, reason


@dataclass(frozen=True)
class Recipient:
    """A seeded recipient as stored: what delivery history needs to know about them."""

    id: int
    email: str
    phone: str
    timezone: str
    locale: str
    chat_ids: dict
    date_joined: datetime
    is_customer: bool
    activity: float
    is_demo: bool = False


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


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: Promise | str


@dataclass(frozen=True)
class DemoSeedResult:
    rows: list[tuple[Promise | str, int, int]]  # what, created by this run, total
    logins: list[DemoLogin]


LOGINS = [
    # username, first, last, role group (None: superuser), role label
    ("admin", "Ada", "Admin", None, _("superuser")),
    ("marketer", "Maya", "Chen", "Marketers", _("marketer")),
    ("operator", "Oscar", "Wright", "Operators", _("operator")),
    ("manager", "Hannah", "Schmidt", "Managers", _("manager")),
]
DEMO_RECIPIENT = RecipientSpec(
    index=0, username="demo", first_name="Alex", last_name="Morgan", email="demo@example.com", locale="en",
    timezone="America/New_York", phone="+12125550142", joined_days_ago=400, activity=1.0,
    customer=("", True),
    orders=(("SB-DEMO-1", "shipped", Decimal("86.40"), 12), ("SB-DEMO-2", "paid", Decimal("19.99"), 2)),
)


def demo_data_seed(*, users: int = 2000, days: int = 60, now: datetime | None = None) -> DemoSeedResult:
    """Create (or top up) the demo: staff logins, ``users`` recipients and ``days`` of history.

    One transaction, bulk inserts only. Login passwords are reset to ``DEMO_PASSWORD`` on every
    run so the printed logins always work; callers must not run this against production.
    """
    if users < 0 or days < 0:
        raise ValueError("users and days must not be negative.")
    now = now or timezone.now()
    User = get_user_model()
    counted = [(_("users"), User), (_("recipient profiles"), RecipientProfile), (_("customers"), Customer),
               (_("orders"), Order), (_("preferences"), Preference), (_("suppressions"), Suppression),
               (_("deliveries"), Delivery), (_("receipts"), DeliveryEvent), (_("inbox notifications"), Notification),
               (_("audiences"), Audience), (_("message templates"), MessageTemplate), (_("campaigns"), Campaign),
               (_("signal triggers"), SignalTrigger)]
    with transaction.atomic():
        before = [model.objects.count() for _label, model in counted]
        roles_ensure()
        categories = {key: services.category_ensure(key=key, name=name, kind=kind, user_can_opt_out=opt_out)
                      for key, name, kind, opt_out in CATEGORIES}
        # One hash for every seeded login: PBKDF2 takes ~0.4 s, so hashing per user is too slow.
        password = make_password(DEMO_PASSWORD)
        logins = _logins_ensure(password=password, now=now)
        specs = [DEMO_RECIPIENT, *recipient_specs(count=users)]
        recipients = _recipients_ensure(specs=specs, password=password, now=now, categories=categories)
        plans = _history_plan(recipients=recipients, days=days, now=now, categories=categories)
        _history_insert(plans=plans, categories=categories)
        from .demo_campaigns import demo_campaigns_ensure

        marketer = User.objects.filter(username="marketer").first()
        demo_campaigns_ensure(categories=categories, author=marketer, now=now)
        from dashboard.analytics import analytics_rollup_refresh

        analytics_rollup_refresh(since=None)  # the dashboard's figures cover the history at once
        after = [model.objects.count() for _label, model in counted]
    rows = [(label, a - b, a) for (label, _model), b, a in zip(counted, before, after, strict=True)]
    return DemoSeedResult(rows=rows, logins=logins)


def recipient_specs(*, count: int) -> list[RecipientSpec]:
    """``count`` recipients, ~60 % English and ~40 % Chinese; recipient *i* never depends on ``count``."""
    try:
        from faker import Faker
    except ImportError as exc:  # pinned in requirements-dev.txt
        raise ImproperlyConfigured("The demo data needs Faker: pip install -r requirements-dev.txt") from exc

    rng = random.Random(SEED)
    fakers = {"en": Faker("en_US"), "zh-hans": Faker("zh_CN")}
    for faker in fakers.values():
        faker.seed_instance(SEED)
    return [_recipient_spec(index, rng, fakers) for index in range(1, count + 1)]


def _recipient_spec(index: int, rng: random.Random, fakers: dict) -> RecipientSpec:
    locale = "zh-hans" if rng.random() < 0.4 else "en"
    fake = fakers[locale]
    first, last = fake.first_name(), fake.last_name()
    tz = _weighted(rng, TIMEZONES[locale])
    local = re.sub(r"[^a-z0-9.]", "", f"{first}.{last}".lower()) if locale == "en" else fake.user_name()
    email = f"{local}{index}@{rng.choice(DOMAINS)}"
    phone = "" if rng.random() < 0.1 else _phone(rng, locale=locale, tz=tz)
    joined = rng.uniform(1, 365)
    chat_ids = {}
    if rng.random() < 0.08:
        chat_ids = (
            {"slack": f"U{rng.getrandbits(40):010X}"} if locale == "en" else {"wecom": f"wm{rng.getrandbits(48):012x}"}
        )
    quiet = rng.choice([(time(22), time(7)), (time(23), time(8))]) if rng.random() < 0.06 else None
    cap = 3 if rng.random() < 0.05 else None
    customer, orders = None, ()
    if rng.random() < 1 / 3:
        customer = (fake.company() if rng.random() < 0.3 else "", rng.random() < 0.1)
        orders = tuple(
            (f"SB-{index:06d}-{n}", _weighted(rng, {"pending": 2, "paid": 3, "shipped": 5}),
             Decimal(str(round(rng.uniform(12, 480) * (7 if locale == "zh-hans" else 1), 2))),
             rng.uniform(0, min(joined, 120)))
            for n in range(1, rng.randint(1, 4) + 1)
        )
    preferences = []
    if rng.random() < 0.08:
        preferences.append(("newsletter", "email", False, "immediate"))
    if rng.random() < 0.06:
        preferences.append(("promotions", "sms", False, "immediate"))
    if rng.random() < 0.05:
        preferences.append(("promotions", "inapp", False, "immediate"))
    if rng.random() < 0.05:
        preferences.append(("service-status", "email", True, "daily"))
    suppressions = []
    roll = rng.random()
    if roll < 0.019:
        suppressions.append(("email", "unsubscribe" if roll < 0.01 else "hard_bounce" if roll < 0.016 else "complaint"))
    if phone and rng.random() < 0.005:
        suppressions.append(("sms", "stop"))
    return RecipientSpec(
        index=index, username=f"r{index:05d}", first_name=first, last_name=last, email=email, locale=locale,
        timezone=tz, phone=phone, joined_days_ago=joined, activity=rng.uniform(0.5, 1.5), chat_ids=chat_ids,
        quiet_hours=quiet, frequency_cap=cap, customer=customer, orders=orders,
        preferences=tuple(preferences), suppressions=tuple(suppressions),
    )


def _phone(rng: random.Random, *, locale: str, tz: str) -> str:
    """A valid E.164 number: US fictional 555-01xx for English users, a Chinese mobile otherwise."""
    for _attempt in range(20):
        if locale == "en":
            area = rng.choice(US_AREA_CODES.get(tz) or [code for codes in US_AREA_CODES.values() for code in codes])
            number = f"+1{area}5550{rng.randint(100, 199)}"
        else:
            number = f"+86{rng.choice(CN_MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number
    raise AssertionError(f"no valid {locale} phone number generated")  # the prefixes above are wrong


def _logins_ensure(*, password: str, now: datetime) -> list[DemoLogin]:
    User = get_user_model()
    groups = {group.name: group for group in Group.objects.filter(name__in=[login[3] for login in LOGINS if login[3]])}
    logins = []
    for username, first, last, group_name, role in LOGINS:
        user, _created = User.objects.update_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com", "password": password,
                      "is_active": True, "is_staff": True, "is_superuser": group_name is None},
            create_defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com",
                             "password": password, "is_active": True, "is_staff": True,
                             "is_superuser": group_name is None, "date_joined": now - timedelta(days=400)},
        )
        user.groups.set([groups[group_name]] if group_name else [])
        logins.append(DemoLogin(username=username, role=role))
    User.objects.filter(username=DEMO_RECIPIENT.username).update(password=password, is_active=True)
    logins.append(DemoLogin(username=DEMO_RECIPIENT.username, role=_("recipient (inbox)")))
    return logins


def _recipients_ensure(
    *, specs: Sequence[RecipientSpec], password: str, now: datetime, categories: dict[str, Category]
) -> list[Recipient]:
    """Insert the recipients that do not exist yet, with their profile, shop rows and choices."""
    User = get_user_model()
    User.objects.bulk_create(
        [User(username=s.username, first_name=s.first_name, last_name=s.last_name, email=s.email, password=password,
              date_joined=now - timedelta(days=s.joined_days_ago)) for s in specs],
        batch_size=BATCH_SIZE, ignore_conflicts=True,
    )
    ids = {}
    for chunk in _chunks([s.username for s in specs]):
        ids.update(User.objects.filter(username__in=chunk).values_list("username", "id"))
    RecipientProfile.objects.bulk_create(
        [RecipientProfile(user_id=ids[s.username], phone=s.phone, timezone=s.timezone, locale=s.locale,
                          chat_ids=s.chat_ids, quiet_hours_start=s.quiet_hours[0] if s.quiet_hours else None,
                          quiet_hours_end=s.quiet_hours[1] if s.quiet_hours else None,
                          frequency_cap_per_day=s.frequency_cap) for s in specs],
        batch_size=BATCH_SIZE, ignore_conflicts=True,
    )
    Customer.objects.bulk_create(
        [Customer(user_id=ids[s.username], company=s.customer[0], vip=s.customer[1],
                  created_at=now - timedelta(days=s.joined_days_ago * 0.9)) for s in specs if s.customer],
        batch_size=BATCH_SIZE, ignore_conflicts=True,
    )
    rows = {}
    for chunk in _chunks(list(ids.values())):
        rows.update((row[0], row) for row in User.objects.filter(pk__in=chunk).values_list(
            "id", "email", "recipient_profile__phone", "recipient_profile__timezone", "recipient_profile__locale",
            "recipient_profile__chat_ids", "date_joined", "customer__id"))
    customer_ids = {user_id: row[7] for user_id, row in rows.items()}
    orders = []
    for s in specs:
        for number, status, total, days_ago in s.orders:
            created = now - timedelta(days=days_ago)
            orders.append(Order(customer_id=customer_ids[ids[s.username]], number=number, status=status, total=total,
                                currency="CNY" if s.locale == "zh-hans" else "USD", created_at=created,
                                paid_at=created + timedelta(minutes=3) if status != "pending" else None))
    Order.objects.bulk_create(orders, batch_size=BATCH_SIZE, ignore_conflicts=True)
    Preference.objects.bulk_create(
        [Preference(user_id=ids[s.username], category=categories[cat], channel=channel, enabled=enabled, digest=digest)
         for s in specs for cat, channel, enabled, digest in s.preferences],
        batch_size=BATCH_SIZE, ignore_conflicts=True,
    )
    Suppression.objects.bulk_create(
        [Suppression(channel=channel, address=normalise_address(channel, s.email if channel == "email" else s.phone),
                     reason=reason, user_id=ids[s.username], note="demo")
         for s in specs for channel, reason in s.suppressions],
        batch_size=BATCH_SIZE, ignore_conflicts=True,
    )
    recipients = []
    for s in specs:
        _id, email, phone, tz, locale, chat_ids, joined, customer_id = rows[ids[s.username]]
        recipients.append(Recipient(id=_id, email=email, phone=phone or "", timezone=tz or "UTC", locale=locale or "en",
                                    chat_ids=chat_ids or {}, date_joined=joined, is_customer=customer_id is not None,
                                    activity=s.activity, is_demo=s is DEMO_RECIPIENT))
    return recipients


def _history_plan(
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
    demo_inbox = sorted((p for p in plans if p.recipient.is_demo and p.channel == "inapp"),
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
    if channel == "sms" and not recipient.phone:
        channel = "email"
    if channel == "chat" and not recipient.chat_ids:
        channel = "inapp"
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
    if channel in FAILURES and roll < {"email": 0.012, "sms": 0.015, "webpush": 0.03, "chat": 0.02}[channel]:
        source, reason = FAILURES[channel]
        return [("failed", at + timedelta(seconds=rng.uniform(30, 600)), source)], reason
    source = {"email": "smtp", "sms": "twilio", "inapp": "inbox", "webpush": "webpush", "chat": "chat"}[channel]
    steps = [("sent", at, source)]
    if (channel == "email" and roll < 0.032) or (channel == "sms" and roll < 0.035):
        kind = "bounced" if channel == "email" else "failed"
        reason = "hard_bounce:550 5.1.1 user unknown" if channel == "email" else "twilio:30005 unknown destination"
        return [*steps, (kind, at + timedelta(seconds=rng.uniform(5, 600)), source)], reason
    at += timedelta(seconds=rng.uniform(0.1, 2) if channel == "inapp" else rng.uniform(1, 90))
    steps.append(("delivered", at, source))
    engage = rng.random()
    if channel == "email" and engage < 0.38:
        at += timedelta(seconds=rng.expovariate(1 / 10800))
        steps.append(("opened", at, "pixel"))
        if engage < 0.11:
            steps.append(("clicked", at + timedelta(seconds=rng.uniform(5, 600)), "click"))
    elif channel == "inapp" and engage < 0.65:
        at += timedelta(seconds=rng.expovariate(1 / 28800))
        steps.append(("read", at, "inbox"))
        if engage < 0.15:
            steps.append(("clicked", at + timedelta(seconds=rng.uniform(2, 120)), "click"))
    elif channel in ("sms", "webpush") and engage < 0.08:
        steps.append(("clicked", at + timedelta(seconds=rng.expovariate(1 / 1200)), "click"))
    return steps, ""


def _history_insert(*, plans: Sequence[_Plan], categories: dict[str, Category]) -> None:
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
             if delivery.channel == Channel.INAPP and delivery.delivered_at]
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
    if delivery.sent_at and plan.channel in ("email", "sms"):
        digest = hashlib.sha256(plan.key.encode()).hexdigest()[:32]
        delivery.provider_message_id = f"<{digest}@signalbox.local>" if plan.channel == "email" else f"SM{digest}"
    return delivery


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _chunks(items: Sequence, size: int = 900) -> Iterator[Sequence]:
    """Slices small enough for SQLite's 999-parameter limit on ``IN (...)``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]

