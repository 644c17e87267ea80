"""Journeys under test: a welcome journey (send → wait 2 days → branch on opened → A / B)."""

from __future__ import annotations

from datetime import datetime, timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model

from notifications.journeys.services import journey_publish, journey_save
from notifications.models import Category, Journey
from tests.factories import MessageTemplateFactory

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)


def welcome_graph(**overrides) -> dict:
    graph = {
        "start": "welcome",
        "steps": [
            {"id": "welcome", "type": "send", "template": "j-welcome", "channels": ["email"], "next": "pause"},
            {"id": "pause", "type": "wait", "days": 2, "next": "opened?"},
            {"id": "opened?", "type": "branch", "if": {"step": "welcome", "event": "opened"},
             "yes": "tip", "no": "reminder"},
            {"id": "tip", "type": "send", "template": "j-tip", "channels": ["inapp"]},
            {"id": "reminder", "type": "send", "template": "j-reminder", "channels": ["email"]},
        ],
    }
    graph.update(overrides)
    return graph


@pytest.fixture
def templates(db):
    return {key: MessageTemplateFactory(key=key, email_subject=f"{key} subject", inapp_title=f"{key} title")
            for key in ("j-welcome", "j-tip", "j-reminder", "j-other")}


@pytest.fixture
def marketing(db):
    return Category.objects.get_or_create(key="journeys-test", defaults={"name": "Journeys", "kind": "marketing"})[0]


@pytest.fixture
def make_journey(templates, marketing):
    def make(key="welcome", graph=None, publish=True, **fields) -> Journey:
        journey = Journey(key=key, name=key.title(), category=marketing, graph=graph or welcome_graph(), **fields)
        journey_save(journey=journey, actor=None)
        if publish:
            journey_publish(journey=journey, actor=None, now=T0)
        return journey

    return make


def make_people(n: int, *, prefix: str = "p") -> list[int]:
    User = get_user_model()
    User.objects.bulk_create([User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com") for i in range(n)],
                             batch_size=1000)
    return list(User.objects.filter(username__startswith=prefix).order_by("pk").values_list("pk", flat=True))


@pytest.fixture
def immediate_tasks(settings):
    """Tasks run as they are enqueued (sends, journey firings), on commit."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    return settings
