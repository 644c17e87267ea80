""""Send to those who did not open": a finished email run is followed up by a new draft campaign
whose rule audience is exactly the recipients who did not open it (opens recorded by the real
open pixel in the sent mail), through the normal composer and launch; refused where opens are
not tracked, for roles without ``campaign.edit``, and for a run still sending."""

from __future__ import annotations

import re

import pytest
from django.test import TestCase
from django.urls import reverse

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.audiences import audience_preview, audience_sizes
from notifications.campaigns import services
from notifications.campaigns.followups import campaign_run_followup_create
from notifications.campaigns.runs import campaign_run_plan, campaigns_launch_due
from notifications.campaigns.services import CampaignError
from notifications.models import Audience, AuditEntry, Campaign, CampaignRun, Delivery, RecipientProfile

from .conftest import make_recipients, static_audience

pytestmark = pytest.mark.django_db

SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
PIXEL = re.compile(r'<img src="([^"]+)" width="1" height="1"')


def run_to_the_end(campaign, actor) -> CampaignRun:
    services.campaign_launch(campaign=campaign, actor=actor)
    (run_id,) = campaigns_launch_due()
    campaign_run_plan(run_id=run_id)
    ids = list(Delivery.objects.filter(run_id=run_id).order_by("id").values_list("id", flat=True))
    with TestCase.captureOnCommitCallbacks(execute=True):
        ledger.deliveries_send(delivery_ids=ids)
    return CampaignRun.objects.get(pk=run_id)


def open_mail_of(client, address: str) -> None:
    """The recipient's mail client loads the images of the message it received."""
    (html,) = [m.message.html for m in LocmemChannel.outbox if m.message.address == address]
    (pixel,) = PIXEL.findall(html)
    assert client.get(pixel.replace("&amp;", "&"), HTTP_USER_AGENT=SAFARI).status_code == 200


@pytest.fixture
def finished(locmem_channels, staff, make_campaign):
    """Spring sale by email to six people, finished; r0 and r1 opened it, r2 clicked only."""
    ids = make_recipients(6)
    campaign = make_campaign(static_audience("Six", ids), author=staff["marketer"], template_values={})
    run = run_to_the_end(campaign, staff["marketer"])
    assert run.status == CampaignRun.Status.COMPLETED
    return campaign, run


def test_a_marketer_follows_up_the_non_openers_with_a_draft_whose_live_count_is_theirs(client, staff, finished):
    campaign, run = finished
    open_mail_of(client, "r0@example.com")
    open_mail_of(client, "r1@example.com")
    Delivery.objects.filter(run=run, address="r2@example.com").update(status="clicked", clicked_at=run.started_at)

    client.force_login(staff["other_marketer"])
    page = client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()
    assert 'data-testid="run-followup"' in page and "Send to those who did not open" in page
    response = client.post(reverse("admin:notifications_campaignrun_followup", args=[run.pk]))

    draft = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:notifications_campaign_change", args=[draft.pk])
    assert draft.name == "Spring sale — did not open"
    assert (draft.status, draft.schedule, draft.author) == ("draft", "now", staff["other_marketer"])
    assert (draft.template, draft.category, draft.channels) == (campaign.template, campaign.category, ["email"])
    assert draft.audience.kind == Audience.Kind.RULES
    assert draft.audience.rules == {
        "all": [{"field": "engagement.campaign_run", "op": "not_opened", "value": [run.pk]}]}
    preview = audience_preview(audience=draft.audience)
    assert preview.count == 3
    assert audience_sizes(audiences=[draft.audience, campaign.audience]) == {draft.audience_id: 3,
                                                                            campaign.audience_id: 6}
    assert [row["username"] for row in preview.sample] == ["r3", "r4", "r5"]
    followed = client.get(response["Location"])
    assert "A draft to the 3 people who did not open it" in followed.content.decode()
    entry = AuditEntry.objects.get(action="campaign.followup")
    assert entry.actor == staff["other_marketer"] and entry.target_id == str(draft.pk)
    assert entry.changes == {"from": campaign.pk, "run": run.pk, "audience": draft.audience_id, "who": "did_not_open"}

    # The audience is evaluated at launch: whoever opens the first mail meanwhile is left out.
    open_mail_of(client, "r3@example.com")
    composer = client.get(reverse("admin:notifications_campaign_composer_audience"), {"audience": draft.audience_id})
    assert "2 recipients right now" in composer.content.decode()
    # And it is a campaign like any other: pre-flight, launch, a run to the two who still did not open.
    LocmemChannel.outbox.clear()
    second = run_to_the_end(draft, staff["marketer"])
    assert sorted(m.message.address for m in LocmemChannel.outbox) == ["r4@example.com", "r5@example.com"]
    assert second.audience_size == 2


