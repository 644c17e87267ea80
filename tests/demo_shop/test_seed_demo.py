"""``manage.py seed_demo``: realistic, idempotent demo data and logins that work."""

from __future__ import annotations

import re
from io import StringIO

import phonenumbers
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count
from freezegun import freeze_time

from accounts.roles import ROLE_PERMISSIONS
from demo_shop.models import Customer, Order
from demo_shop.seeding.data import DEMO_PASSWORD
from notifications.models import (
    Category,
    Delivery,
    DeliveryEvent,
    Notification,
    Preference,
    RecipientProfile,
    Suppression,
)

pytestmark = pytest.mark.django_db
User = get_user_model()
SMALL = ["--users", "60", "--days", "5"]
CJK = re.compile(r"[\u4e00-\u9fff]")
STEP_FIELDS = {"sent": "sent_at", "delivered": "delivered_at", "opened": "opened_at", "read": "read_at",
               "clicked": "clicked_at", "bounced": "failed_at", "failed": "failed_at"}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *SMALL, "--force", *args, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    models = [User, RecipientProfile, Customer, Order, Preference, Suppression, Delivery, DeliveryEvent, Notification]
    return {model.__name__: model.objects.count() for model in models}


@pytest.fixture
def seeded() -> str:
    return seed()


def printed_logins(output: str) -> dict[str, tuple[str, str]]:
    """username -> (password, role) from the logins table the command prints."""
    rows = re.findall(r"^\s+(admin|marketer|operator|manager|demo)\s+(\S+)\s+(.+?)\s*$", output, re.MULTILINE)
    return {username: (password, role) for username, password, role in rows}


def test_refuses_to_run_with_debug_off_unless_forced(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", *SMALL, stdout=StringIO())

    assert not User.objects.exists()


def test_runs_without_force_when_debug_is_on(settings):
    settings.DEBUG = True
    call_command("seed_demo", *SMALL, stdout=StringIO())

    assert User.objects.filter(username="demo").exists()


def test_creates_recipients_shop_and_history_at_the_requested_scale(seeded):
    counts = row_counts()
    # 60 recipients + the demo recipient + admin, marketer, operator, manager.
    assert counts["User"] == 65
    assert counts["RecipientProfile"] == 61
    assert 10 <= counts["Customer"] <= 35  # about a third
    assert counts["Order"] >= counts["Customer"]
    assert counts["Preference"] > 0
    # ~0.27 a recipient a day over 5 days, plus the demo recipient's busy inbox.
    history = Delivery.objects.filter(idempotency_key__startswith="demo:").count()
    assert 50 <= history <= 160  # the demo journeys' messages come on top (tests/demo_shop/test_seed_journeys.py)
    # Each history delivery has its "sent" receipt and, but for a failure, the provider's next one;
    # the journeys' sends on top have only reached "sent" (and which day it is decides how many).
    receipts = (Delivery.objects.filter(idempotency_key__startswith="demo:").exclude(status="suppressed")
                .annotate(n=Count("events")).values_list("status", "n"))
    assert receipts and all(n >= (1 if status == "failed" else 2) for status, n in receipts), sorted(set(receipts))
    assert 0 < counts["Notification"] <= Delivery.objects.filter(channel="inapp").count()
    assert set(Category.objects.values_list("key", flat=True)) >= {
        "order-updates", "account-security", "newsletter", "promotions", "service-status"
    }
    assert not Category.objects.get(key="account-security").user_can_opt_out
    assert Category.objects.get(key="promotions").kind == Category.Kind.MARKETING
    reasons = set(Suppression.objects.values_list("reason", flat=True))
    assert reasons <= {"unsubscribe", "hard_bounce", "complaint", "stop"}
    deliveries = counts["Delivery"]
    assert re.search(rf"deliveries\s+{deliveries}\s+{deliveries}", seeded)  # created, total
    assert "http://127.0.0.1:8000/admin/" in seeded
    assert "http://127.0.0.1:8000/notifications/" in seeded


def test_running_twice_creates_nothing_new():
    with freeze_time("2026-03-10 15:00:00", tick=True):
        seed()
        first = row_counts()
        keys = set(Delivery.objects.values_list("idempotency_key", flat=True))
        output = seed()

    assert row_counts() == first
    assert set(Delivery.objects.values_list("idempotency_key", flat=True)) == keys
    assert re.search(r"deliveries\s+0\s+\d+", output)


def test_a_later_run_adds_only_the_new_days():
    with freeze_time("2026-03-10 15:00:00"):
        seed()
    before = set(Delivery.objects.values_list("idempotency_key", flat=True))
    with freeze_time("2026-03-11 15:00:00"):
        seed()
    after = set(Delivery.objects.values_list("idempotency_key", flat=True))

    assert before < after
    assert {key.split(":")[1] for key in after - before} == {"2026-03-11"}
    assert not DeliveryEvent.objects.values("delivery", "kind").annotate(n=Count("id")).filter(n__gt=1).exists()


def test_recipients_look_like_real_people(seeded):
    profiles = RecipientProfile.objects.select_related("user")

    assert len({p.timezone for p in profiles}) >= 6
    assert {p.locale for p in profiles} == {"en", "zh-hans"}
    phones = [p.phone for p in profiles if p.phone]
    assert phones and len(phones) < len(profiles)  # some have no phone
    for phone in phones:
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone)), phone
        assert phonenumbers.format_number(phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.E164) == phone
    chinese = [p for p in profiles if CJK.search(p.user.get_full_name())]
    assert chinese and all(p.locale == "zh-hans" for p in chinese)
    assert all(p.phone.startswith("+86") for p in chinese if p.phone)
    emails = [p.user.email for p in profiles]
    assert len(set(emails)) == len(emails)
    assert all(e.rsplit("@", 1)[1] in {"example.com", "example.net", "example.org"} for e in emails)
    assert profiles.filter(quiet_hours_start__isnull=False).exists()


