"""Which channels a recipient gets, and when: pure decisions, then through notify()."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.api import Decision, RecipientFacts, channel_decision, notify, quiet_hours_end
from notifications.models import Category, Delivery
from tests.factories import RecipientProfileFactory, UserFactory

NIGHT = (time(22, 0), time(7, 0))


def facts(**overrides) -> RecipientFacts:
    base = {"user_id": 1, "addresses": {"email": "a@example.com", "sms": "+14155550100", "inapp": "1"},
            "opted_out": frozenset(), "suppressed": {}}
    return RecipientFacts(**{**base, **overrides})


MARKETING = Category(key="promos", name="Promos", kind="marketing", user_can_opt_out=True)
TRANSACTIONAL = Category(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)
NOON_UTC = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_quiet_hours_end_is_local_morning_in_the_recipients_zone():
    # 23:30 in Shanghai (15:30 UTC) -> 07:00 Shanghai next day = 23:00 UTC.
    now = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    assert quiet_hours_end(now=now, tz="Asia/Shanghai", start=NIGHT[0], end=NIGHT[1]) == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    # 05:00 in Shanghai is inside too; same morning.
    early = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # 05:00 on the 24th in Shanghai
    assert quiet_hours_end(now=early, tz="Asia/Shanghai", start=NIGHT[0], end=NIGHT[1]) == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    assert quiet_hours_end(now=NOON_UTC, tz="Europe/London", start=NIGHT[0], end=NIGHT[1]) is None


def test_quiet_hours_end_across_a_dst_change():
    # New York falls back on 2026-11-01 at 02:00. At 23:00 EDT on Oct 31, quiet hours end at
    # 07:00 EST on Nov 1 = 12:00 UTC (not 11:00).
    now = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    assert quiet_hours_end(now=now, tz="America/New_York", start=NIGHT[0], end=NIGHT[1]) == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
       st.sampled_from(["Asia/Shanghai", "America/New_York", "Europe/Berlin", "Australia/Sydney"]))
def test_quiet_hours_end_is_always_after_now_and_within_a_day(now, tz):
    end = quiet_hours_end(now=now, tz=tz, start=NIGHT[0], end=NIGHT[1])
    if end is not None:
        assert now < end <= now + timedelta(hours=10)


def test_decisions():
    assert channel_decision(facts=facts(), channel="email", category=MARKETING, now=NOON_UTC) == Decision(address="a@example.com")
    assert channel_decision(facts=facts(addresses={}), channel="sms", category=MARKETING, now=NOON_UTC).reason == "suppressed:no_address"
    opted = facts(opted_out=frozenset({"email"}))
    assert channel_decision(facts=opted, channel="email", category=MARKETING, now=NOON_UTC).reason == "suppressed:opted_out"
    assert channel_decision(facts=opted, channel="email", category=TRANSACTIONAL, now=NOON_UTC).address
    suppressed = facts(suppressed={"email": "hard_bounce"})
    assert channel_decision(facts=suppressed, channel="email", category=TRANSACTIONAL, now=NOON_UTC).reason == "suppressed:hard_bounce"
    capped = facts(daily_cap=2, marketing_sent_today={"email": 2})
    assert channel_decision(facts=capped, channel="email", category=MARKETING, now=NOON_UTC).reason == "suppressed:frequency_cap"
    assert channel_decision(facts=capped, channel="email", category=TRANSACTIONAL, now=NOON_UTC).address
    asleep = facts(timezone="Asia/Shanghai", quiet_hours=NIGHT)
    night = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    held = channel_decision(facts=asleep, channel="sms", category=MARKETING, now=night)
    assert held.address and held.not_before == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    assert channel_decision(facts=asleep, channel="inapp", category=MARKETING, now=night).not_before is None
    assert channel_decision(facts=asleep, channel="sms", category=TRANSACTIONAL, now=night).not_before is None


@pytest.mark.django_db
def test_notify_holds_quiet_hours_and_enforces_the_daily_cap(settings, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    settings.NOTIFICATION_CHANNELS = {"email": {"BACKEND": "channels_adapters.locmem.LocmemChannel", "OPTIONS": {}}}
    promos = Category.objects.create(key="promos", name="Promos", kind="marketing")
    # Quiet from an hour ago to two hours from now, whatever the clock says when the test runs.
    now = datetime.now(UTC)
    always_quiet = RecipientProfileFactory(
        user=UserFactory(username="owl"), timezone="UTC",
        quiet_hours_start=(now - timedelta(hours=1)).time(), quiet_hours_end=(now + timedelta(hours=2)).time(),
    ).user
    capped = RecipientProfileFactory(user=UserFactory(username="busy"), frequency_cap_per_day=1).user
    with django_capture_on_commit_callbacks(execute=True):
        notify([always_quiet, capped], title="Sale 1", channels=["email"], category=promos)
        notify([capped], title="Sale 2", channels=["email"], category=promos)

    held = Delivery.objects.get(recipient=always_quiet)
    assert held.status == "planned" and held.status_reason == "deferred:quiet_hours"
    assert held.next_attempt_at is not None
    assert DBTaskResult.objects.filter(run_after__isnull=False, args_kwargs__kwargs__delivery_ids=[held.pk]).exists()
    first, second = Delivery.objects.filter(recipient=capped).order_by("id")
    assert first.status == "planned" and second.status_reason == "suppressed:frequency_cap"


@pytest.mark.django_db
def test_notify_finds_push_and_chat_addresses(settings):
    from channels_adapters.models import WebPushSubscription

    user = RecipientProfileFactory(user=UserFactory(username="ping"), chat_ids={"apprise": "tgram://bot/123"}).user
    WebPushSubscription.objects.create(user=user, endpoint="https://push.example.net/old", p256dh="k", auth="a")
    WebPushSubscription.objects.create(user=user, endpoint="https://push.example.net/new", p256dh="k", auth="a")
    nobody = RecipientProfileFactory(user=UserFactory(username="quiet")).user
    system = Category.objects.create(key="status", name="Status", kind="system")
    notify([user, nobody], title="Up again", channels=["webpush", "chat"], category=system)
    got = {(d.recipient_id, d.channel): (d.address, d.status_reason) for d in Delivery.objects.all()}
    assert got[(user.pk, "webpush")] == ("https://push.example.net/new", "")
    assert got[(user.pk, "chat")] == ("tgram://bot/123", "")
    assert got[(nobody.pk, "webpush")] == ("", "suppressed:no_address")
    assert got[(nobody.pk, "chat")] == ("", "suppressed:no_address")
