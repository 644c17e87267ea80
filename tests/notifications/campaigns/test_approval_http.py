"""Over HTTP, as the people who use it: approval binds what is sent.

A Manager approves through the campaign page; the Marketer then edits the template in its own
admin page (a separate object). On the old code the page still said "Approved for N" and Launch
sent the new text. A run whose audience grew past the threshold after launch was sent in full.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.campaigns.runs import campaign_run_plan, campaigns_launch_due
from notifications.models import Audience, Campaign, CampaignRun, Delivery, MessageTemplate

from .conftest import make_recipients

pytestmark = pytest.mark.django_db

PARTS = ("email_subject", "email_body", "sms_text", "push_title", "push_body", "inapp_title", "inapp_body",
         "inapp_url", "chat_text")


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10


def fans(prefix="fan") -> Audience:
    return Audience.objects.create(
        name="Fans", kind=Audience.Kind.RULES,
        rules={"all": [{"field": "user.username", "op": "startswith", "value": prefix}]},
    )


def transition(client, campaign, action):
    return client.post(reverse("admin:notifications_campaign_transition", args=[campaign.pk, action]), follow=True)


def page(client, campaign) -> str:
    return client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()


def template_form(template: MessageTemplate, **changes) -> dict:
    data = {"name": template.name, "key": template.key, "locale": template.locale, "category": "",
            "variables": "", **{part: getattr(template, part) for part in PARTS}, **changes,
            "variants-TOTAL_FORMS": "0", "variants-INITIAL_FORMS": "0", "variants-MIN_NUM_FORMS": "0",
            "variants-MAX_NUM_FORMS": "1000", "_save": "Save"}
    return data


def test_editing_the_template_of_an_approved_campaign_voids_the_approval(client, staff, make_campaign):
    make_recipients(25, prefix="fan")
    campaign = make_campaign(fans(), author=staff["marketer"])
    client.force_login(staff["marketer"])
    transition(client, campaign, "submit")
    client.force_login(staff["manager"])
    transition(client, campaign, "approve")
    client.force_login(staff["marketer"])
    assert 'data-testid="approval"' in page(client, campaign)

    edited = client.post(reverse("admin:notifications_messagetemplate_change", args=[campaign.template_id]),
                         template_form(campaign.template, email_subject="A different offer"))
    assert edited.status_code == 302, edited.content.decode()[:2000]

    html = page(client, campaign)
    assert "The approval no longer holds: the template changed" in html
    launched = transition(client, campaign, "launch").content.decode()
    assert "The approval no longer holds" in launched
    assert Campaign.objects.get(pk=campaign.pk).status == "approved"  # approved once, void now: not launched


def test_editing_the_audience_rules_of_an_approved_campaign_voids_the_approval(client, staff, make_campaign):
    make_recipients(25, prefix="fan")
    campaign = make_campaign(fans(), author=staff["marketer"])
    client.force_login(staff["marketer"])
    transition(client, campaign, "submit")
    client.force_login(staff["manager"])
    transition(client, campaign, "approve")

    client.force_login(staff["marketer"])
    edited = client.post(reverse("admin:notifications_audience_change", args=[campaign.audience_id]), {
        "name": "Fans", "description": "", "kind": "rules",
        "rules": '{"all": [{"field": "user.username", "op": "startswith", "value": "f"}]}',
        "members-TOTAL_FORMS": "0", "members-INITIAL_FORMS": "0", "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000", "_save": "Save",
    })
    assert edited.status_code == 302, edited.content.decode()[:3000]

    assert "the audience changed" in transition(client, campaign, "launch").content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "approved"  # approved once, void now: not launched


def test_a_run_whose_audience_grew_past_the_threshold_is_held_until_a_manager_approves_it(
    client, staff, make_campaign, locmem_channels, django_capture_on_commit_callbacks
):
    make_recipients(8, prefix="fan")
    campaign = make_campaign(fans(), author=staff["marketer"])
    client.force_login(staff["marketer"])
    transition(client, campaign, "launch")  # 8 people: under the threshold
    make_recipients(9, prefix="fanx")  # 17 when the scheduler starts the run
    (run_id,) = campaigns_launch_due()
    campaign_run_plan(run_id=run_id)

    html = page(client, campaign)
    assert "Held: awaiting approval" in html and "17 recipients is above the approval threshold" in html
    assert 'data-action="release"' not in html  # a Marketer cannot release it
    assert transition(client, campaign, "release").status_code == 403
    assert Delivery.objects.count() == 0 and LocmemChannel.outbox == []

    client.force_login(staff["manager"])
    assert 'data-action="release"' in page(client, campaign)
    assert "the run carries on" in transition(client, campaign, "release").content.decode()
    campaign_run_plan(run_id=run_id)  # the planning task the release enqueued
    with django_capture_on_commit_callbacks(execute=True):
        ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))

    assert CampaignRun.objects.get(pk=run_id).status == "completed"
    assert len(LocmemChannel.outbox) == 17
