"""Campaign progress: the figures of ``notifications.ledger.outcomes`` and why deliveries wait."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone, translation

from notifications.campaigns.progress import runs_progress_of
from notifications.models import CampaignRun, Delivery

from .conftest import make_recipients, static_audience

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(make_campaign) -> CampaignRun:
    campaign = make_campaign(static_audience("All", []), status="running")
    return CampaignRun.objects.create(campaign=campaign, occurrence=timezone.now(), status=CampaignRun.Status.SENDING)


def add(run, status: str, n: int = 1, **fields) -> None:
    start = Delivery.objects.count()
    Delivery.objects.bulk_create(
        Delivery(idempotency_key=f"p:{start + i}", channel="email", run=run, status=status, **fields) for i in range(n)
    )


def test_progress_says_why_each_waiting_delivery_waits(run, django_assert_num_queries):
    now = timezone.now()
    shanghai, london = make_recipients(2, timezones=("Asia/Shanghai", "Europe/London"))
    add(run, "sent", 96, sent_at=now)
    add(run, "planned", 35, recipient_id=shanghai, status_reason="deferred:quiet_hours", next_attempt_at=now + timedelta(hours=3))
    add(run, "planned", 2, recipient_id=london, status_reason="deferred:quiet_hours", next_attempt_at=now + timedelta(hours=5))
    add(run, "planned", 12)  # due now: waiting their turn under the send rate
    add(run, "deferred", 4, status_reason="timeout", next_attempt_at=now + timedelta(minutes=7))
    add(run, "planned", 3, status_reason="deferred:scheduled", next_attempt_at=now + timedelta(minutes=30))
    add(run, "sending", 1)

    with django_assert_num_queries(2):  # figures by run; reasons of the waiting ones
        (progress,) = runs_progress_of([run], now=now).values()

    assert (progress.total, progress.sent, progress.waiting) == (153, 96, 57)
    assert progress.percent == 63
    by_kind = {(r.kind, r.zone): r.count for r in progress.waiting_reasons}
    assert by_kind == {
        ("sending", ""): 1, ("queue", ""): 12, ("retrying", ""): 4, ("quiet_hours", "Asia/Shanghai"): 35,
        ("quiet_hours", "Europe/London"): 2, ("scheduled", ""): 3,
    }
    labels = [r.label for r in progress.waiting_reasons]
    shanghai_at = (now + timedelta(hours=3)).astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"35 held for quiet hours until {shanghai_at:%H:%M} Asia/Shanghai" in labels
    assert "12 waiting for the rate limit" in labels
    assert f"4 retrying (next attempt {timezone.localtime(now + timedelta(minutes=7)):%H:%M})" in labels
    with translation.override("zh-hans"):
        assert any("免打扰" in r.label for r in progress.waiting_reasons)


def test_progress_is_never_complete_while_anything_waits(run, django_assert_num_queries):
    add(run, "delivered", 999, sent_at=timezone.now(), delivered_at=timezone.now())
    add(run, "planned", 1, status_reason="deferred:quiet_hours", next_attempt_at=timezone.now() + timedelta(hours=8))

    (progress,) = runs_progress_of([run]).values()
    assert progress.percent == 99
    assert [r.kind for r in progress.waiting_reasons] == ["quiet_hours"]

    Delivery.objects.filter(run=run, status="planned").update(status="sent")
    with django_assert_num_queries(1):  # nothing waits: no reasons to look up
        (progress,) = runs_progress_of([run]).values()
    assert (progress.percent, progress.waiting_reasons) == (100, [])


def test_a_run_held_for_approval_says_so(run):
    CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.AWAITING_APPROVAL)
    run.refresh_from_db()
    add(run, "paused", 5)

    (progress,) = runs_progress_of([run]).values()
    assert [r.label for r in progress.waiting_reasons] == ["5 paused", "awaiting approval"]


@pytest.mark.parametrize("status", ["planning", "sending", "paused"])
def test_a_run_still_going_with_nothing_planned_yet_is_not_shown_as_done(run, status):
    CampaignRun.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()
    (progress,) = runs_progress_of([run]).values()
    assert progress.percent == 0

    CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED)
    run.refresh_from_db()
    (progress,) = runs_progress_of([run]).values()
    assert progress.percent == 100  # finished with nothing to send: done
