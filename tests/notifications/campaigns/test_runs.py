"""Runs end to end: the frozen audience, pause/resume without duplicates, local time, recurrence."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.campaigns import services
from notifications.campaigns.runs import campaign_run_plan, campaigns_launch_due, runs_housekeeping
from notifications.models import Campaign, CampaignRun, Delivery
from notifications.signals import campaign_finished

from .conftest import make_recipients, static_audience

pytestmark = pytest.mark.django_db


def _start(campaign, actor, *, now=None):
    services.campaign_launch(campaign=campaign, actor=actor, now=now)
    (run_id,) = campaigns_launch_due(now=now)
    campaign_run_plan(run_id=run_id, now=now)
    return CampaignRun.objects.get(pk=run_id)


def _send_all(ids, *, batch=250, now=None):
    """Send in batches as send tasks would. A task runs outside any transaction, so what the
    ledger announces after commit (``deliveries_batch_recorded``: campaigns finish their runs)
    happens when its batch is done; inside the test's transaction, run those callbacks then."""
    for start in range(0, len(ids), batch):
        with TestCase.captureOnCommitCallbacks(execute=True):
            ledger.deliveries_send(delivery_ids=ids[start:start + batch], now=now)


def test_a_run_sends_the_rendered_template_to_each_member_and_completes(locmem_channels, staff, make_campaign):
    finished = []
    campaign_finished.connect(lambda **kw: finished.append(kw["status"]), weak=False, dispatch_uid="t-finished")
    ids = make_recipients(30)
    campaign = make_campaign(static_audience("Thirty", ids), author=staff["marketer"], channels=["email", "inapp"])
    run = _start(campaign, staff["marketer"])
    assert (run.status, run.audience_size, run.planned) == ("sending", 30, 60)

    _send_all(list(Delivery.objects.filter(run=run).order_by("id").values_list("id", flat=True)))

    first = next(m.message for m in LocmemChannel.outbox if m.message.address == "r0@example.com")
    assert first.subject == "Hello N0"
    assert "<strong>Spring sale</strong>" in first.html and "Spring sale" in first.text
    run.refresh_from_db()
    campaign.refresh_from_db()
    assert run.status == "completed" and campaign.status == "completed"
    assert finished == ["completed"]
    campaign_finished.disconnect(dispatch_uid="t-finished")


def test_pause_at_40_percent_then_resume_sends_each_recipient_exactly_once(locmem_channels, staff, make_campaign):
    ids = make_recipients(5000)
    campaign = make_campaign(static_audience("Five thousand", ids), author=staff["marketer"])
    services.campaign_submit(campaign=campaign, actor=staff["marketer"])
    services.campaign_approve(campaign=campaign, actor=staff["manager"])  # large: approved
    run = _start(campaign, staff["marketer"])
    delivery_ids = list(Delivery.objects.filter(run=run).order_by("id").values_list("id", flat=True))
    assert len(delivery_ids) == 5000

    _send_all(delivery_ids[:2000])  # 40% went out
    paused = services.campaign_pause(campaign=campaign, actor=staff["marketer"])
    assert paused == 3000
    # The queued tasks of the other 60% still run while paused: they must send nothing.
    _send_all(delivery_ids[2000:])
    assert len(LocmemChannel.outbox) == 2000
    assert CampaignRun.objects.get(pk=run.pk).status == "paused"

    services.campaign_resume(campaign=campaign, actor=staff["marketer"])
    _send_all(delivery_ids[2000:])
    _send_all(delivery_ids)  # a duplicate task for every batch changes nothing

    sent = Counter(m.message.address for m in LocmemChannel.outbox)
    assert len(sent) == 5000 and set(sent.values()) == {1}
    run.refresh_from_db()
    assert run.status == "completed"
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"


def test_paused_and_resumed_while_its_planning_runs_the_run_plans_its_whole_audience(
    locmem_channels, staff, make_campaign, monkeypatch
):
    """A Marketer pauses and resumes while a big run is still being planned. Resume must not tell
    the planning that the run is "sending": planning took that for a cancel and stopped, leaving
    the rest of the audience unplanned, the run's counts unwritten (and the run could complete)."""
    from notifications.campaigns import runs

    ids = make_recipients(50)
    campaign = make_campaign(static_audience("Fifty", ids), author=staff["marketer"])
    services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    (run_id,) = campaigns_launch_due()
    plan_chunk, chunks = runs.template_deliveries_plan, []

    def plan_then_pause_and_resume(**kwargs):
        result = plan_chunk(**kwargs)
        chunks.append(kwargs["paused"])
        if len(chunks) == 1:  # between the first chunk and the second
            services.campaign_pause(campaign=Campaign.objects.get(pk=campaign.pk), actor=staff["marketer"])
            services.campaign_resume(campaign=Campaign.objects.get(pk=campaign.pk), actor=staff["marketer"])
        return result

    monkeypatch.setattr(runs, "template_deliveries_plan", plan_then_pause_and_resume)
    campaign_run_plan(run_id=run_id, chunk_size=20)

    run = CampaignRun.objects.get(pk=run_id)
    assert chunks == [False, False, False]  # all three chunks planned, none held paused
    assert (run.status, run.audience_size, run.planned, run.planning_unfinished) == ("sending", 50, 50, False)
    _send_all(list(Delivery.objects.filter(run=run).order_by("id").values_list("id", flat=True)))
    assert len({m.message.address for m in LocmemChannel.outbox}) == 50
    assert CampaignRun.objects.get(pk=run_id).status == "completed"


