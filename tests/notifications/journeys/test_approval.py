"""Journey approval: a journey that can reach more people than the threshold needs a Manager."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from notifications.campaigns.approval_desk import awaiting_approval
from notifications.journeys.approvals import (
    JourneyNeedsApproval, awaiting_journeys, journey_approval_check, journey_approve, journey_request_approval,
)
from notifications.journeys.services import journey_publish, journey_save
from notifications.models import Audience, AudienceMember, AuditEntry, Journey, MessageTemplate, Notification
from tests.factories import staff_in

from .conftest import make_people

pytestmark = pytest.mark.django_db


@pytest.fixture
def big_audience(settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10
    audience = Audience.objects.create(name="Many", kind=Audience.Kind.STATIC)
    AudienceMember.objects.bulk_create([AudienceMember(audience=audience, user_id=u) for u in make_people(20)])
    return audience


def test_an_audience_journey_above_the_threshold_needs_a_managers_approval(make_journey, big_audience):
    marketer, manager = staff_in("Marketers", "mia"), staff_in("Managers", "max")
    journey = make_journey(publish=False, entry={"kind": "audience", "audience": big_audience.pk})
    Journey.objects.filter(pk=journey.pk).update(created_by=marketer)
    journey.refresh_from_db()
    with pytest.raises(JourneyNeedsApproval, match="20 recipients is above the approval threshold of 10"):
        journey_publish(journey=journey, actor=marketer)
    assert journey.versions.count() == 0

    with pytest.raises(PermissionDenied):
        journey_approve(journey=journey, actor=marketer)  # a Marketer may not approve
    journey_approve(journey=journey, actor=manager)
    assert AuditEntry.objects.filter(action="journey.approve").exists()
    journey_publish(journey=journey, actor=marketer)
    assert Journey.objects.get(pk=journey.pk).status == Journey.Status.LIVE

    # Changing a template's wording voids the approval for the next publication.
    MessageTemplate.objects.filter(key="j-welcome").update(email_subject="Something else")
    check = journey_approval_check(journey=journey)
    assert check.needed and "changed" in check.reason


def test_the_author_cannot_approve_their_own_journey(make_journey, big_audience):
    manager = staff_in("Managers", "max")
    journey = make_journey(publish=False, entry={"kind": "audience", "audience": big_audience.pk})
    Journey.objects.filter(pk=journey.pk).update(created_by=manager)
    journey.refresh_from_db()
    with pytest.raises(PermissionDenied):
        journey_approve(journey=journey, actor=manager)


def test_a_small_audience_needs_none(make_journey, settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 100
    audience = Audience.objects.create(name="Few", kind=Audience.Kind.STATIC)
    journey = make_journey(entry={"kind": "audience", "audience": audience.pk})
    assert journey.status == Journey.Status.LIVE


def test_unestimated_reach_follows_the_setting(make_journey, settings):
    journey = make_journey(publish=False)  # a code entry: its reach cannot be estimated
    assert not journey_approval_check(journey=journey).needed  # "allow", the default
    settings.SIGNALBOX_JOURNEY_UNESTIMATED_REACH = "approve"
    with pytest.raises(JourneyNeedsApproval, match="cannot be estimated"):
        journey_publish(journey=journey, actor=None)
    journey_approve(journey=journey, actor=staff_in("Managers", "max"))
    journey_publish(journey=journey, actor=None)
    journey.graph = {**journey.graph, "exits": [{"kind": "opted_out"}]}
    journey_save(journey=journey, actor=None)
    with pytest.raises(JourneyNeedsApproval, match="changed"):
        journey_publish(journey=journey, actor=None)


# --- The approval desk: journeys beside campaigns -----------------------------------------------------

def _refused_on_publish(client, journey, marketer):
    """The marketer presses Publish on the journey's page; the refusal puts it on the desk."""
    client.force_login(marketer)
    client.post(reverse("admin:notifications_journey_publish", args=[journey.pk]))
    journey.refresh_from_db()


