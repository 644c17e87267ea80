"""Moving people in flight to the newest version: a preview, then the move, nobody sent twice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from notifications.journeys.engine import journeys_tick
from notifications.journeys.services import (
    journey_enter, journey_move_in_flight, journey_move_preview, journey_publish, journey_save,
)
from notifications.models import Delivery, JourneyEnrollment

from .conftest import T0, make_people, welcome_graph

pytestmark = pytest.mark.django_db


def test_preview_then_move_lands_people_on_the_same_step_of_the_new_version(make_journey):
    journey = make_journey()
    people = make_people(10)
    journey_enter(journey=journey, user_ids=people, now=T0)
    journeys_tick(now=T0)  # everyone sent "welcome", now waiting two days before "opened?"
    v1 = journey.current_version

    # v2: the reminder becomes an in-app message; the wait is renamed (nobody can land on it).
    graph = welcome_graph()
    graph["steps"][1]["id"] = "pause-2"
    graph["steps"][0]["next"] = "pause-2"
    graph["steps"][4]["channels"] = ["inapp"]
    journey.graph = graph
    journey_save(journey=journey, actor=None)
    v2 = journey_publish(journey=journey, actor=None, now=T0 + timedelta(hours=1))

    preview = journey_move_preview(journey=journey)
    assert preview.to_version == 2 and preview.lands == {(1, "opened?"): ("opened?", 10)} and preview.stay == 0
    assert JourneyEnrollment.objects.filter(version=v1).count() == 10  # a preview changes nothing

    assert journey_move_in_flight(journey=journey, actor=None) == 10
    assert JourneyEnrollment.objects.filter(version=v2).count() == 10
    journeys_tick(now=T0 + timedelta(days=2, minutes=1))
    keys = list(Delivery.objects.values_list("idempotency_key", flat=True))
    assert sum(":welcome:" in k for k in keys) == 10  # not sent again
    assert sum(":reminder:inapp" in k for k in keys) == 10  # the new version's reminder
    assert journey_move_preview(journey=journey).moving == 0


def test_the_journey_page_previews_where_people_land_then_moves_them(client, make_journey):
    from django.urls import reverse

    from tests.factories import staff_in

    journey = make_journey()
    journey_enter(journey=journey, user_ids=make_people(4), now=T0)
    journeys_tick(now=T0)
    graph = welcome_graph()
    graph["steps"][4]["channels"] = ["inapp"]
    journey.graph = graph
    journey_save(journey=journey, actor=None)
    journey_publish(journey=journey, actor=None, now=T0 + timedelta(hours=1))

    client.force_login(staff_in("Marketers", "mia"))
    url = reverse("admin:notifications_journey_move", args=[journey.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="move-row" data-step="opened?"' in page and '<td data-testid="move-n">4</td>' in page
    assert JourneyEnrollment.objects.filter(version=journey.current_version).count() == 0  # GET changes nothing
    page = client.post(url, follow=True).content.decode()
    assert "4 people in flight now run on the published version." in page
    assert JourneyEnrollment.objects.filter(version=journey.current_version).count() == 4

    client.force_login(staff_in("Operators", "op"))  # reads journeys, may not move people
    assert client.post(url).status_code == 403