def test_a_run_paused_after_its_planning_finished_resumes_sending(locmem_channels, staff, make_campaign):
    campaign = make_campaign(static_audience("Ten", make_recipients(10)), author=staff["marketer"])
    run = _start(campaign, staff["marketer"])
    services.campaign_pause(campaign=campaign, actor=staff["marketer"])
    services.campaign_resume(campaign=Campaign.objects.get(pk=campaign.pk), actor=staff["marketer"])
    assert CampaignRun.objects.get(pk=run.pk).status == "sending"


def test_cancel_mid_run_records_the_unsent_as_cancelled(locmem_channels, staff, make_campaign):
    campaign = make_campaign(static_audience("Ten", make_recipients(10)), author=staff["marketer"])
    run = _start(campaign, staff["marketer"])
    ids = list(Delivery.objects.filter(run=run).order_by("id").values_list("id", flat=True))
    _send_all(ids[:4])
    assert services.campaign_cancel(campaign=campaign, actor=staff["marketer"]) == 6
    _send_all(ids)
    assert len(LocmemChannel.outbox) == 4
    assert Counter(Delivery.objects.filter(run=run).values_list("status_reason", flat=True))["suppressed:cancelled"] == 6
    assert CampaignRun.objects.get(pk=run.pk).status == "cancelled"


def test_the_audience_is_frozen_at_launch(locmem_channels, staff, make_campaign):
    ids = make_recipients(5)
    audience = static_audience("Frozen", ids)
    campaign = make_campaign(audience, author=staff["marketer"])
    run = _start(campaign, staff["marketer"])
    audience.members.create(user_id=make_recipients(1, prefix="late")[0])  # joins after launch
    campaign_run_plan(run_id=run.pk)  # a retried planning task
    assert Delivery.objects.filter(run=run).count() == 5


def test_a_local_time_campaign_reaches_each_recipient_at_nine_their_time(locmem_channels, staff, make_campaign):
    zones = ("Asia/Shanghai", "America/New_York", "Europe/London")
    ids = make_recipients(6, timezones=zones)
    campaign = make_campaign(
        static_audience("Around the world", ids), author=staff["marketer"], schedule="local_time",
        local_send_date=date(2026, 12, 1), local_send_time=time(9, 0),
    )
    launched_at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    services.campaign_launch(campaign=campaign, actor=staff["marketer"], now=launched_at)
    campaign.refresh_from_db()
    assert campaign.next_run_at == datetime(2026, 11, 30, 19, 0, tzinfo=UTC)  # 09:00 at UTC+14
    assert campaigns_launch_due(now=launched_at) == []
    (run_id,) = campaigns_launch_due(now=campaign.next_run_at)
    campaign_run_plan(run_id=run_id, now=campaign.next_run_at)

    expected = {
        "Asia/Shanghai": datetime(2026, 12, 1, 1, 0, tzinfo=UTC),
        "America/New_York": datetime(2026, 12, 1, 14, 0, tzinfo=UTC),
        "Europe/London": datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    }
    rows = Delivery.objects.filter(run_id=run_id).values_list("id", "next_attempt_at", "recipient__recipient_profile__timezone")
    for _pk, when, tz in rows:
        assert when == expected[tz]
    # At 09:00 Shanghai only the Shanghai recipients are due.
    all_ids = [pk for pk, _when, _tz in rows]
    _send_all(all_ids, now=expected["Asia/Shanghai"])
    assert sorted(m.message.address for m in LocmemChannel.outbox) == ["r0@example.com", "r3@example.com"]
    _send_all(all_ids, now=expected["America/New_York"])
    assert len(LocmemChannel.outbox) == 6