def test_a_refused_publication_puts_the_journey_on_the_desk_and_tells_the_managers(
    client, make_journey, big_audience, django_capture_on_commit_callbacks
):
    marketer, manager = staff_in("Marketers", "mia"), staff_in("Managers", "max")
    journey = make_journey(publish=False, entry={"kind": "audience", "audience": big_audience.pk})
    Journey.objects.filter(pk=journey.pk).update(created_by=marketer)
    with django_capture_on_commit_callbacks(execute=True):
        _refused_on_publish(client, journey, marketer)
    assert journey.status == Journey.Status.DRAFT and journey.approval_requested_at is not None
    assert Notification.objects.filter(recipient=manager, title="Awaiting your approval: Welcome").exists()
    assert not Notification.objects.filter(recipient=marketer, title__startswith="Awaiting").exists()

    client.force_login(manager)
    desk = client.get(reverse("dashboard:approvals")).content.decode()
    assert f'data-kind="journey" data-pk="{journey.pk}"' in desk and "20 recipients" in desk
    page = client.get(reverse("dashboard:journey_approval", args=[journey.pk])).content.decode()
    assert "20 recipients is above the approval threshold of 10" in page
    assert 'data-testid="approval-form"' in page and "j-welcome subject" not in page

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("dashboard:journey_approval_decide", args=[journey.pk]), {"decision": "approve"})
    assert 'data-kind="journey"' not in client.get(reverse("dashboard:approvals")).content.decode()
    assert Notification.objects.filter(recipient=marketer, title="Approved: Welcome").exists()

    client.force_login(marketer)  # now Publish goes through
    client.post(reverse("admin:notifications_journey_publish", args=[journey.pk]))
    assert Journey.objects.get(pk=journey.pk).status == Journey.Status.LIVE


def _on_the_desk(client, make_journey, big_audience, capture_on_commit):
    """A Marketer's journey refused on publishing (so on the desk), and its Manager signed in."""
    marketer, manager = staff_in("Marketers", "mia"), staff_in("Managers", "max")
    journey = make_journey(publish=False, entry={"kind": "audience", "audience": big_audience.pk})
    Journey.objects.filter(pk=journey.pk).update(created_by=marketer)
    with capture_on_commit(execute=True):
        _refused_on_publish(client, journey, marketer)
    client.force_login(manager)
    return marketer, manager, journey


