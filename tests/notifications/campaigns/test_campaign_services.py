"""The campaign state machine: who may do what, approval of large campaigns, exactly-once starts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.campaigns import services
from notifications.campaigns.runs import campaign_run_start, campaigns_launch_due
from notifications.campaigns.services import CampaignError
from notifications.models import AuditEntry, Audience, Campaign, CampaignRun, Category, Delivery, MessageTemplate

from .conftest import make_recipients, static_audience

pytestmark = pytest.mark.django_db


@pytest.fixture
def small(make_campaign, staff):
    return make_campaign(static_audience("Few", make_recipients(5)), author=staff["marketer"])


@pytest.fixture
def large(make_campaign, staff, settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10
    return make_campaign(static_audience("Many", make_recipients(25)), author=staff["marketer"])


# (role, action) -> allowed. "launch" needs the launch permission; "approve" a Manager who is
# not the author; building (submit) is any campaign editor's.
MATRIX = {
    ("marketer", "submit"): True,
    ("marketer", "approve"): False,  # the author, and not a manager
    ("marketer", "launch"): True,
    ("other_marketer", "approve"): False,
    ("builder", "submit"): True,
    ("builder", "launch"): False,  # a Marketer without the launch permission
    ("manager", "submit"): False,
    ("manager", "approve"): True,
    ("manager", "launch"): False,
    ("operator", "submit"): False,
    ("operator", "approve"): False,
    ("operator", "launch"): False,
}


@pytest.mark.parametrize(("role", "action"), sorted(MATRIX))
def test_role_by_action_matrix(role, action, staff, large):
    if action in ("approve",):
        services.campaign_submit(campaign=large, actor=staff["marketer"])
    if action == "launch":  # approved by a manager first, so only the launch permission decides
        services.campaign_submit(campaign=large, actor=staff["marketer"])
        services.campaign_approve(campaign=large, actor=staff["manager"])
    verb = {"submit": services.campaign_submit, "approve": services.campaign_approve,
            "launch": services.campaign_launch}[action]
    if MATRIX[(role, action)]:
        verb(campaign=large, actor=staff[role])
        assert AuditEntry.objects.filter(action=f"campaign.{action}", actor=staff[role]).exists()
    else:
        before = Campaign.objects.get(pk=large.pk).status
        with pytest.raises(CampaignError):
            verb(campaign=large, actor=staff[role])
        assert Campaign.objects.get(pk=large.pk).status == before
        assert not AuditEntry.objects.filter(action=f"campaign.{action}", actor=staff[role]).exists()


def test_the_author_cannot_approve_their_own_large_campaign_even_as_a_manager(staff, large):
    author = staff["manager"]
    author.groups.add(*staff["marketer"].groups.all())
    large.author = author
    large.save()
    services.campaign_submit(campaign=large, actor=author)
    with pytest.raises(CampaignError, match="own campaign"):
        services.campaign_approve(campaign=large, actor=author)


def test_a_large_campaign_cannot_launch_without_approval(staff, large):
    with pytest.raises(CampaignError, match="approval"):
        services.campaign_launch(campaign=large, actor=staff["marketer"])
    services.campaign_submit(campaign=large, actor=staff["marketer"])
    services.campaign_approve(campaign=large, actor=staff["manager"])
    services.campaign_launch(campaign=large, actor=staff["marketer"])
    large.refresh_from_db()
    assert large.status == "scheduled" and large.approved_by == staff["manager"] and large.approved_size == 25


def rule_audience(name: str, prefix: str) -> Audience:
    return Audience.objects.create(
        name=name, kind=Audience.Kind.RULES,
        rules={"all": [{"field": "user.username", "op": "startswith", "value": prefix}]},
    )


def test_an_approval_covers_a_rule_audience_growing_by_ten_percent_and_no_more(staff, make_campaign, settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10
    make_recipients(25, prefix="fan")
    campaign = make_campaign(rule_audience("Fans", "fan"), author=staff["marketer"])
    services.campaign_submit(campaign=campaign, actor=staff["marketer"])
    services.campaign_approve(campaign=campaign, actor=staff["manager"])
    make_recipients(2, prefix="fanx")  # 27 <= 27.5: still covered
    assert not services.campaign_needs_approval(campaign=campaign)
    make_recipients(4, prefix="fany")  # now 31: over 110% of the approved 25
    with pytest.raises(CampaignError, match="approval covers up to 27 recipients"):
        services.campaign_launch(campaign=campaign, actor=staff["marketer"])


def test_adding_a_member_to_an_approved_static_audience_voids_the_approval(staff, large):
    services.campaign_submit(campaign=large, actor=staff["marketer"])
    services.campaign_approve(campaign=large, actor=staff["manager"])
    large.audience.members.create(user_id=make_recipients(1, prefix="extra")[0])
    with pytest.raises(CampaignError, match="the audience changed"):
        services.campaign_launch(campaign=large, actor=staff["marketer"])


@pytest.mark.parametrize("edit", ["template", "variant", "audience_rules", "channels", "category", "schedule"])
def test_any_change_to_what_was_approved_voids_the_approval(edit, staff, make_campaign, settings):
    """Approval binds what is sent: edits made anywhere (the audience, the template, a locale
    variant, the category) after a Manager approved leave the campaign unlaunchable until a
    new approval, whatever interface made them."""
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10
    make_recipients(25, prefix="fan")
    campaign = make_campaign(rule_audience("Fans", "fan"), author=staff["marketer"])
    services.campaign_submit(campaign=campaign, actor=staff["marketer"])
    services.campaign_approve(campaign=campaign, actor=staff["manager"])
    if edit == "template":
        MessageTemplate.objects.filter(pk=campaign.template_id).update(email_subject="Everything must go")
    elif edit == "variant":
        campaign.template.variants.create(locale="zh-hans", email_subject="全部清仓")
    elif edit == "audience_rules":
        Audience.objects.filter(pk=campaign.audience_id).update(
            rules={"all": [{"field": "user.username", "op": "startswith", "value": "f"}]}
        )
    elif edit == "channels":
        Campaign.objects.filter(pk=campaign.pk).update(channels=["email", "sms"])
    elif edit == "category":
        Category.objects.filter(pk=campaign.category_id).update(kind="transactional")
    elif edit == "schedule":
        Campaign.objects.filter(pk=campaign.pk).update(throttle_per_minute=1)
    campaign = Campaign.objects.get(pk=campaign.pk)

    with pytest.raises(CampaignError, match="approval no longer holds"):
        services.campaign_launch(campaign=campaign, actor=staff["marketer"])

    services.campaign_approve(campaign=campaign, actor=staff["manager"])  # approved again, as it is now
    services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"


def test_a_small_campaign_launches_without_approval_and_send_now_starts_at_once(
    staff, small, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        services.campaign_launch(campaign=small, actor=staff["marketer"])
    assert len(callbacks) == 1  # the "launch due campaigns" task, after commit
    small.refresh_from_db()
    assert small.status == "scheduled" and small.next_run_at <= timezone.now()


def test_illegal_transitions_are_refused_with_the_current_state(staff, small):
    with pytest.raises(CampaignError, match="Draft"):
        services.campaign_pause(campaign=small, actor=staff["marketer"])
    services.campaign_cancel(campaign=small, actor=staff["marketer"])
    with pytest.raises(CampaignError, match="Cancelled"):
        services.campaign_launch(campaign=small, actor=staff["marketer"])


def test_a_stale_copy_cannot_launch_twice(staff, small):
    other_tab = Campaign.objects.get(pk=small.pk)
    services.campaign_launch(campaign=small, actor=staff["marketer"])
    with pytest.raises(CampaignError):
        services.campaign_launch(campaign=other_tab, actor=staff["marketer"])
    assert AuditEntry.objects.filter(action="campaign.launch").count() == 1


def test_starting_the_same_occurrence_twice_creates_one_run(staff, small):
    services.campaign_launch(campaign=small, actor=staff["marketer"])
    small.refresh_from_db()
    occurrence = small.next_run_at
    first = campaign_run_start(campaign_id=small.pk, occurrence=occurrence)
    second = campaign_run_start(campaign_id=small.pk, occurrence=occurrence)
    assert first is not None and second is None
    assert CampaignRun.objects.filter(campaign=small).count() == 1


def test_a_run_past_its_maximum_lateness_is_skipped_and_says_so(staff, make_campaign):
    now = timezone.now()
    campaign = make_campaign(
        static_audience("Late", make_recipients(3)), schedule="once", send_at=now + timedelta(minutes=5),
        max_lateness=timedelta(hours=1), author=staff["marketer"],
    )
    services.campaign_launch(campaign=campaign, actor=staff["marketer"], now=now)
    # The scheduler was down for three hours.
    assert campaigns_launch_due(now=now + timedelta(hours=3)) == []
    campaign.refresh_from_db()
    run = campaign.runs.get()
    assert run.status == "skipped" and "late" in run.status_note
    assert campaign.status == "failed" and "Not sent" in campaign.status_note
    assert not Delivery.objects.exists()


def test_a_launched_once_campaign_waits_for_its_time(staff, make_campaign):
    now = timezone.now()
    campaign = make_campaign(
        static_audience("Later", make_recipients(3)), schedule="once", send_at=now + timedelta(hours=2),
        author=staff["marketer"],
    )
    services.campaign_launch(campaign=campaign, actor=staff["marketer"], now=now)
    assert campaigns_launch_due(now=now + timedelta(hours=1)) == []
    assert len(campaigns_launch_due(now=now + timedelta(hours=2, seconds=1))) == 1


def test_editing_after_approval_needs_a_new_approval(staff, large):
    services.campaign_submit(campaign=large, actor=staff["marketer"])
    services.campaign_approve(campaign=large, actor=staff["manager"])
    services.campaign_approval_reset(campaign=large, actor=staff["marketer"])
    with pytest.raises(CampaignError, match="approval"):
        services.campaign_launch(campaign=large, actor=staff["marketer"])