def test_a_recurring_campaign_returns_to_scheduled_with_its_next_local_occurrence(
    locmem_channels, staff, make_campaign
):
    campaign = make_campaign(
        static_audience("Weekly", make_recipients(3)), author=staff["marketer"], schedule="recurring",
        rrule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0", schedule_timezone="America/New_York",
        recurrence_start=datetime(2026, 2, 1, 9, 0, tzinfo=UTC),
    )
    before_dst = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    services.campaign_launch(campaign=campaign, actor=staff["marketer"], now=before_dst)
    campaign.refresh_from_db()
    assert campaign.next_run_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 09:00 EST
    (run_id,) = campaigns_launch_due(now=campaign.next_run_at)
    campaign_run_plan(run_id=run_id, now=campaign.next_run_at)
    _send_all(list(Delivery.objects.filter(run_id=run_id).values_list("id", flat=True)), now=campaign.next_run_at)
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    assert campaign.next_run_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # Monday 09:00 EDT, after the change


def test_housekeeping_replans_a_run_whose_planning_task_was_lost(staff, make_campaign, django_capture_on_commit_callbacks):
    campaign = make_campaign(static_audience("Lost", make_recipients(4)), author=staff["marketer"])
    services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    (run_id,) = campaigns_launch_due()  # its planning task never ran
    CampaignRun.objects.filter(pk=run_id).update(started_at=timezone.now() - timedelta(minutes=30))
    from django_tasks_db.models import DBTaskResult

    with django_capture_on_commit_callbacks(execute=True):
        assert runs_housekeeping()["replanned"] == 1
    assert DBTaskResult.objects.filter(args_kwargs__kwargs__run_id=run_id).exists()


def test_marketing_email_from_a_template_carries_unsubscribe_links_and_a_broken_one_fails_with_the_reason(
    locmem_channels, staff, make_campaign, template
):
    ids = make_recipients(2)
    campaign = make_campaign(static_audience("Links", ids), author=staff["marketer"])
    run = _start(campaign, staff["marketer"])
    template.email_subject = "Hi {{ recipient.first_name }} {{ coupon }}"  # edited after launch, broken
    template.save()
    first, second = Delivery.objects.filter(run=run).order_by("id")
    _send_all([first.pk])
    first.refresh_from_db()
    assert (first.status, first.status_reason) == ("failed", "template_error")
    assert "coupon" in first.last_error and "undefined" in first.last_error

    template.email_subject = "Hi {{ recipient.first_name }}"
    template.save()
    _send_all([second.pk])
    (sent,) = [m.message for m in LocmemChannel.outbox]
    assert sent.subject == "Hi N1"
    assert sent.metadata["unsubscribe_url"] in sent.html  # the layout's footer link, besides the header
    assert sent.html.index("/notifications/t/") < sent.html.index("</body>")  # the open pixel, inside the body


def test_throttle_spreads_the_run_over_minutes(locmem_channels, staff, make_campaign):
    campaign = make_campaign(static_audience("Slow", make_recipients(5)), author=staff["marketer"],
                             throttle_per_minute=2)
    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    run = _start(campaign, staff["marketer"], now=start)
    waits = sorted(Delivery.objects.filter(run=run).values_list("next_attempt_at", flat=True),
                   key=lambda w: w or start)
    assert waits == [None, None, start + timedelta(minutes=1), start + timedelta(minutes=1), start + timedelta(minutes=2)]


def test_fallback_sends_on_the_first_channel_that_reaches_each_recipient(locmem_channels, staff, make_campaign):
    from notifications.models import RecipientProfile

    ids = make_recipients(2)
    RecipientProfile.objects.filter(user_id=ids[0]).update(phone="+14155550100")
    campaign = make_campaign(static_audience("Fallback", ids), author=staff["marketer"], channels=["sms", "email"],
                             delivery_mode="fallback")
    run = _start(campaign, staff["marketer"])
    rows = dict(Delivery.objects.filter(run=run).values_list("recipient_id", "channel"))
    assert rows == {ids[0]: "sms", ids[1]: "email"}  # no phone: the email, and only the email


def test_the_campaign_frequency_cap_skips_recipients_who_had_enough_today(locmem_channels, staff, make_campaign):
    ids = make_recipients(2)
    first = make_campaign(static_audience("Cap 1", ids), author=staff["marketer"], name="First")
    _start(first, staff["marketer"])
    second = make_campaign(static_audience("Cap 2", ids), author=staff["marketer"], name="Second",
                           frequency_cap_per_day=1)
    run = _start(second, staff["marketer"])
    assert set(Delivery.objects.filter(run=run).values_list("status_reason", flat=True)) == {"suppressed:frequency_cap"}
    assert CampaignRun.objects.get(pk=run.pk).suppressed == 2