def test_staff_logins_are_in_their_groups_and_work_with_the_printed_password(client, seeded):
    logins = printed_logins(seeded)
    assert set(logins) == {"admin", "marketer", "operator", "manager", "demo"}
    assert {password for password, _role in logins.values()} == {DEMO_PASSWORD}

    assert User.objects.get(username="admin").is_superuser
    for username, group in [("marketer", "Marketers"), ("operator", "Operators"), ("manager", "Managers")]:
        user = User.objects.get(username=username)
        assert user.is_staff and not user.is_superuser
        assert list(user.groups.values_list("name", flat=True)) == [group]
        assert user.has_perm(ROLE_PERMISSIONS[group][0])
    assert not User.objects.get(username="demo").is_staff

    for username, (password, _role) in logins.items():
        assert client.login(username=username, password=password), username
        client.logout()
    assert client.login(username="r00001", password=DEMO_PASSWORD)


def test_rerun_resets_the_login_passwords(client, seeded):
    marketer = User.objects.get(username="marketer")
    marketer.set_password("changed-by-someone")
    marketer.save()

    seed()

    assert client.login(username="marketer", password=DEMO_PASSWORD)


def test_demo_recipient_has_unread_inbox_history(client, seeded):
    demo = User.objects.get(username="demo")
    inbox = Notification.objects.filter(recipient=demo)

    assert inbox.filter(read_at__isnull=True).count() >= 5
    assert inbox.filter(read_at__isnull=False).exists()
    client.login(username="demo", password=DEMO_PASSWORD)
    assert client.get("/notifications/").status_code == 200


def test_the_demo_login_can_be_reached_on_wechat_and_in_the_app(seeded):
    from channels_adapters.models import PushDevice
    from demo_shop.seeding.data import DEMO_PUSH_TOKEN, DEMO_WECHAT_OPENID

    demo = User.objects.select_related("recipient_profile").get(username="demo")
    assert demo.recipient_profile.chat_ids["wechat"] == DEMO_WECHAT_OPENID
    assert list(PushDevice.objects.filter(user=demo).values_list("token", flat=True)) == [DEMO_PUSH_TOKEN]
    seed()  # a second run keeps one device and the same openid
    assert PushDevice.objects.filter(user=demo).count() == 1


def test_delivery_history_is_consistent(seeded):
    # The history (the demo journeys' messages are the journeys' own: test_seed_journeys.py).
    deliveries = Delivery.objects.filter(idempotency_key__startswith="demo:").prefetch_related("events")
    statuses = {d.status for d in deliveries}

    # Nothing is left for a worker to send: the history is over.
    assert not statuses & {"planned", "deferred", "sending"}
    assert {"delivered", "suppressed"} <= statuses
    assert {d.channel for d in deliveries} >= {"email", "inapp"}
    for delivery in deliveries:
        assert re.fullmatch(rf"demo:\d{{4}}-\d\d-\d\d:{delivery.recipient_id}:{delivery.channel}:\d+",
                            delivery.idempotency_key)
        assert delivery.category_id is not None
        events = sorted(delivery.events.all(), key=lambda e: (e.occurred_at, e.pk))
        if delivery.status == "suppressed":
            assert delivery.status_reason.startswith("suppressed:") and not events
            continue
        assert events and events[-1].kind == delivery.status
        for event in events:
            assert getattr(delivery, STEP_FIELDS[event.kind]) == event.occurred_at
            assert event.occurred_at >= delivery.created_at
        if delivery.status in ("failed", "bounced"):
            assert delivery.status_reason and delivery.failed_at
        if delivery.channel == "email" and delivery.sent_at:
            assert {e.source for e in events} <= {"smtp", "pixel", "click"}


def test_inbox_rows_mirror_in_app_deliveries(seeded):
    history = Notification.objects.filter(delivery__idempotency_key__startswith="demo:")
    for notification in history.select_related("delivery", "recipient__recipient_profile"):
        delivery = notification.delivery
        assert delivery.channel == "inapp" and delivery.recipient_id == notification.recipient_id
        assert notification.read_at == delivery.read_at
        assert notification.created_at == delivery.delivered_at
        has_chinese = bool(CJK.search(notification.title))
        assert has_chinese == (notification.recipient.recipient_profile.locale == "zh-hans")
