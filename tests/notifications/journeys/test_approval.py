"""Journey approval: a journey that can reach more people than the threshold needs a Manager."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from notifications.journeys.approvals import JourneyNeedsApproval, journey_approval_check, journey_approve
from notifications.journeys.services import journey_publish, journey_save
from notifications.models import Audience, AudienceMember, AuditEntry, Journey, MessageTemplate
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