def test_following_up_twice_makes_two_drafts_with_their_own_audiences(staff, finished):
    _campaign, run = finished
    first = campaign_run_followup_create(run=run, actor=staff["marketer"])
    second = campaign_run_followup_create(run=run, actor=staff["marketer"])
    assert first.audience_id != second.audience_id
    assert second.audience.name.endswith("did not open (2)")
    assert audience_preview(audience=second.audience).count == 6


@pytest.mark.parametrize("role", ["manager", "operator"])
def test_roles_without_campaign_edit_are_refused_and_nothing_is_made(client, staff, finished, role):
    campaign, run = finished
    client.force_login(staff[role])
    assert client.post(reverse("admin:notifications_campaignrun_followup", args=[run.pk])).status_code == 403
    assert Campaign.objects.count() == 1 and Audience.objects.count() == 1
    if role == "manager":  # Managers see the campaign page, without the button
        page = client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()
        assert 'data-testid="run-followup"' not in page
    with pytest.raises(CampaignError):
        campaign_run_followup_create(run=run, actor=staff[role])


def test_an_sms_campaign_says_why_it_offers_no_follow_up(client, locmem_channels, staff, make_campaign):
    ids = make_recipients(2)
    RecipientProfile.objects.filter(user_id__in=ids).update(phone="+14155550100")
    campaign = make_campaign(static_audience("Texts", ids), author=staff["marketer"], channels=["sms"])
    run = run_to_the_end(campaign, staff["marketer"])
    client.force_login(staff["marketer"])
    page = client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()
    assert 'data-testid="run-followup"' not in page
    assert "opens are not tracked on SMS (only on Email)" in page
    response = client.post(reverse("admin:notifications_campaignrun_followup", args=[run.pk]), follow=True)
    assert "opens are not tracked on SMS" in response.content.decode()
    assert Campaign.objects.count() == 1
    run_page = client.get(reverse("admin:notifications_campaignrun_change", args=[run.pk])).content.decode()
    assert 'data-testid="run-followup-untracked"' in run_page


def test_a_run_still_sending_cannot_be_followed_up(client, locmem_channels, staff, make_campaign):
    campaign = make_campaign(static_audience("Busy", make_recipients(2)), author=staff["marketer"])
    services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    (run_id,) = campaigns_launch_due()
    client.force_login(staff["marketer"])
    page = client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()
    assert 'data-testid="run-followup"' not in page
    response = client.post(reverse("admin:notifications_campaignrun_followup", args=[run_id]), follow=True)
    assert "Only a finished run can be followed up." in response.content.decode()
    assert Campaign.objects.count() == 1


def test_the_run_page_offers_the_follow_up_too(client, staff, finished):
    _campaign, run = finished
    client.force_login(staff["marketer"])
    page = client.get(reverse("admin:notifications_campaignrun_change", args=[run.pk])).content.decode()
    assert reverse("admin:notifications_campaignrun_followup", args=[run.pk]) in page


def test_the_follow_up_of_an_a_b_tested_run_sends_the_winner_without_a_test(staff, finished):
    # The non-openers get what won, to all of them: not the base template, and no second test.
    from notifications.models import CampaignVariant
    from tests.factories import MessageTemplateFactory

    campaign, run = finished
    winning = MessageTemplateFactory()
    CampaignVariant.objects.create(campaign=campaign, label="A")
    CampaignVariant.objects.create(campaign=campaign, label="B", template=winning)
    Campaign.objects.filter(pk=campaign.pk).update(test_share=40, test_metric="opens")
    CampaignRun.objects.filter(pk=run.pk).update(winner="B")
    run.refresh_from_db()
    campaign.refresh_from_db()
    draft = campaign_run_followup_create(run=run, actor=staff["marketer"])
    defaults = {name: Campaign._meta.get_field(name).get_default() for name in ("test_share", "test_metric",
                                                                               "test_window")}
    assert draft.template == winning
    assert {name: getattr(draft, name) for name in defaults} == defaults
    assert not CampaignVariant.objects.filter(campaign=draft).exists()
