"""The journey admin: JSON drafts whose problems are form errors, and the verbs behind roles."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from notifications.models import AuditEntry, Journey
from tests.factories import staff_in

from .conftest import welcome_graph

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_client(client):
    client.force_login(staff_in("Marketers", "marketer"))
    return client


def _form(marketing, graph) -> dict:
    return {"key": "welcome", "name": "Welcome", "category": marketing.pk, "reentry": "once", "reentry_days": "",
            "entry": json.dumps({"kind": "code"}), "graph": json.dumps(graph)}


def test_a_marketer_saves_a_draft_only_without_problems_then_publishes_it(marketer_client, templates, marketing):
    url = reverse("admin:notifications_journey_add")
    broken = welcome_graph()
    broken["steps"][1] = {"id": "pause", "type": "wait", "next": "opened?"}
    response = marketer_client.post(url, _form(marketing, broken))
    assert response.status_code == 200
    assert "waits without an end" in response.content.decode()
    assert not Journey.objects.exists()

    response = marketer_client.post(url, _form(marketing, welcome_graph()))
    assert response.status_code == 302
    journey = Journey.objects.get()
    assert journey.status == "draft"

    publish = reverse("admin:notifications_journey_publish", args=[journey.pk])
    page = marketer_client.get(publish)
    assert page.status_code == 200 and 'data-action="publish"' in page.content.decode()
    assert Journey.objects.get().status == "draft"  # a GET only asks
    assert marketer_client.post(publish).status_code == 302
    journey.refresh_from_db()
    assert journey.status == "live" and journey.current_version.number == 1

    change = marketer_client.get(reverse("admin:notifications_journey_change", args=[journey.pk]))
    assert change.status_code == 200 and 'data-testid="journey-steps"' in change.content.decode().replace("'", '"')
    listing = marketer_client.get(reverse("admin:notifications_journey_changelist"))
    assert listing.status_code == 200 and "Welcome" in listing.content.decode()
    assert marketer_client.post(reverse("admin:notifications_journey_stop", args=[journey.pk])).status_code == 302
    assert Journey.objects.get().status == "stopped"
    assert set(AuditEntry.objects.values_list("action", flat=True)) >= {"journey.create", "journey.publish", "journey.stop"}


def test_an_operator_may_not_publish(client, make_journey):
    journey = make_journey(publish=False)
    client.force_login(staff_in("Operators", "operator"))
    response = client.post(reverse("admin:notifications_journey_publish", args=[journey.pk]))
    assert response.status_code in (302, 403)
    assert Journey.objects.get().status == "draft"
