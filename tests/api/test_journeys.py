"""POST /api/v1/journeys/{key}/enter: the same journeys.enter() as code."""

from __future__ import annotations

import pytest

from notifications.journeys.services import journey_pause
from notifications.models import JourneyEnrollment
from tests.notifications.journeys.conftest import make_journey, marketing, templates  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_people_enter_once_per_entry_key(api, make_journey, recipient, other_recipient):  # noqa: F811
    make_journey(key="welcome")
    body = {"recipients": [{"id": recipient.pk}, {"email": other_recipient.email}], "context": {"order": "A-1"},
            "entry_key": "order-A-1"}
    assert api.post("/api/v1/journeys/welcome/enter", body).json() == {"entered": 2, "skipped": 0}
    assert api.post("/api/v1/journeys/welcome/enter", body).json() == {"entered": 0, "skipped": 2}
    enrollment = JourneyEnrollment.objects.get(user=recipient)
    assert (enrollment.context, enrollment.entry_key) == ({"order": "A-1"}, "order-A-1")


def test_a_paused_journey_is_409_and_an_unknown_one_404(api, make_journey, recipient):  # noqa: F811
    journey = make_journey(key="welcome")
    journey_pause(journey=journey, actor=None)
    response = api.post("/api/v1/journeys/welcome/enter", {"recipients": [{"id": recipient.pk}]})
    assert response.status_code == 409 and response["Content-Type"] == "application/problem+json"
    assert api.post("/api/v1/journeys/nope/enter", {"recipients": [{"id": recipient.pk}]}).status_code == 404
    assert not JourneyEnrollment.objects.exists()
