"""The approval desk (issue 12, point 2), as the Marketer and the Managers live it.

Submitting tells every Manager (inbox and email, through our own pipeline); a Manager approves or
asks for changes with a comment that reaches the author; the approval page shows what approval
covers and what changed since the last approval; the home lists what awaits a Manager.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from channels_adapters.models import CapturedMessage
from notifications.campaigns import services
from notifications.campaigns.approval_desk import APPROVALS_CATEGORY, awaiting_approval
from notifications.campaigns.services import CampaignError
from notifications.models import (
    ApprovalDecision, Audience, AuditEntry, Campaign, Category, MessageTemplate, Notification, Preference,
    RecipientProfile, SignalTrigger,
)

from .conftest import make_recipients

pytestmark = pytest.mark.django_db

CAPTURE = {"BACKEND": "channels_adapters.capture.CaptureChannel", "OPTIONS": {}}


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10
    settings.NOTIFICATION_CHANNELS = {**settings.NOTIFICATION_CHANNELS, "email": CAPTURE}
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def managers(staff):
    """Two Managers besides ``meg``: one reads Chinese, one opted out of everything marketing."""
    group = Group.objects.get(name="Managers")
    made = {}
    for username, locale in (("mo", "zh-hans"), ("mel", "en")):
        user = get_user_model().objects.create_user(username=username, email=f"{username}@example.com", is_staff=True)
        user.groups.add(group)
        RecipientProfile.objects.update_or_create(user=user, defaults={"locale": locale})
        made[username] = user
    marketing = Category.objects.get_or_create(key="newsletter", defaults={"name": "Newsletter", "kind": "marketing"})[0]
    Preference.objects.create(user=made["mel"], category=marketing, channel="email", enabled=False)
    return {"meg": staff["manager"], **made}


@pytest.fixture
def campaign(make_campaign, staff):
    make_recipients(25, prefix="fan")
    audience = Audience.objects.create(
        name="Fans", kind=Audience.Kind.RULES, rules={"all": [{"field": "user.username", "op": "startswith", "value": "fan"}]},
    )
    return make_campaign(audience, author=staff["marketer"], channels=["email", "sms"])


def submit(campaign, actor, capture):
    with capture(execute=True):
        services.campaign_submit(campaign=campaign, actor=actor)


def test_submitting_tells_every_manager_in_their_inbox_and_by_email_in_their_language(
    campaign, staff, managers, django_capture_on_commit_callbacks
):
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)

    campaign.refresh_from_db()
    assert campaign.status == "pending_approval" and campaign.submitted_at is not None
    path = reverse("dashboard:approval", args=[campaign.pk])
    inbox = {n.recipient.username: n for n in Notification.objects.select_related("recipient", "content")}
    assert sorted(inbox) == ["meg", "mel", "mo"]
    assert {n.content.url if n.content_id else n.url for n in inbox.values()} == {path}
    assert inbox["meg"].shown_title == "Awaiting your approval: Spring sale"
    assert inbox["mo"].shown_title == "等待您审批：Spring sale"
    assert "mia submitted “Spring sale” for 25 recipients." in inbox["meg"].shown_body

    emails = CapturedMessage.objects.filter(channel="email", subject__contains="Spring sale")
    # mel opted out of marketing email: approval mail is transactional and still reaches them.
    assert sorted(emails.values_list("address", flat=True)) == ["meg@example.com", "mel@example.com", "mo@example.com"]
    assert path in emails.get(address="meg@example.com").text
    category = Category.objects.get(key=APPROVALS_CATEGORY)
    assert category.kind == "transactional" and not category.user_can_opt_out
    assert not Notification.objects.filter(recipient=staff["marketer"]).exists()  # the author is not asked
    assert AuditEntry.objects.filter(action="campaign.submit", target_id=str(campaign.pk)).exists()


def test_approving_reads_approved_and_tells_the_author(campaign, staff, django_capture_on_commit_callbacks):
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_approve(campaign=campaign, actor=staff["manager"], comment="Nice offer.")

    campaign.refresh_from_db()
    assert campaign.status == "approved" and campaign.get_status_display() == "Approved"
    assert campaign.approved_by == staff["manager"] and campaign.approved_size == 25
    decision = ApprovalDecision.objects.get(campaign=campaign)
    assert decision.decision == "approved" and decision.snapshot["template"]["locales"]["en"]["email_subject"]
    message = Notification.objects.get(recipient=staff["marketer"])
    assert message.shown_title == "Approved: Spring sale" and "Nice offer." in message.shown_body
    services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"


def test_requesting_changes_needs_a_comment_and_the_author_gets_it(campaign, staff, django_capture_on_commit_callbacks):
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    with pytest.raises(CampaignError, match="Say what should change"):
        services.campaign_request_changes(campaign=campaign, actor=staff["manager"], comment="  ")
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_request_changes(campaign=campaign, actor=staff["manager"], comment="Drop the SMS, please.")

    campaign.refresh_from_db()
    assert campaign.status == "changes_requested"
    message = Notification.objects.get(recipient=staff["marketer"])
    assert message.shown_title == "Changes requested: Spring sale" and "Drop the SMS, please." in message.shown_body
    assert AuditEntry.objects.filter(action="campaign.request_changes", changes__comment="Drop the SMS, please.").exists()
    with pytest.raises(CampaignError, match="approval threshold"):
        services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)  # edited, submitted again
    assert Campaign.objects.get(pk=campaign.pk).status == "pending_approval"


def test_an_edit_after_approval_voids_it_and_needs_a_new_one(campaign, staff, django_capture_on_commit_callbacks):
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    services.campaign_approve(campaign=campaign, actor=staff["manager"])

    campaign.channels = ["email"]
    services.campaign_update(campaign=campaign, actor=staff["marketer"], changed=["channels"])

    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.approved_by is None
    with pytest.raises(CampaignError, match="approval threshold"):
        services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    assert AuditEntry.objects.filter(action="campaign.approval_reset").exists()


@pytest.mark.parametrize("who, status, verb, message", [
    ("manager", "draft", "approve", "is Draft"),
    ("manager", "draft", "request_changes", "is Draft"),
    ("manager", "scheduled", "approve", "is Scheduled"),
    ("other_marketer", "pending_approval", "approve", "may not approve"),
    ("operator", "pending_approval", "request_changes", "may not approve"),
])
def test_illegal_transitions_are_refused_and_change_nothing(campaign, staff, who, status, verb, message):
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.refresh_from_db()
    actor = staff[who]
    with pytest.raises(CampaignError, match=message):
        if verb == "approve":
            services.campaign_approve(campaign=campaign, actor=actor)
        elif verb == "request_changes":
            services.campaign_request_changes(campaign=campaign, actor=actor, comment="No.")
    assert not ApprovalDecision.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).status == status


def test_submitting_twice_is_refused_and_managers_are_told_once(
    campaign, staff, managers, django_capture_on_commit_callbacks
):
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    told = Notification.objects.filter(recipient__in=managers.values()).count()
    assert told == 3
    with pytest.raises(CampaignError, match="is Pending approval"):
        submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    assert Notification.objects.filter(recipient__in=managers.values()).count() == told
    assert AuditEntry.objects.filter(action="campaign.submit", target_id=str(campaign.pk)).count() == 1
    assert Campaign.objects.get(pk=campaign.pk).status == "pending_approval"


def test_an_approval_that_still_holds_is_not_submitted_again(campaign, staff, django_capture_on_commit_callbacks):
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    services.campaign_approve(campaign=campaign, actor=staff["manager"])
    with pytest.raises(CampaignError, match="approved as it is"):
        services.campaign_submit(campaign=campaign, actor=staff["marketer"])
    MessageTemplate.objects.filter(pk=campaign.template_id).update(email_subject="Changed")  # voids it
    campaign = Campaign.objects.get(pk=campaign.pk)
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    assert Campaign.objects.get(pk=campaign.pk).status == "pending_approval"


def test_a_manager_cannot_approve_their_own_campaign(campaign, staff):
    Campaign.objects.filter(pk=campaign.pk).update(status="pending_approval", author=staff["manager"])
    campaign.refresh_from_db()
    with pytest.raises(CampaignError, match="your own campaign"):
        services.campaign_approve(campaign=campaign, actor=staff["manager"])


def test_the_approval_page_shows_what_approval_covers_and_what_changed(
    client, campaign, staff, django_capture_on_commit_callbacks
):
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    client.force_login(staff["manager"])
    url = reverse("dashboard:approval", args=[campaign.pk])
    html = client.get(url).content.decode()
    assert 'data-testid="approval-channels">Email → SMS' in html
    assert 'data-size="25"' in html and "25 recipients now" in html
    assert "Rules: all of (user.username startswith &quot;fan&quot;)" in html
    assert "As soon as it is launched" in html and "Newsletter (Marketing; recipients may opt out)" in html
    assert "Hello N0" in html  # the subject rendered for a sample recipient
    assert "No earlier approval" in html

    client.post(reverse("dashboard:approval_decide", args=[campaign.pk]), {"decision": "approve", "comment": ""})
    assert Campaign.objects.get(pk=campaign.pk).status == "approved"
    # The author changes the subject line and submits again: the page shows the change.
    MessageTemplate.objects.filter(pk=campaign.template_id).update(email_subject="Last chance {{ recipient.first_name }}")
    campaign = Campaign.objects.get(pk=campaign.pk)
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    html = client.get(url).content.decode()
    assert "No earlier approval" not in html
    assert 'data-part="template" data-changed="yes"' in html and 'data-part="channels" data-changed="no"' in html
    assert 'data-op="-">- [en] email subject: Hello {{ recipient.first_name }}' in html
    assert 'data-op="+">+ [en] email subject: Last chance {{ recipient.first_name }}' in html


def test_a_marketer_cannot_approve_over_http(client, campaign, staff, django_capture_on_commit_callbacks):
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    client.force_login(staff["other_marketer"])
    page = client.get(reverse("dashboard:approval", args=[campaign.pk]))
    assert page.status_code == 200 and 'data-testid="approve"' not in page.content.decode()
    response = client.post(reverse("dashboard:approval_decide", args=[campaign.pk]), {"decision": "approve"})
    assert response.status_code == 403
    assert client.get(reverse("dashboard:approvals")).status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "pending_approval"


def test_the_manager_home_lists_what_awaits_approval_in_a_fixed_number_of_queries(
    client, make_campaign, staff, django_assert_num_queries, django_capture_on_commit_callbacks
):
    make_recipients(12, prefix="fan")
    for i in range(3):
        audience = Audience.objects.create(name=f"A{i}", kind=Audience.Kind.RULES,
                                           rules={"all": [{"field": "user.username", "op": "startswith", "value": "fan"}]})
        Campaign.objects.filter(pk=make_campaign(audience, name=f"C{i}", author=staff["marketer"]).pk).update(
            status="pending_approval")
    with django_assert_num_queries(4):  # campaigns, their audiences' sizes, held triggers, journeys
        three = awaiting_approval()
    for i in range(3, 9):
        Campaign.objects.filter(pk=make_campaign(Audience.objects.get(name="A0"), name=f"C{i}",
                                                 author=staff["marketer"]).pk).update(status="pending_approval")
    held = SignalTrigger.objects.create(
        name="Order paid", signal="post_save", model="demo_shop.order", template=MessageTemplate.objects.first(),
        category=Category.objects.first(), created_by=staff["marketer"], last_held_at=timezone.now(), held_count=1,
    )
    with django_assert_num_queries(4):
        assert len(awaiting_approval()) == 10
    assert [item.size for item in three] == [12, 12, 12]

    client.force_login(staff["manager"])
    html = client.get(reverse("admin:index")).content.decode()
    assert "Awaiting your approval" in html and html.count('data-testid="awaiting-row"') == 10
    assert f'data-kind="trigger" data-pk="{held.pk}"' in html
    assert reverse("admin:notifications_signaltrigger_approve", args=[held.pk]) in html
    assert "12 recipients" in html and ">mia<" in html
    client.force_login(staff["marketer"])
    assert "Awaiting your approval" not in client.get(reverse("admin:index")).content.decode()


def test_the_campaign_page_tells_the_marketer_approval_is_needed_before_launch(
    client, campaign, staff, django_capture_on_commit_callbacks
):
    client.force_login(staff["marketer"])
    page = reverse("admin:notifications_campaign_change", args=[campaign.pk])
    html = client.get(page).content.decode()
    assert 'data-testid="approval-banner" data-state="draft" data-needed="yes"' in html
    assert "A Manager must approve it before it can be launched" in html
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    services.campaign_request_changes(campaign=campaign, actor=staff["manager"], comment="Shorter subject.")
    html = client.get(page).content.decode()
    assert 'data-state="changes_requested"' in html and "Shorter subject." in html


def test_the_admin_list_filters_campaigns_awaiting_approval(client, campaign, make_campaign, staff):
    Campaign.objects.filter(pk=campaign.pk).update(status="pending_approval")
    make_campaign(campaign.audience, name="Still a draft")
    client.force_login(staff["manager"])
    html = client.get(reverse("admin:notifications_campaign_changelist") + "?awaiting=yes").content.decode()
    assert "Spring sale" in html and "Still a draft" not in html


def test_a_changed_template_value_shows_in_the_diff(client, campaign, staff, django_capture_on_commit_callbacks):
    """The values filled in for the template's variables are covered by the approval, so the
    Manager approving again sees the old and the new value, not "nothing changed"."""
    MessageTemplate.objects.filter(pk=campaign.template_id).update(
        variables=["promo_code"], email_body="Your code: {{ promo_code }}")
    Campaign.objects.filter(pk=campaign.pk).update(template_values={"promo_code": "SPRING24"})
    campaign = Campaign.objects.get(pk=campaign.pk)
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    client.force_login(staff["manager"])
    client.post(reverse("dashboard:approval_decide", args=[campaign.pk]), {"decision": "approve", "comment": ""})
    Campaign.objects.filter(pk=campaign.pk).update(template_values={"promo_code": "SPRING25"})
    campaign = Campaign.objects.get(pk=campaign.pk)
    assert services.campaign_approval(campaign=campaign).changed == ["template"]
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    html = client.get(reverse("dashboard:approval", args=[campaign.pk])).content.decode()
    assert 'data-part="template" data-changed="yes"' in html
    assert 'data-op="-">- Value of “promo_code”: SPRING24' in html
    assert 'data-op="+">+ Value of “promo_code”: SPRING25' in html
    # The content is rendered with the campaign's value, as it will be sent, not a stand-in.
    assert "Your code: SPRING25" in html and "[promo_code]" not in html


def test_a_campaign_sent_back_with_changes_requested_can_be_edited_in_the_form(client, campaign, staff,
                                                                                django_capture_on_commit_callbacks):
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    client.force_login(staff["marketer"])
    url = reverse("admin:notifications_campaign_change", args=[campaign.pk])
    assert 'name="name"' not in client.get(url).content.decode()  # waiting for a Manager: read-only
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_request_changes(campaign=campaign, actor=staff["manager"], comment="Shorter subject, please.")
    page = client.get(url).content.decode()
    assert 'name="name"' in page and 'name="_save"' in page
    # ... and pre-flight runs on it again, as on a draft, before it is submitted again.
    assert reverse("admin:notifications_campaign_preflight", args=[campaign.pk]) in page


def test_a_resubmission_after_changes_were_requested_shows_what_changed_since(
    client, campaign, staff, django_capture_on_commit_callbacks
):
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_request_changes(campaign=campaign, actor=staff["manager"], comment="A warmer subject, please.")
    MessageTemplate.objects.filter(pk=campaign.template_id).update(email_subject="Dear {{ recipient.first_name }}")
    campaign = Campaign.objects.get(pk=campaign.pk)
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    client.force_login(staff["manager"])
    html = client.get(reverse("dashboard:approval", args=[campaign.pk])).content.decode()
    assert "No earlier approval" not in html and "Changes since changes were requested" in html
    assert "asked for changes on" in html and "A warmer subject, please." in html
    assert 'data-op="-">- [en] email subject: Hello {{ recipient.first_name }}' in html
    assert 'data-op="+">+ [en] email subject: Dear {{ recipient.first_name }}' in html


def test_swapping_one_member_of_a_static_audience_shows_in_the_diff(
    client, make_campaign, staff, django_capture_on_commit_callbacks
):
    """The approval digests a static list as (size, newest member): a swap voids it, and the
    Manager approving again sees which part changed."""
    from notifications.models import AudienceMember

    ids = make_recipients(12, prefix="static")
    audience = Audience.objects.create(name="Static", kind=Audience.Kind.STATIC)
    AudienceMember.objects.bulk_create(AudienceMember(audience=audience, user_id=pk) for pk in ids[:11])
    campaign = make_campaign(audience, author=staff["marketer"], channels=["email"])
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    client.force_login(staff["manager"])
    client.post(reverse("dashboard:approval_decide", args=[campaign.pk]), {"decision": "approve", "comment": ""})
    AudienceMember.objects.filter(audience=audience, user_id=ids[0]).delete()
    AudienceMember.objects.create(audience=audience, user_id=ids[11])
    campaign = Campaign.objects.get(pk=campaign.pk)
    assert services.campaign_approval(campaign=campaign).changed == ["audience"]
    submit(campaign, staff["marketer"], django_capture_on_commit_callbacks)
    html = client.get(reverse("dashboard:approval", args=[campaign.pk])).content.decode()
    assert 'data-part="audience" data-changed="yes"' in html
    assert 'data-op="+">+ Newest member: static11' in html
