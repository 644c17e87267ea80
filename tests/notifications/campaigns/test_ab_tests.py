"""Campaign A/B tests end to end: the test share, the winner by clicks, the rest only the winner."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from django.db.models.fields.json import KT
from django.test import TestCase
from django.utils import timezone

from django_tasks_db.models import DBTaskResult

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.campaigns import ab_tests, services
from notifications.campaigns.runs import campaign_run_plan, campaigns_launch_due
from notifications.models import AuditEntry, CampaignRun, CampaignVariant, Delivery, MessageTemplate
from notifications.scheduling import ticks_run

from .conftest import make_recipients, static_audience

pytestmark = pytest.mark.django_db

BODY = "Sale for {{ recipient.first_name }}: [shop now](https://shop.example/sale)"


@pytest.fixture
def ab_template(db):
    return MessageTemplate.objects.create(
        key="ab-sale", name="Sale", email_subject="Our sale, {{ recipient.first_name }}", email_body=BODY,
    )


@pytest.fixture
def ab_campaign(make_campaign, staff, ab_template, settings):
    def make(n: int, **fields):
        settings.SIGNALBOX_APPROVAL_THRESHOLD = n + 1  # no approval in the way of these tests
        campaign = make_campaign(static_audience(f"AB {n}", make_recipients(n)), template=ab_template,
                                 author=staff["marketer"], test_share=20, test_metric="clicks", **fields)
        CampaignVariant.objects.create(campaign=campaign, label="A")
        CampaignVariant.objects.create(campaign=campaign, label="B", email_subject="Last chance, {{ recipient.first_name }}!")
        return campaign

    return make


def _start(campaign, actor, now=None):
    services.campaign_launch(campaign=campaign, actor=actor, now=now)
    (run_id,) = campaigns_launch_due(now=now)
    campaign_run_plan(run_id=run_id, now=now, chunk_size=2000)
    return CampaignRun.objects.get(pk=run_id)


def _send(ids, *, batch=1000):
    for start in range(0, len(ids), batch):
        with TestCase.captureOnCommitCallbacks(execute=True):
            ledger.deliveries_send(delivery_ids=ids[start:start + batch])


def _variants(run, **filters):
    rows = Delivery.objects.filter(run=run, **filters).annotate(v=KT("content__variant"), g=KT("content__ab_group"))
    return Counter(rows.values_list("g", "v"))


def test_ten_thousand_recipients_twenty_percent_test_then_only_the_click_winner(
    ab_campaign, staff, locmem_channels, client, settings, django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    settings.SITE_URL = "http://testserver"
    campaign = ab_campaign(10_000)
    run = _start(campaign, staff["marketer"])

    # The test share only, split evenly and deterministically between A and B.
    assert run.test_state == "testing" and run.test_ends_at is not None
    groups = _variants(run)
    assert set(groups) == {("test", "A"), ("test", "B")}
    assert 1_800 <= sum(groups.values()) <= 2_200
    assert abs(groups[("test", "A")] - groups[("test", "B")]) < 200
    again = ab_tests.test_groups(run_id=run.pk, user_ids=list(Delivery.objects.filter(run=run).values_list(
        "recipient_id", flat=True)), labels=["A", "B"], share=20)
    assert not again[None]  # the same people fall in the same groups on every plan
    _send(list(Delivery.objects.filter(run=run).order_by("id").values_list("id", flat=True)))
    subjects = Counter(m.message.subject.split(",")[0] for m in LocmemChannel.outbox)
    assert subjects == {"Our sale": groups[("test", "A")], "Last chance": groups[("test", "B")]}

    # Clicks: a few through the real click redirect, the rest as bulk rows; B clearly better.
    b_mail = [m.message for m in LocmemChannel.outbox if m.message.subject.startswith("Last chance")]
    for message in b_mail[:5]:
        link = re.search(r'href="(http://testserver/[^"]*/t/c/[^"]+)"', message.html).group(1)
        assert client.get(link).status_code == 302
    b_rows = Delivery.objects.filter(run=run, content__variant="B", status="sent").order_by("id")
    a_rows = Delivery.objects.filter(run=run, content__variant="A", status="sent").order_by("id")
    now = timezone.now()
    Delivery.objects.filter(pk__in=list(b_rows.values_list("id", flat=True)[:145])).update(status="clicked", clicked_at=now)
    Delivery.objects.filter(pk__in=list(a_rows.values_list("id", flat=True)[:80])).update(status="clicked", clicked_at=now)

    page_run = CampaignRun.objects.select_related("campaign__template").get(pk=run.pk)
    variants = ab_tests.campaign_variants(campaign=campaign)
    with django_assert_num_queries(2):  # the test group by variant, the rest: whatever the size
        results = ab_tests.run_test_results(run=page_run, variants=variants)
    by_label = {r.label: r.outcomes for r in results.variants}
    assert by_label["B"].clicked == 150 and by_label["A"].clicked == 80
    assert by_label["A"].sent == groups[("test", "A")] and by_label["B"].sent == groups[("test", "B")]
    assert results.verdict.leader == "B" and results.verdict.significant
    assert results.verdict.note.startswith("B beats A on clicks, significant at 95 %")

    # Nothing is decided before the window ends; the run is not finished meanwhile either.
    assert ab_tests.ab_tests_decide_due(now=now) == []
    run.refresh_from_db()
    assert run.status == "sending"

    later = run.test_ends_at + timedelta(seconds=1)
    LocmemChannel.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert ab_tests.ab_tests_decide_due(now=later) == [(run.pk, "B")]
    with django_capture_on_commit_callbacks(execute=True):  # the tick again: nothing more
        assert ab_tests.ab_tests_decide_due(now=later) == []
    assert AuditEntry.objects.filter(action="campaign.winner_chosen").count() == 1
    campaign_run_plan(run_id=run.pk, chunk_size=2000)  # the planning task the choice enqueued

    groups = _variants(run)
    assert set(groups) == {("test", "A"), ("test", "B"), ("rest", "B")}
    assert sum(groups.values()) == 10_000  # each recipient once, the test group not again
    rest = list(Delivery.objects.filter(run=run, content__ab_group="rest").order_by("id").values_list("id", flat=True))
    _send(rest)
    assert len(LocmemChannel.outbox) == len(rest)
    assert {m.message.subject.split(",")[0] for m in LocmemChannel.outbox} == {"Last chance"}
    run.refresh_from_db()
    campaign.refresh_from_db()
    assert (run.status, run.winner, run.test_state) == ("completed", "B", "decided")
    assert run.test_decision["variants"]["B"]["clicked"] == 150
    assert campaign.status == "completed"


def test_the_scheduler_tick_twice_chooses_once_and_plans_the_rest_once(ab_campaign, staff, locmem_channels,
                                                                        django_capture_on_commit_callbacks):
    campaign = ab_campaign(300)
    run = _start(campaign, staff["marketer"])
    CampaignRun.objects.filter(pk=run.pk).update(test_ends_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        ticks_run()
        ticks_run()
    assert AuditEntry.objects.filter(action="campaign.winner_chosen").count() == 1
    plans = DBTaskResult.objects.filter(task_path__endswith="campaign_run_plan_task")
    assert plans.count() == 1  # the rest is planned by one task, not one per tick
    for _twice in range(2):  # and planning it twice (a retried task) adds nobody twice
        campaign_run_plan(run_id=run.pk)
    assert Counter(Delivery.objects.values_list("recipient_id", flat=True)).most_common(1)[0][1] == 1
    assert Delivery.objects.filter(run=run).count() == 300
    run.refresh_from_db()
    assert run.winner == "A" and run.test_state == "decided"  # a tie keeps the first variant


def test_the_tick_without_a_test_due_costs_one_query(make_campaign, staff, django_assert_num_queries):
    """Every scheduler round runs it: with no A/B test (only ordinary runs) it reads nothing but
    the due tests, and says nothing unless asked (``--once``)."""
    campaign = make_campaign(static_audience("Plain", make_recipients(3)), author=staff["marketer"])
    CampaignRun.objects.create(campaign=campaign, occurrence=timezone.now(), status="sending", started_at=timezone.now())
    with django_assert_num_queries(1) as captured:
        assert ab_tests.ab_tests_tick() == []
    assert "test_state" in captured.captured_queries[0]["sql"]  # the partial index's predicate
    with django_assert_num_queries(1):
        assert ab_tests.ab_tests_tick(once=True) == ["chose 0 A/B test winner(s)"]


def test_a_marketer_may_pick_the_winner_before_the_window_ends(ab_campaign, staff, locmem_channels,
                                                               django_capture_on_commit_callbacks):
    campaign = ab_campaign(200)
    run = _start(campaign, staff["marketer"])
    with pytest.raises(ab_tests.WinnerError):
        ab_tests.campaign_winner_pick(run=run, label="C", actor=staff["marketer"])
    with pytest.raises(ab_tests.WinnerError):
        ab_tests.campaign_winner_pick(run=run, label="B", actor=staff["builder"])  # may not launch
    with django_capture_on_commit_callbacks(execute=True):
        assert ab_tests.campaign_winner_pick(run=run, label="B", actor=staff["marketer"]) == "B"
    with pytest.raises(ab_tests.WinnerError):
        ab_tests.campaign_winner_pick(run=run, label="A", actor=staff["marketer"])
    run.refresh_from_db()
    assert (run.winner, run.winner_chosen_by, run.test_decision["manual"]) == ("B", staff["marketer"], True)
    campaign_run_plan(run_id=run.pk)
    assert set(_variants(run, content__ab_group="rest")) == {("rest", "B")}


@pytest.mark.tasks
@pytest.mark.django_db(transaction=True)
def test_two_scheduler_processes_choose_the_winner_once(ab_campaign, staff, locmem_channels):
    import subprocess
    import sys

    from tests.conftest import ROOT, child_env
    from tests.processes import enqueued_task_ids

    campaign = ab_campaign(200)
    run = _start(campaign, staff["marketer"])
    launched = enqueued_task_ids("campaign_run_plan_task")  # the launch's own tasks: not under test
    CampaignRun.objects.filter(pk=run.pk).update(test_ends_at=timezone.now() - timedelta(minutes=1))
    schedulers = [
        subprocess.Popen([sys.executable, "manage.py", "signalbox_scheduler", "--once"], cwd=ROOT, env=child_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in schedulers]
    assert [process.returncode for process in schedulers] == [0, 0], outputs
    assert sorted(out.split("chose ")[1].split()[0] for out, _err in outputs) == ["0", "1"]
    assert AuditEntry.objects.filter(action="campaign.winner_chosen").count() == 1
    assert len(enqueued_task_ids("campaign_run_plan_task") - launched) == 1  # the rest planned once, on either backend
    assert CampaignRun.objects.get(pk=run.pk).test_state == "decided"
