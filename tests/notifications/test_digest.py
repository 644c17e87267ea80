"""Digest preferences: hourly/daily hold in-app and email messages and send them as one."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from freezegun import freeze_time

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.api import Decision, RecipientFacts, channel_decision, next_digest_at, notify
from notifications.models import Category, Delivery, Preference
from tests.factories import CategoryFactory, RecipientProfileFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("locmem_channels")]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- next_digest_at -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "tz", "digest", "expected"),
    [
        # Kolkata is UTC+5:30: 15:50 local -> 16:00 local.
        (utc(2026, 3, 10, 10, 20), "Asia/Kolkata", "hourly", utc(2026, 3, 10, 10, 30)),
        # Exactly on the hour: the next one, never now.
        (utc(2026, 3, 10, 10, 0), "UTC", "hourly", utc(2026, 3, 10, 11, 0)),
        # New York spring forward (2026-03-08 02:00 EST -> 03:00 EDT): 01:30 EST -> 03:00 EDT.
        (utc(2026, 3, 8, 6, 30), "America/New_York", "hourly", utc(2026, 3, 8, 7, 0)),
        # Fall back (2026-11-01 02:00 EDT -> 01:00 EST): first 01:30 EDT -> 01:00 EST.
        (utc(2026, 11, 1, 5, 30), "America/New_York", "hourly", utc(2026, 11, 1, 6, 0)),
        # Daily: before 08:00 local is today, after is tomorrow.
        (utc(2026, 3, 10, 6, 0), "Europe/Berlin", "daily", utc(2026, 3, 10, 7, 0)),
        (utc(2026, 3, 10, 7, 0), "Europe/Berlin", "daily", utc(2026, 3, 11, 7, 0)),
        # Daily across the spring-forward night: 08:00 EDT on the DST day is 12:00 UTC, not 13:00.
        (utc(2026, 3, 7, 15, 0), "America/New_York", "daily", utc(2026, 3, 8, 12, 0)),
        (utc(2026, 10, 31, 15, 0), "America/New_York", "daily", utc(2026, 11, 1, 13, 0)),
    ],
)
def test_next_digest_at(now, tz, digest, expected):
    assert next_digest_at(now=now, tz=tz, digest=digest) == expected


def test_next_digest_at_refuses_unknown_digest():
    with pytest.raises(ValueError):
        next_digest_at(now=utc(2026, 3, 10), tz="UTC", digest="weekly")


def facts(**overrides) -> RecipientFacts:
    values = {
        "user_id": 1,
        "addresses": {"email": "a@example.com", "inapp": "1", "sms": "+14155550000"},
        "opted_out": frozenset(),
        "suppressed": {},
        "timezone": "UTC",
        "digest": {"email": "hourly", "inapp": "daily", "sms": "hourly"},
    }
    return RecipientFacts(**(values | overrides))


def test_channel_decision_holds_digestible_channels_only():
    promos = Category(key="promos", name="Promos", kind="marketing")
    now = utc(2026, 3, 10, 10, 20)
    assert channel_decision(facts=facts(), channel="email", category=promos, now=now) == Decision(
        address="a@example.com", not_before=utc(2026, 3, 10, 11, 0), digest="hourly"
    )
    assert channel_decision(facts=facts(), channel="inapp", category=promos, now=now).not_before == utc(2026, 3, 11, 8)
    # SMS is never batched.
    assert channel_decision(facts=facts(), channel="sms", category=promos, now=now) == Decision(address="+14155550000")
    receipts = Category(key="receipts", name="Receipts", kind="transactional", user_can_opt_out=False)
    assert channel_decision(facts=facts(), channel="email", category=receipts, now=now) == Decision(
        address="a@example.com"
    )


def test_quiet_hours_at_digest_time_win_when_later():
    promos = Category(key="promos", name="Promos", kind="marketing")
    quiet = facts(quiet_hours=(time(22, 0), time(9, 0)), digest={"email": "daily"})
    decision = channel_decision(facts=quiet, channel="email", category=promos, now=utc(2026, 3, 10, 15, 0))
    # The 08:00 digest falls inside quiet hours: held until 09:00, still a digest.
    assert (decision.not_before, decision.digest) == (utc(2026, 3, 11, 9, 0), "daily")


# --- notify() + deliveries_send() -----------------------------------------------------------


@pytest.fixture
def promos():
    return CategoryFactory(key="promos", name="Promos", kind="marketing")


@pytest.fixture
def kolkata():
    return RecipientProfileFactory(user=UserFactory(username="asha"), timezone="Asia/Kolkata").user


def held() -> list[Delivery]:
    return list(Delivery.objects.order_by("id"))


def test_hourly_digest_batches_into_one_message(kolkata, promos):
    Preference.objects.create(user=kolkata, category=promos, channel="email", digest="hourly")
    with freeze_time("2026-03-10 10:20:00"):
        notify([kolkata], title="Spring sale", body="20% off", channels=["email"], category=promos)
    with freeze_time("2026-03-10 10:25:00"):
        notify([kolkata], title="New arrivals", body="Fresh <stock>", channels=["email"], category=promos)
    first, second = held()
    top_of_next_local_hour = utc(2026, 3, 10, 10, 30)  # 16:00 in Kolkata
    for delivery in (first, second):
        assert (delivery.status, delivery.status_reason) == ("planned", "digest:hourly")
        assert delivery.next_attempt_at == top_of_next_local_hour

    # Not due yet: nothing goes out.
    assert ledger.deliveries_send(delivery_ids=[first.pk], now=utc(2026, 3, 10, 10, 29)).claimed == 0
    assert LocmemChannel.outbox == []

    # The task of the first delivery also takes the second (which sits in another task).
    summary = ledger.deliveries_send(delivery_ids=[first.pk], now=top_of_next_local_hour)
    assert (summary.claimed, summary.sent) == (2, 2)
    assert len(LocmemChannel.outbox) == 1
    message = LocmemChannel.outbox[0].message
    assert message.delivery_id == first.pk
    assert message.subject == "2 updates: Promos"
    assert "Spring sale" in message.text and "New arrivals" in message.text
    assert "Spring sale" in message.html and "Fresh &lt;stock&gt;" in message.html
    assert "<ul>" in message.html
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == "sent"
    assert first.provider_message_id and first.provider_message_id == second.provider_message_id

    # The second delivery's own task finds nothing left to do.
    assert ledger.deliveries_send(delivery_ids=[second.pk], now=top_of_next_local_hour).claimed == 0
    assert len(LocmemChannel.outbox) == 1


def test_digest_failure_is_recorded_on_every_delivery(kolkata, promos, locmem_channels):
    locmem_channels.NOTIFICATION_CHANNELS["email"]["OPTIONS"] = {"fail_permanent": {kolkata.email}}
    Preference.objects.create(user=kolkata, category=promos, channel="email", digest="hourly")
    with freeze_time("2026-03-10 10:20:00"):
        notify([kolkata], title="One", channels=["email"], category=promos)
        notify([kolkata], title="Two", channels=["email"], category=promos)
    first, second = held()
    summary = ledger.deliveries_send(delivery_ids=[second.pk], now=utc(2026, 3, 10, 10, 30))
    assert (summary.claimed, summary.failed) == (2, 2)
    assert {(d.status, d.status_reason) for d in held()} == {("failed", "simulated_permanent")}


def test_inapp_digest_writes_one_inbox_entry(kolkata, promos):
    from notifications.models import Notification

    Preference.objects.create(user=kolkata, category=promos, channel="inapp", digest="hourly")
    with freeze_time("2026-03-10 10:20:00"):
        notify([kolkata], title="One", channels=["inapp"], category=promos)
        notify([kolkata], title="Two", channels=["inapp"], category=promos)
    ids = [d.pk for d in held()]
    assert ledger.deliveries_send(delivery_ids=ids, now=utc(2026, 3, 10, 10, 30)).sent == 2
    assert list(Notification.objects.values_list("title", flat=True)) == ["2 updates: Promos"]


def test_without_preference_messages_go_out_at_once(kolkata, promos):
    other = RecipientProfileFactory(user=UserFactory(username="ben")).user
    Preference.objects.create(user=kolkata, category=promos, channel="email", digest="hourly")
    notify([other], title="One", channels=["email"], category=promos)
    notify([other], title="Two", channels=["email"], category=promos)
    deliveries = held()
    assert {(d.status_reason, d.next_attempt_at) for d in deliveries} == {("", None)}
    assert ledger.deliveries_send(delivery_ids=[d.pk for d in deliveries]).sent == 2
    assert sorted(p.message.subject for p in LocmemChannel.outbox) == ["One", "Two"]


def test_transactional_categories_ignore_the_digest(kolkata):
    receipts = CategoryFactory(key="receipts", name="Receipts", kind="transactional", user_can_opt_out=False)
    Preference.objects.create(user=kolkata, category=receipts, channel="email", digest="daily")
    notify([kolkata], title="Receipt", channels=["email"], category=receipts)
    (delivery,) = held()
    assert (delivery.status, delivery.status_reason, delivery.next_attempt_at) == ("planned", "", None)
    assert ledger.deliveries_send(delivery_ids=[delivery.pk]).sent == 1


def test_daily_digest_waits_for_8am_local_next_day(promos):
    user = RecipientProfileFactory(user=UserFactory(username="nyc"), timezone="America/New_York").user
    Preference.objects.create(user=user, category=promos, channel="email", digest="daily")
    with freeze_time("2026-03-07 15:00:00"):  # 10:00 EST, the day before DST starts
        notify([user], title="Weekend deals", channels=["email"], category=promos)
    (delivery,) = held()
    assert (delivery.status, delivery.status_reason) == ("planned", "digest:daily")
    assert delivery.next_attempt_at == utc(2026, 3, 8, 12, 0)  # 08:00 EDT
    # A single held delivery goes out as itself, not as "1 update".
    assert ledger.deliveries_send(delivery_ids=[delivery.pk], now=utc(2026, 3, 8, 12, 0)).sent == 1
    assert LocmemChannel.outbox[0].message.subject == "Weekend deals"


def test_a_chinese_readers_digest_names_the_category_in_chinese(promos):
    reader = RecipientProfileFactory(user=UserFactory(username="huan"), timezone="Asia/Shanghai", locale="zh-hans").user
    Category.objects.filter(pk=promos.pk).update(name_zh_hans="促销")
    Preference.objects.create(user=reader, category=promos, channel="email", digest="hourly")
    from notifications.models import MessageTemplate

    template = MessageTemplate.objects.create(key="sale", name="Sale", category=promos,
                                              email_subject="Sale", email_body="20% off")
    template.variants.create(locale="zh-hans", email_subject="特卖", email_body="八折")
    with freeze_time("2026-03-10 10:20:00"):  # a template's message is in the reader's language
        notify([reader], template=template, channels=["email"], idempotency_key="one")
        notify([reader], template=template, channels=["email"], idempotency_key="two")
    first, _second = held()
    assert ledger.deliveries_send(delivery_ids=[first.pk], now=first.next_attempt_at).sent == 2
    assert LocmemChannel.outbox[0].message.subject == "促销：2 条更新"
