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


def test_the_idempotency_key_is_per_api_key(api, make_key, make_journey, recipient):  # noqa: F811
    # Two integrators both sending "Idempotency-Key: order-1" mean two occasions, not one.
    from tests.api.conftest import ApiClient

    from notifications.models import Journey

    make_journey(key="welcome", reentry=Journey.Reentry.ALWAYS)
    other = ApiClient(make_key(name="Other server").secret)
    body = {"recipients": [{"id": recipient.pk}]}
    headers = {"Idempotency-Key": "order-1"}
    assert api.post("/api/v1/journeys/welcome/enter", body, headers=headers).json() == {"entered": 1, "skipped": 0}
    assert api.post("/api/v1/journeys/welcome/enter", body, headers=headers).json() == {"entered": 0, "skipped": 1}
    assert other.post("/api/v1/journeys/welcome/enter", body, headers=headers).json() == {"entered": 1, "skipped": 0}
    assert JourneyEnrollment.objects.filter(user=recipient).count() == 2
