"""The graph's problems, in words, before anything runs."""

from __future__ import annotations

import pytest

from notifications.journeys.graph import graph_problems

from .conftest import welcome_graph

pytestmark = pytest.mark.django_db


def _problems(steps, start="a", **extra):
    return graph_problems({"start": start, "steps": steps, **extra})


def test_the_welcome_journey_has_no_problems(templates):
    assert graph_problems(welcome_graph()) == []


def test_missing_templates_and_unknown_channels(templates):
    problems = _problems([{"id": "a", "type": "send", "template": "nope", "channels": ["email", "fax"]}])
    assert problems == ["Step a: unknown channel fax."]  # shape first; the database only once the shape is right
    problems = _problems([{"id": "a", "type": "send", "template": "nope", "channels": ["email"], "category": "nada"}])
    assert problems == ["Step a: there is no template nope.", "Step a: there is no category nada."]


def test_unreachable_steps_and_dangling_links():
    problems = _problems([
        {"id": "a", "type": "wait", "hours": 1, "next": "ghost"},
        {"id": "b", "type": "exit"},
    ])
    assert "Step a: next leads to ghost, which does not exist." in problems
    assert "Step b cannot be reached from the start." in problems


def test_waits_without_an_end_and_bad_times():
    problems = _problems([
        {"id": "a", "type": "wait", "next": "b"},
        {"id": "b", "type": "wait", "until_time": "25:00", "next": "c"},
        {"id": "c", "type": "wait", "until_field": "order.created_at"},
    ])
    assert problems == [
        "Step a waits without an end: give days, hours or minutes, a time of day or a date field.",
        "Step b: 25:00 is not a time of day (HH:MM).",
        "Step c: order.created_at is not user.<field>, profile.<field> or context.<key>.",
    ]


def test_branches_need_both_arms_and_an_earlier_send():
    problems = _problems([
        {"id": "a", "type": "branch", "if": {"step": "s", "event": "opened"}, "yes": "s"},
        {"id": "s", "type": "send", "template": "t", "channels": ["email"]},
    ])
    assert "Step a: a branch needs both arms, “yes” and “no”." in problems
    assert "Step a asks about s, which not everyone reaching it has passed." in problems


def test_cycles_are_refused():
    problems = _problems([
        {"id": "a", "type": "wait", "days": 1, "next": "b"},
        {"id": "b", "type": "branch", "if": {"field": "context.x", "op": "eq", "value": 1}, "yes": "a", "no": "c"},
        {"id": "c", "type": "exit"},
    ])
    assert problems == ["The steps a → b → a lead back to where they started: a journey may not loop."]


def test_splits_add_up_to_one_hundred():
    problems = _problems([
        {"id": "a", "type": "split", "arms": [{"name": "A", "percent": 50, "next": "b"}, {"name": "B", "percent": 40}]},
        {"id": "b", "type": "exit"},
    ])
    assert problems == ["Step a: the arms add up to 90 %, not 100 %."]


def test_goals_name_registered_models_and_fields():
    problems = graph_problems({"start": "a", "steps": [{"id": "a", "type": "exit"}], "goals": [
        {"model": "demo_shop.order", "recipient_path": "customer.user",
         "conditions": [{"field": "secret", "op": "eq", "value": 1}]},
        {"model": "auth.group", "recipient_path": "self", "conditions": []},
    ]})
    assert len(problems) == 2
    assert problems[0].startswith("Goal 1: Condition 1: secret is not a field you can test here.")
    assert problems[1] == "Goal 2: auth.group is not a model registered for triggers."


def test_not_a_graph_at_all():
    assert graph_problems([1, 2]) == ["The journey must be a JSON object with “start” and “steps”."]
    assert graph_problems({"start": "a", "steps": []}) == ["The journey has no steps."]
