"""``seed_demo`` adds the two demo journeys once, with people at several steps."""

from __future__ import annotations

from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command

from dashboard.analytics.journeys import journey_figures
from demo_shop.seeding.journeys import REVIEW_KEY, WELCOME_KEY
from notifications.models import Delivery, Journey, JourneyEnrollment, JourneyStepRun

pytestmark = pytest.mark.django_db


def seed() -> None:
    call_command("seed_demo", "--users", "60", "--days", "5", "--force", stdout=StringIO())


def snapshot() -> tuple:
    return (
        sorted(Journey.objects.values_list("key", "status", "current_version__number")),
        sorted(JourneyEnrollment.objects.values_list("journey__key", "user_id", "state", "current_step")),
        JourneyStepRun.objects.count(),
        Delivery.objects.filter(idempotency_key__startswith="journey:").count(),
    )


def test_seed_demo_twice_creates_the_journeys_once_with_people_at_several_steps():
    seed()
    first = snapshot()
    seed()
    assert snapshot() == first

    journeys = {j.key: j for j in Journey.objects.all()}
    assert {WELCOME_KEY, REVIEW_KEY} <= journeys.keys()
    assert all(journeys[k].status == Journey.Status.LIVE for k in (WELCOME_KEY, REVIEW_KEY))
    assert journeys[WELCOME_KEY].entry["signal"] == "auth.user_signed_up"
    assert journeys[REVIEW_KEY].entry["changed_to"] == "paid"

    welcome = Counter(JourneyEnrollment.objects.filter(journey__key=WELCOME_KEY).values_list("state", flat=True))
    assert welcome["active"] and welcome["completed"] and welcome["converted"]
    steps = Counter(JourneyStepRun.objects.filter(enrollment__journey__key=WELCOME_KEY).values_list("step_id", flat=True))
    assert steps["tip"] and steps["reminder"]  # both sides of the "opened?" branch were taken
    waiting = JourneyStepRun.objects.filter(enrollment__journey__key=WELCOME_KEY, step_id="pause", status="waiting")
    assert waiting.exists()

    review = Counter(JourneyEnrollment.objects.filter(journey__key=REVIEW_KEY).values_list("state", flat=True))
    assert review["active"] and review["completed"]

    figures = journey_figures(version=journeys[WELCOME_KEY].current_version)
    sends = {send.step_id: send.totals for send in figures.sends}
    assert sends["welcome"].sent > 0 and sends["welcome"].opened > 0
    assert figures.converted == welcome["converted"]