def test_requesting_changes_needs_a_comment_and_sends_the_journey_back(
    client, make_journey, big_audience, django_capture_on_commit_callbacks
):
    marketer, manager, journey = _on_the_desk(client, make_journey, big_audience, django_capture_on_commit_callbacks)
    decide = reverse("dashboard:journey_approval_decide", args=[journey.pk])
    page = client.post(decide, {"decision": "request_changes", "comment": " "}, follow=True).content.decode()
    assert "Say what should change" in page
    assert awaiting_journeys().filter(pk=journey.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(decide, {"decision": "request_changes", "comment": "Wait a week, not two days."})
    assert not awaiting_journeys().filter(pk=journey.pk).exists()
    assert Notification.objects.filter(recipient=marketer, title="Changes requested: Welcome",
                                       body="Wait a week, not two days.").exists()
    assert "Wait a week, not two days." in client.get(
        reverse("dashboard:journey_approval", args=[journey.pk])).content.decode()
    # Publishing again puts it back on the desk.
    _refused_on_publish(client, journey, marketer)
    assert awaiting_journeys().filter(pk=journey.pk).exists()


def test_an_approval_comment_reaches_the_author_and_the_audit_log(
    client, make_journey, big_audience, django_capture_on_commit_callbacks
):
    from notifications.models import AuditEntry

    marketer, manager, journey = _on_the_desk(client, make_journey, big_audience, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("dashboard:journey_approval_decide", args=[journey.pk]),
                    {"decision": "approve", "comment": "Fine, but watch the unsubscribe rate."})
    assert Notification.objects.filter(recipient=marketer, title="Approved: Welcome",
                                       body="Fine, but watch the unsubscribe rate.").exists()
    entry = AuditEntry.objects.get(action="journey.approve", target_id=str(journey.pk))
    assert entry.changes["comment"] == "Fine, but watch the unsubscribe rate."


def test_neither_a_marketer_nor_the_author_can_approve_over_http(client, make_journey, big_audience):
    author, marketer = staff_in("Managers", "max"), staff_in("Marketers", "mia")
    journey = make_journey(publish=False, entry={"kind": "audience", "audience": big_audience.pk})
    Journey.objects.filter(pk=journey.pk).update(created_by=author)
    journey.refresh_from_db()
    journey_request_approval(journey=journey, actor=staff_in("Marketers", "mo"))
    client.force_login(author)
    decide = reverse("dashboard:journey_approval_decide", args=[journey.pk])
    page = client.get(reverse("dashboard:journey_approval", args=[journey.pk])).content.decode()
    assert 'data-testid="approval-form"' not in page and "cannot approve your own journey" in page
    client.post(decide, {"decision": "approve"})
    client.force_login(marketer)
    assert client.post(decide, {"decision": "approve"}).status_code == 403
    journey.refresh_from_db()
    assert journey.approved_by_id is None


def test_the_desk_lists_journeys_in_a_fixed_number_of_queries(make_journey, big_audience, django_assert_num_queries):
    marketer = staff_in("Marketers", "mia")
    for i in range(4):
        journey = make_journey(key=f"j{i}", publish=False, entry={"kind": "audience", "audience": big_audience.pk})
        Journey.objects.filter(pk=journey.pk).update(created_by=marketer, approval_requested_at=timezone.now())
        if i == 0:
            with django_assert_num_queries(5):  # campaigns, triggers, journeys, the audience, its size
                assert [item.size for item in awaiting_approval() if item.kind == "journey"] == [20]
    with django_assert_num_queries(5):
        assert [item.size for item in awaiting_approval() if item.kind == "journey"] == [20] * 4


def test_the_review_counts_the_audience_once_for_its_reach_and_its_check(make_journey, big_audience):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.journeys.approvals import journey_review

    journey = make_journey(publish=False, entry={"kind": "audience", "audience": big_audience.pk})
    with CaptureQueriesContext(connection) as queries:
        review = journey_review(journey=journey)
    assert review.reach == 20 and review.check.needed and "20 recipients" in review.check.reason
    audience_reads = [q["sql"] for q in queries.captured_queries
                      if "audiencemember" in q["sql"].lower() and "MAX(" not in q["sql"]]  # MAX: its digest
    assert len(audience_reads) == 1, audience_reads


def test_the_desk_and_the_approval_page_give_a_campaign_entry_the_same_reach(make_journey, big_audience, marketing):
    from notifications.journeys.approvals import journey_reach
    from notifications.models import Campaign, CampaignRun

    campaign = Campaign.objects.create(name="Spring", audience=big_audience, category=marketing,
                                       template=MessageTemplate.objects.get(key="j-welcome"))
    journey = make_journey(publish=False, entry={"kind": "campaign", "campaign": campaign.pk})
    Journey.objects.filter(pk=journey.pk).update(created_by=staff_in("Marketers", "mia"),
                                                 approval_requested_at=timezone.now())

    def desk_size():
        return [item.size for item in awaiting_approval() if item.kind == "journey"]

    # Before its first run: the campaign's audience, on the desk as on the page.
    assert journey_reach(journey) == 20 and desk_size() == [20]
    CampaignRun.objects.create(campaign=campaign, occurrence=timezone.now(), status="completed", audience_size=7)
    assert journey_reach(journey) == 7 and desk_size() == [7]
