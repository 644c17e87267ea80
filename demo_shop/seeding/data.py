"""Demo data for trying Signalbox: recipients, staff logins, a shop, and weeks of delivery history.

People, logins and the shop are seeded here; the delivery history in ``history``; audiences,
templates, campaigns and the demo trigger in ``campaigns``. Everything is deterministic and
idempotent, so ``seed_demo`` can run on every ``make run``:

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

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal

import phonenumbers
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.roles import roles_ensure
from notifications import services
from notifications.models import (
    Audience, Campaign, Category, Delivery, DeliveryEvent, Journey, JourneyEnrollment, MessageTemplate, Notification,
    Preference, RecipientProfile, SignalTrigger, Suppression,
)
from notifications.querysets import normalise_address

from ..models import Customer, Order

DEMO_PASSWORD = "signalbox-demo"
# Which of a recipient's addresses a suppression on each channel holds.
SUPPRESSED_ADDRESS = {"email": "email", "sms": "phone"}
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
    # key, name, kind, user_can_opt_out, name in Simplified Chinese
    ("order-updates", "Order updates", Category.Kind.TRANSACTIONAL, False, "订单动态"),
    ("account-security", "Account security", Category.Kind.TRANSACTIONAL, False, "账户安全"),
    ("newsletter", "Newsletter", Category.Kind.MARKETING, True, "新闻简报"),
    ("promotions", "Promotions", Category.Kind.MARKETING, True, "促销优惠"),
    ("service-status", "Service status", Category.Kind.SYSTEM, True, "服务状态"),
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
# How the demo login is reached on WeChat and in the app (``make run`` captures both into the
# Outbox): an openid for the Official Account, and one registered phone.
DEMO_WECHAT_OPENID = "oDemoAlexMorgan0000000000001"
DEMO_PUSH_TOKEN = "demo-fcm-token-alex-morgan-phone"


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
               (_("signal triggers"), SignalTrigger), (_("journeys"), Journey),
               (_("journey enrollments"), JourneyEnrollment)]
    with transaction.atomic():
        before = [model.objects.count() for _label, model in counted]
        roles_ensure()
        categories = {key: services.category_ensure(key=key, name=name, kind=kind, user_can_opt_out=opt_out,
                                                    name_zh_hans=name_zh)
                      for key, name, kind, opt_out, name_zh in CATEGORIES}
        # One hash for every seeded login: PBKDF2 takes ~0.4 s, so hashing per user is too slow.
        password = make_password(DEMO_PASSWORD)
        logins = _logins_ensure(password=password, now=now)
        specs = [DEMO_RECIPIENT, *recipient_specs(count=users)]
        recipients = _recipients_ensure(specs=specs, password=password, now=now, categories=categories)
        _demo_recipient_reach_ensure()
        from .history import history_insert, history_plan

        plans = history_plan(recipients=recipients, days=days, now=now, categories=categories)
        history_insert(plans=plans, categories=categories)
        from .campaigns import demo_campaigns_ensure

        marketer = User.objects.filter(username="marketer").first()
        demo_campaigns_ensure(categories=categories, author=marketer, now=now)
        from .journeys import demo_journeys_ensure

        demo_journeys_ensure(categories=categories, author=marketer, now=now)
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


def _demo_recipient_reach_ensure() -> None:
    """The demo login's WeChat openid and app installation (after its history is planned: that
    history predates them)."""
    from channels_adapters.models import PushDevice

    profile = RecipientProfile.objects.filter(user__username=DEMO_RECIPIENT.username).first()
    if profile is None:
        return
    if not (profile.chat_ids or {}).get("wechat"):
        profile.chat_ids = {**(profile.chat_ids or {}), "wechat": DEMO_WECHAT_OPENID}
        profile.save(update_fields=["chat_ids", "updated_at"])
    PushDevice.objects.get_or_create(token=DEMO_PUSH_TOKEN, defaults={
        "user_id": profile.user_id, "platform": PushDevice.Platform.FCM, "app_id": "net.signalbox.demo"})


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
        [Suppression(channel=channel, address=normalise_address(channel, getattr(s, SUPPRESSED_ADDRESS[channel])),
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


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _chunks(items: Sequence, size: int = 900) -> Iterator[Sequence]:
    """Slices small enough for SQLite's 999-parameter limit on ``IN (...)``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]

