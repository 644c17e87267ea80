"""What changes between planning and sending wins: opt-outs stop, quiet hours hold, attempts are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, Preference
from tests.factories import RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def promos(db):
    return Category.objects.create(key="promos", name="Promos", kind="marketing")


def _planned(user, category, channels=("email",)):
    notify([user], title="Sale", body="Half price", channels=list(channels), category=category)
    return list(Delivery.objects.filter(recipient=user).order_by("id"))


def test_an_opt_out_after_planning_stops_the_send(locmem_channels, promos):
    user = RecipientProfileFactory(user=UserFactory(username="late_opt_out")).user
    (delivery,) = _planned(user, promos)
    Preference.objects.create(user=user, category=promos, channel="email", enabled=False)

    summary = ledger.deliveries_send(delivery_ids=[delivery.pk])

    delivery.refresh_from_db()
    assert LocmemChannel.outbox == []
    assert (delivery.status, delivery.status_reason) == ("suppressed", "suppressed:opted_out")
    assert summary.suppressed == 1 and delivery.attempts == 0


def test_transactional_mail_ignores_a_later_opt_out(locmem_channels):
    receipts = Category.objects.create(key="receipts", name="Receipts", kind="transactional", user_can_opt_out=False)
    user = RecipientProfileFactory(user=UserFactory(username="buyer")).user
    (delivery,) = _planned(user, receipts)
    Preference.objects.create(user=user, category=receipts, channel="email", enabled=False)

    ledger.deliveries_send(delivery_ids=[delivery.pk])

    assert [m.message.address for m in LocmemChannel.outbox] == [user.email]


def test_quiet_hours_that_began_after_planning_hold_the_message_until_they_end(
    locmem_channels, promos, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    user = RecipientProfileFactory(user=UserFactory(username="night_owl"), timezone="Asia/Shanghai").user
    by_channel = {d.channel: d for d in _planned(user, promos, channels=("email", "inapp"))}
    email, inbox = by_channel["email"], by_channel["inapp"]
    # 23:30 in Shanghai; the recipient has just set quiet hours 22:00-07:00.
    profile = user.recipient_profile
    profile.quiet_hours_start, profile.quiet_hours_end = datetime(2026, 1, 1, 22).time(), datetime(2026, 1, 1, 7).time()
    profile.save()
    night = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)

    with django_capture_on_commit_callbacks(execute=True):
        ledger.deliveries_send(delivery_ids=[email.pk, inbox.pk], now=night)

    email.refresh_from_db()
    inbox.refresh_from_db()
    assert [m.message.address for m in LocmemChannel.outbox] == []  # no email at night
    assert inbox.status == "sent"  # the inbox does not interrupt anyone
    assert (email.status, email.status_reason, email.attempts) == ("planned", "deferred:quiet_hours", 0)
    morning = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # 07:00 in Shanghai
    assert email.next_attempt_at == morning
    assert DBTaskResult.objects.filter(run_after=morning, args_kwargs__kwargs__delivery_ids=[email.pk]).exists()

    ledger.deliveries_send(delivery_ids=[email.pk], now=morning + timedelta(seconds=1))
    assert [m.message.address for m in LocmemChannel.outbox] == [user.email]
