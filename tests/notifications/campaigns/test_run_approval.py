"""Approval binds what is sent at run time: the frozen audience is checked again when a run starts.

On the old code a campaign launched under the threshold sent to whatever its audience had grown
to (840 at launch, 2,016 sent), and an approved campaign whose template changed after approval
sent the new text. Here such a run is held ``awaiting_approval`` and nothing goes out until a
Manager approves it as it is then.
"""

from __future__ import annotations

import pytest

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.campaigns import runs as campaign_runs
from notifications.campaigns import services
from notifications.campaigns.runs import campaign_run_plan, campaigns_launch_due
from notifications.campaigns.services import CampaignError
from notifications.models import Audience, AuditEntry, Campaign, CampaignRun, Delivery, MessageTemplate

from .conftest import make_recipients

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10


def fans(prefix: str = "fan") -> Audience:
    return Audience.objects.create(
        name=f"Usernames {prefix}*", kind=Audience.Kind.RULES,
        rules={"all": [{"field": "user.username", "op": "startswith", "value": prefix}]},
    )


def start_run(campaign) -> CampaignRun:
    (run_id,) = campaigns_launch_due()
    campaign_run_plan(run_id=run_id)
    return CampaignRun.objects.get(pk=run_id)


def send_everything() -> None:
    ids = list(Delivery.objects.filter(status="planned").values_list("id", flat=True))
    ledger.deliveries_send(delivery_ids=ids)


def test_a_run_whose_audience_grew_past_the_threshold_is_held_and_sends_nothing(
    locmem_channels, staff, make_campaign
):
    make_recipients(8, prefix="fan")
    campaign = make_campaign(fans(), author=staff["marketer"])
    services.campaign_launch(campaign=campaign, actor=staff["marketer"])  # 8: no approval needed
    make_recipients(6, prefix="fanx")  # 14 by the time the run starts

    run = start_run(campaign)
    send_everything()

    assert run.status == "awaiting_approval"
    assert "14 recipients is above the approval threshold of 10" in run.status_note
    assert Delivery.objects.filter(run=run).count() == 0
    assert LocmemChannel.outbox == []
    assert AuditEntry.objects.filter(action="campaign.run_held", target_id=str(campaign.pk)).exists()
    assert "above the approval threshold" in Campaign.objects.get(pk=campaign.pk).status_note


def test_a_manager_releases_a_held_run_and_it_sends_to_the_audience_as_it_is_then(
    locmem_channels, staff, make_campaign, django_capture_on_commit_callbacks
):
    make_recipients(8, prefix="fan")
    campaign = make_campaign(fans(), author=staff["marketer"])
    services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    make_recipients(6, prefix="fanx")
    run = start_run(campaign)

    with pytest.raises(CampaignError, match="may not approve"):
        services.campaign_run_release(campaign=campaign, actor=staff["marketer"])
    assert services.campaign_run_release(campaign=campaign, actor=staff["manager"]) == 1
    campaign_run_plan(run_id=run.pk)  # the planning task the release enqueued
    with django_capture_on_commit_callbacks(execute=True):
        send_everything()

    run.refresh_from_db()
    campaign.refresh_from_db()
    assert run.status == "completed"
    assert len(LocmemChannel.outbox) == 14
    assert (campaign.approved_by, campaign.approved_size) == (staff["manager"], 14)


def test_an_approved_campaign_whose_template_changed_after_launch_is_held_at_run_time(
    locmem_channels, staff, make_campaign
):
    make_recipients(25, prefix="fan")
    campaign = make_campaign(fans(), author=staff["marketer"])
    services.campaign_submit(campaign=campaign, actor=staff["marketer"])
    services.campaign_approve(campaign=campaign, actor=staff["manager"])
    services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    MessageTemplate.objects.filter(pk=campaign.template_id).update(email_subject="Something else entirely")

    run = start_run(campaign)
    send_everything()

    assert run.status == "awaiting_approval"
    assert "the template changed" in run.status_note
    assert LocmemChannel.outbox == []


def test_an_approval_for_25_holds_a_run_of_31(locmem_channels, staff, make_campaign):
    make_recipients(25, prefix="fan")
    campaign = make_campaign(fans(), author=staff["marketer"])
    services.campaign_submit(campaign=campaign, actor=staff["marketer"])
    services.campaign_approve(campaign=campaign, actor=staff["manager"])
    services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    make_recipients(6, prefix="fanz")

    run = start_run(campaign)

    assert run.status == "awaiting_approval"
    assert "covers up to 27 recipients" in run.status_note
    assert Delivery.objects.filter(run=run).count() == 0


def test_an_audience_that_grows_while_the_run_is_being_frozen_stops_at_the_limit(
    locmem_channels, staff, make_campaign, monkeypatch
):
    """Planning re-checks the limit chunk by chunk, so people who join between the count and
    the last chunk can never push a run past what was approved (or past the threshold)."""
    make_recipients(30, prefix="fan")
    campaign = make_campaign(fans(), author=staff["marketer"])
    # Launched when it was small (the launch-time check is covered above); due now.
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", next_run_at=campaign.created_at)
    (run_id,) = campaigns_launch_due()
    # The count at run start sees 9 (as if 21 people joined a moment later).
    real_check = campaign_runs.campaign_approval_check
    monkeypatch.setattr(
        campaign_runs, "campaign_approval_check",
        lambda *, campaign, size: real_check(campaign=campaign, size=min(size, 9)),
    )

    campaign_run_plan(run_id=run_id, chunk_size=4)
    send_everything()

    run = CampaignRun.objects.get(pk=run_id)
    assert run.status == "awaiting_approval"
    assert Delivery.objects.filter(run=run).count() <= 10  # the threshold
    assert len(LocmemChannel.outbox) == 0  # what was planned waits, paused


def test_cancelling_a_held_run_cancels_what_it_had_planned(locmem_channels, staff, make_campaign):
    make_recipients(8, prefix="fan")
    campaign = make_campaign(fans(), author=staff["marketer"])
    services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    make_recipients(6, prefix="fanx")
    run = start_run(campaign)

    services.campaign_cancel(campaign=Campaign.objects.get(pk=campaign.pk), actor=staff["marketer"])

    run.refresh_from_db()
    assert run.status == "cancelled"
    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"
