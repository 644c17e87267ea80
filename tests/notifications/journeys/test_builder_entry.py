"""The builder edits what used to need JSON: the entry with its re-entry policy, goals and exit
conditions — each a form whose problems are sentences, saved through ``journey_save``."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import Audience, AuditEntry, Journey
from tests.factories import staff_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_client(client):
    client.force_login(staff_in("Marketers", "marketer"))
    return client


def _url(name: str, journey: Journey) -> str:
    return reverse(f"admin:notifications_journey_builder{name}", args=[journey.pk])


def _post(client, name, journey, data):
    return client.post(_url(name, journey), data, HTTP_HX_REQUEST="true").content.decode()


def test_a_signal_entry_with_conditions_is_built_in_the_builder(marketer_client, make_journey):
    journey = make_journey(publish=False)
    html = marketer_client.get(_url("_entry", journey), {"redraw": "1", "kind": "signal", "signal": "model.post_save",
                                                          "model": "demo_shop.order", "reentry": "once"},
                               HTTP_HX_REQUEST="true").content.decode()
    # Choosing the model narrows the fields and recipients to the order's, on the server.
    assert 'value="paid_at"' in html and 'value="customer.user"' in html
    assert 'data-testid="form-error"' not in html  # a redraw is not a save: no errors yet
    html = _post(marketer_client, "_entry", journey, {
        "kind": "signal", "signal": "model.post_save", "model": "demo_shop.order", "events": ["updated"],
        "changed_field": "status", "changed_to": "paid", "recipient_path": "customer.user",
        "conditions-0-field": "total", "conditions-0-op": "gte", "conditions-0-value": "100",
        "conditions-1-field": "", "conditions-1-op": "eq", "conditions-1-value": "",
        "reentry": "per_period", "reentry_days": "30",
    })
    journey.refresh_from_db()
    assert journey.entry == {"kind": "signal", "signal": "model.post_save", "model": "demo_shop.order",
                             "events": ["updated"], "changed_field": "status", "changed_to": "paid",
                             "conditions": [{"field": "total", "op": "gte", "value": "100"}],
                             "recipient_path": "customer.user"}
    assert (journey.reentry, journey.reentry_days) == ("per_period", 30)
    assert "People enter when demo_shop.order is saved (updated)" in html and "Re-entry: Once per 30 days" in html
    assert AuditEntry.objects.filter(action="journey.edit").exists()
    # Opening it again shows what was saved.
    html = marketer_client.get(_url("_entry", journey), HTTP_HX_REQUEST="true").content.decode()
    assert 'value="100"' in html and '<option value="customer.user" selected>' in html


@pytest.mark.parametrize("data, sentence", [
    ({"kind": "audience", "reentry": "always"}, "Entry: choose an existing audience."),
    ({"kind": "signal", "signal": "model.post_save", "model": "demo_shop.order", "events": ["updated"],
      "recipient_path": "", "reentry": "once"}, "Entry:"),
    ({"kind": "date", "date_model": "demo_shop.order", "date_field": "", "reentry": "once"}, "is not a registered field"),
    ({"kind": "code", "reentry": "per_period"}, "“Once per N days” needs the number of days."),
])
def test_a_bad_entry_is_a_sentence_on_the_form_and_changes_nothing(marketer_client, make_journey, data, sentence):
    journey = make_journey(publish=False)
    html = _post(marketer_client, "_entry", journey, data)
    assert 'data-testid="rule-editor"' in html and sentence in html
    assert Journey.objects.get(pk=journey.pk).entry == {"kind": "code"}


def test_audience_every_time_is_refused_in_words(marketer_client, make_journey):
    journey = make_journey(publish=False)
    audience = Audience.objects.create(name="Fans", kind=Audience.Kind.STATIC)
    html = _post(marketer_client, "_entry", journey, {"kind": "audience", "audience": audience.pk, "reentry": "always"})
    assert "would enter on every scan" in html
    _post(marketer_client, "_entry", journey, {"kind": "audience", "audience": audience.pk, "reentry": "once"})
    assert Journey.objects.get(pk=journey.pk).entry == {"kind": "audience", "audience": audience.pk}


def test_a_yearly_date_entry(marketer_client, make_journey):
    journey = make_journey(publish=False)
    data = {"kind": "date", "date_model": "demo_shop.customer", "date_field": "created_at", "offset_days": "-3",
            "yearly": "on", "date_recipient_path": "user", "reentry": "once"}
    assert "“once ever” would keep them out after the first" in _post(marketer_client, "_entry", journey, data)
    html = _post(marketer_client, "_entry", journey, {**data, "reentry": "always"})
    assert "People enter 3 day(s) before the anniversary of demo_shop.customer.created_at, each year." in html
    assert Journey.objects.get(pk=journey.pk).entry == {
        "kind": "date", "model": "demo_shop.customer", "field": "created_at", "offset_days": -3, "yearly": True,
        "recipient_path": "user"}


def test_goals_and_exit_conditions_are_added_edited_and_deleted(marketer_client, make_journey):
    journey = make_journey(publish=False)
    html = _post(marketer_client, "_rule", journey, {
        "list": "goals", "index": "", "name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
        "conditions-0-field": "status", "conditions-0-op": "eq", "conditions-0-value": "paid",
        "since_field": "paid_at"})
    assert "paid: A demo_shop.order of theirs (customer.user) is saved with status" in html
    _post(marketer_client, "_rule", journey, {"list": "exits", "index": "", "kind": "opted_out"})
    html = _post(marketer_client, "_rule", journey, {
        "list": "exits", "index": "", "kind": "condition", "model": "demo_shop.order",
        "recipient_path": "customer.user", "conditions-0-field": "status", "conditions-0-op": "eq",
        "conditions-0-value": "cancelled"})
    assert 'data-testid="form-error"' not in html
    graph = Journey.objects.get(pk=journey.pk).graph
    assert graph["goals"] == [{"name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
                               "conditions": [{"field": "status", "op": "eq", "value": "paid"}],
                               "since_field": "paid_at"}]
    assert graph["exits"][0] == {"kind": "opted_out"} and graph["exits"][1]["conditions"][0]["value"] == "cancelled"
    # Edit the goal: the form opens with its values, saving replaces it.
    html = marketer_client.get(_url("_rule", journey), {"list": "goals", "index": "0"},
                               HTTP_HX_REQUEST="true").content.decode()
    assert 'value="paid"' in html
    _post(marketer_client, "_rule", journey, {
        "list": "goals", "index": "0", "name": "big order", "model": "demo_shop.order",
        "recipient_path": "customer.user", "conditions-0-field": "total", "conditions-0-op": "gte",
        "conditions-0-value": "500"})
    graph = Journey.objects.get(pk=journey.pk).graph
    assert [g["name"] for g in graph["goals"]] == ["big order"]
    _post(marketer_client, "_rule_delete", journey, {"list": "exits", "index": "0"})
    assert Journey.objects.get(pk=journey.pk).graph["exits"][0]["kind"] == "condition"


@pytest.mark.parametrize("data, sentence", [
    ({"list": "goals", "index": "", "model": "", "recipient_path": ""}, "is not a model registered for triggers"),
    ({"list": "goals", "index": "", "model": "demo_shop.order", "recipient_path": "",
      "conditions-0-field": "status", "conditions-0-op": "gte", "conditions-0-value": "x"}, "Goal"),
    ({"list": "nope", "index": ""}, "Choose goals or exit conditions."),
    ({"list": "goals", "index": "7", "model": "demo_shop.order"}, "no longer exists"),
])
def test_a_bad_goal_is_a_sentence_never_a_500(marketer_client, make_journey, data, sentence):
    journey = make_journey(publish=False)
    before = Journey.objects.get(pk=journey.pk).graph
    html = _post(marketer_client, "_rule", journey, data)
    assert sentence in html
    assert Journey.objects.get(pk=journey.pk).graph == before


def test_an_operator_cannot_edit_the_entry(client, make_journey):
    journey = make_journey(publish=False)
    client.force_login(staff_in("Operators", "op"))
    assert client.post(_url("_entry", journey), {"kind": "code", "reentry": "always"}).status_code == 403
    assert 'data-testid="edit-entry"' not in client.get(_url("", journey)).content.decode()


def test_the_editor_forms_sync_so_a_slow_redraw_cannot_reopen_them(marketer_client, make_journey):
    journey = make_journey(publish=False)
    html = marketer_client.get(_url("_step", journey), {"step": "pause"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-sync="this:replace"' in html and 'hx-sync="closest form:replace"' in html
    html = marketer_client.get(_url("_entry", journey), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-sync="this:replace"' in html and 'hx-sync="closest form:replace"' in html


@pytest.mark.parametrize("name, data", [
    ("_rule", {"list": "goals", "index": "", "name": "refused goal", "model": "demo_shop.order",
               "recipient_path": "customer.user", "conditions-0-field": "status", "conditions-0-op": "eq",
               "conditions-0-value": "paid"}),
    ("_entry", {"kind": "date", "date_model": "user", "date_field": "date_joined", "offset_days": "7",
                "reentry": "always"}),
])
def test_a_save_the_service_refuses_is_a_sentence_on_the_form_beside_the_journey_as_stored(
    marketer_client, make_journey, monkeypatch, name, data
):
    from django.core.exceptions import ValidationError

    from notifications.admin import journey_entry_editor

    journey = make_journey(publish=False)
    before = Journey.objects.get(pk=journey.pk)

    def refuse(**kwargs):
        raise ValidationError("Refused for this test.")

    monkeypatch.setattr(journey_entry_editor, "journey_save", refuse)
    html = _post(marketer_client, name, journey, data)
    assert 'data-testid="rule-editor"' in html and "Refused for this test." in html
    after = Journey.objects.get(pk=journey.pk)
    assert (after.graph, after.entry, after.reentry) == (before.graph, before.entry, before.reentry)
    # The flow beside the form is the journey as stored, not the edit that was refused.
    assert "People enter from code" in html and "refused goal:" not in html and "7 day(s) after" not in html


def test_deleting_a_goal_the_service_refuses_says_why_and_keeps_it(marketer_client, make_journey):
    # The journey's audience was deleted since: every save is refused until the entry is fixed.
    audience = Audience.objects.create(name="Gone soon", kind=Audience.Kind.STATIC)
    goal = {"name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
            "conditions": [{"field": "status", "op": "eq", "value": "paid"}]}
    journey = make_journey(publish=False, reentry=Journey.Reentry.ONCE,
                           entry={"kind": "audience", "audience": audience.pk})
    journey.graph = {**journey.graph, "goals": [goal]}
    journey.save(update_fields=["graph"])
    audience.delete()
    html = _post(marketer_client, "_rule_delete", journey, {"list": "goals", "index": "0"})
    assert 'data-testid="edit-error"' in html and "Entry: choose an existing audience." in html
    assert Journey.objects.get(pk=journey.pk).graph["goals"] == [goal]
