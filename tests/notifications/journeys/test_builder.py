"""The journey builder: each card action re-renders the flow, bad input is a form error, publish
is refused while problems exist, simulate writes nothing, and the counters cost a fixed number
of queries."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications.journeys.builder import Slot, dom_id, step_delete, step_insert, step_update
from notifications.journeys.engine import journeys_tick
from notifications.journeys.graph import graph_problems
from notifications.journeys.services import journey_enter
from notifications.models import AuditEntry, Delivery, Journey, JourneyEnrollment, JourneyStepRun, Notification
from tests.factories import UserFactory, staff_in

from .conftest import T0, welcome_graph

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_client(client):
    client.force_login(staff_in("Marketers", "marketer"))
    return client


def _url(name: str, journey: Journey) -> str:
    return reverse(f"admin:notifications_journey_builder{name}", args=[journey.pk])


def _draft(make_journey, graph=None) -> Journey:
    return make_journey(key="cart", graph=graph or {"start": "", "steps": []}, publish=False)


def _add(client, journey, *, kind, parent="", arm="", **fields):
    data = {"kind": kind, "parent": parent, "arm": arm, **{f"step-{k}": v for k, v in fields.items()}}
    return client.post(_url("_step", journey), data, HTTP_HX_REQUEST="true")


def test_the_builder_page_draws_the_draft_as_cards_with_branch_arms(marketer_client, make_journey):
    journey = make_journey(publish=False)
    page = marketer_client.get(_url("", journey))
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('data-testid="card"') == 5
    assert "Send “J Welcome” by Email" in html
    assert "Wait 2 days" in html
    assert "If the message of welcome was opened" in html
    assert html.count('data-testid="arm"') == 2
    assert 'data-testid="no-problems"' in html


def test_adding_each_kind_of_step_builds_a_graph_that_can_be_published(marketer_client, make_journey):
    journey = _draft(make_journey)
    response = _add(marketer_client, journey, kind="send", template="j-welcome", channels=["inapp"])
    assert response.status_code == 200 and 'data-step="send-1"' in response.content.decode()
    assert _add(marketer_client, journey, kind="wait", parent="send-1", arm="next", mode="duration",
                hours="6").status_code == 200
    assert _add(marketer_client, journey, kind="branch", parent="wait-1", arm="next", on="receipt",
                step="send-1", event="opened", within_hours="6").status_code == 200
    assert _add(marketer_client, journey, kind="send", parent="branch-1", arm="no", template="j-reminder",
                channels=["email"], category="").status_code == 200
    assert _add(marketer_client, journey, kind="split", parent="branch-1", arm="yes", arm_1_name="A",
                arm_1_percent="70", arm_2_name="B", arm_2_percent="30").status_code == 200
    journey.refresh_from_db()
    graph = journey.graph
    steps = {s["id"]: s for s in graph["steps"]}
    assert graph["start"] == "send-1"
    assert steps["send-1"] == {"id": "send-1", "type": "send", "template": "j-welcome", "channels": ["inapp"],
                               "next": "wait-1"}
    assert steps["wait-1"]["hours"] == 6 and steps["wait-1"]["next"] == "branch-1"
    assert steps["branch-1"]["if"] == {"step": "send-1", "event": "opened", "within_hours": 6}
    assert steps["branch-1"]["no"] == "send-2" and steps["send-2"]["next"] == "exit-2"
    assert [a["percent"] for a in steps["split-1"]["arms"]] == [70, 30]
    assert graph_problems(graph) == []
    assert AuditEntry.objects.filter(action="journey.edit").count() == 5

    response = marketer_client.post(_url("_publish", journey), HTTP_HX_REQUEST="true")
    assert 'data-testid="published"' in response.content.decode()
    journey.refresh_from_db()
    assert journey.status == "live" and journey.current_version.number == 1


def test_editing_a_live_journey_changes_only_the_draft(marketer_client, make_journey):
    journey = make_journey()
    response = marketer_client.post(_url("_step", journey), {"step": "pause", "step-mode": "time",
                                                            "step-until_time": "09:30"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Wait until 09:30 in their time zone" in response.content.decode()
    journey.refresh_from_db()
    pause = next(s for s in journey.graph["steps"] if s["id"] == "pause")
    assert pause == {"id": "pause", "type": "wait", "until_time": "09:30", "next": "opened?"}
    version_pause = next(s for s in journey.current_version.graph["steps"] if s["id"] == "pause")
    assert version_pause["days"] == 2


def test_a_new_step_never_takes_the_id_of_a_published_one(marketer_client, make_journey):
    journey = _draft(make_journey)
    _add(marketer_client, journey, kind="send", template="j-welcome", channels=["inapp"])
    marketer_client.post(_url("_publish", journey))
    marketer_client.post(_url("_delete", journey), {"step": "send-1"})
    _add(marketer_client, journey, kind="send", template="j-tip", channels=["inapp"])
    journey.refresh_from_db()
    # A card called send-1 would show the published send-1's counters for another message.
    assert [s["id"] for s in journey.graph["steps"]] == ["send-2"]


def test_a_step_form_shows_the_fields_of_its_switch(marketer_client, make_journey):
    journey = make_journey(publish=False)
    url = _url("_step", journey)
    wait = marketer_client.get(url, {"kind": "wait", "parent": "tip", "arm": "next"}).content.decode()
    assert 'name="step-days"' in wait and 'name="step-until_time"' not in wait
    redrawn = marketer_client.get(url, {"kind": "wait", "parent": "tip", "arm": "next", "step-mode": "time",
                                        "step-days": "3"}).content.decode()
    assert 'name="step-until_time"' in redrawn and 'name="step-days"' not in redrawn
    branch = marketer_client.get(url, {"step": "opened?"}).content.decode()
    assert 'name="step-event"' in branch and 'name="step-field"' not in branch
    send = marketer_client.get(url, {"kind": "send", "parent": "tip", "arm": "next", "step-template": "j-tip",
                                     "step-channels": ["email", "inapp"], "step-fallback": "on"})
    assert send.status_code == 200


def test_editing_a_send_and_a_branch_on_a_field(marketer_client, make_journey):
    journey = make_journey(publish=False)
    marketer_client.post(_url("_step", journey), {"step": "welcome", "step-template": "j-other",
                                                  "step-channels": ["email", "inapp"], "step-fallback": "on"})
    marketer_client.post(_url("_step", journey), {"step": "opened?", "step-on": "field",
                                                  "step-field": "context.instance.total", "step-op": "gte",
                                                  "step-value": "100"})
    journey.refresh_from_db()
    steps = {s["id"]: s for s in journey.graph["steps"]}
    assert steps["welcome"]["template"] == "j-other" and steps["welcome"]["fallback"] is True
    assert steps["welcome"]["next"] == "pause"
    assert steps["opened?"]["if"] == {"field": "context.instance.total", "op": "gte", "value": 100}
    assert steps["opened?"]["yes"] == "tip"
    marketer_client.post(_url("_step", journey), {"step": "opened?", "step-on": "field", "step-field": "user.email",
                                                  "step-op": "contains", "step-value": "1e999"})
    journey.refresh_from_db()
    assert next(s for s in journey.graph["steps"] if s["id"] == "opened?")["if"]["value"] == "1e999"


@pytest.mark.parametrize("kind, fields, error", [
    ("send", {"template": "", "channels": []}, "This field is required."),
    ("send", {"template": "nope", "channels": ["email"]}, "Select a valid choice"),
    ("wait", {"mode": "duration"}, "Give days, hours or minutes."),
    ("wait", {"mode": "time", "until_time": "25:00"}, "A time of day such as 09:30."),
    ("wait", {"mode": "date", "until_field": "birthday"}, "Write user.&lt;field&gt;"),
    ("branch", {"on": "receipt"}, "Choose the send step"),
    ("branch", {"on": "field", "field": "x", "op": "eq"}, "Write user.&lt;field&gt;"),
    ("split", {"arm_1_name": "A", "arm_1_percent": "50", "arm_2_name": "B", "arm_2_percent": "40"}, "not 100"),
    ("split", {"arm_1_name": "A", "arm_1_percent": "abc"}, "Enter a whole number."),
])
def test_bad_input_is_a_form_error_and_changes_nothing(marketer_client, make_journey, kind, fields, error):
    journey = make_journey(publish=False)
    before = journey.graph
    response = _add(marketer_client, journey, kind=kind, parent="tip", arm="next", **fields)
    assert response.status_code == 200
    assert error in response.content.decode()
    journey.refresh_from_db()
    assert journey.graph == before


@pytest.mark.parametrize("data", [
    {"kind": "teleport"},
    {"kind": "send", "parent": "nowhere", "arm": "next", "step-template": "j-tip", "step-channels": ["email"]},
    {"kind": "send", "parent": "opened?", "arm": "next", "step-template": "j-tip", "step-channels": ["email"]},
    {"kind": "exit", "parent": "welcome", "arm": "next"},
    {"step": "ghost"},
    {"kind": "send", "parent": "<script>", "arm": "x"},
])
def test_impossible_edits_are_refused_in_words_never_a_500(marketer_client, make_journey, data):
    journey = make_journey(publish=False)
    before = journey.graph
    response = marketer_client.post(_url("_step", journey), data)
    assert response.status_code == 200
    assert 'data-testid="edit-error"' in response.content.decode() or 'data-testid="form-error"' in response.content.decode()
    journey.refresh_from_db()
    assert journey.graph == before
    assert marketer_client.get(_url("_step", journey), data).status_code == 200


def test_deleting_cards(marketer_client, make_journey):
    journey = make_journey(publish=False)
    response = marketer_client.post(_url("_delete", journey), {"step": "pause"})
    assert response.status_code == 200
    journey.refresh_from_db()
    assert {s["id"] for s in journey.graph["steps"]} == {"welcome", "opened?", "tip", "reminder"}
    assert next(s for s in journey.graph["steps"] if s["id"] == "welcome")["next"] == "opened?"
    # A branch takes its "no" arm along; the "yes" arm moves up.
    marketer_client.post(_url("_delete", journey), {"step": "opened?"})
    journey.refresh_from_db()
    assert {s["id"] for s in journey.graph["steps"]} == {"welcome", "tip"}
    marketer_client.post(_url("_delete", journey), {"step": "welcome"})
    journey.refresh_from_db()
    assert journey.graph["start"] == "tip"
    assert marketer_client.post(_url("_delete", journey), {"step": "ghost"}).status_code == 200
    assert marketer_client.get(_url("_delete", journey)).status_code == 405


def test_problems_are_shown_on_their_card_and_publish_is_refused(marketer_client, make_journey):
    graph = welcome_graph()
    graph["steps"][3]["template"] = "missing-template"
    journey = make_journey(publish=False, graph=graph)
    html = marketer_client.get(_url("", journey)).content.decode()
    assert 'data-testid="problems"' in html and "there is no template missing-template" in html
    card = html[html.index('data-step="tip"'):]
    card = card[:card.index('data-testid="card-counts"')]
    assert 'data-problems="yes"' in card and "missing-template" in card
    publish = html[html.index('data-testid="publish"'):]
    assert " disabled " in publish[:publish.index(">")] + " "
    response = marketer_client.post(_url("_publish", journey))
    assert response.status_code == 200 and 'data-testid="publish-error"' in response.content.decode()
    journey.refresh_from_db()
    assert journey.status == "draft" and journey.current_version is None


def test_a_manager_reads_the_builder_without_edit_or_publish_buttons(client, make_journey):
    journey = make_journey(publish=False)
    client.force_login(staff_in("Managers", "manager"))
    html = client.get(_url("", journey)).content.decode()
    assert 'data-testid="card"' in html
    assert 'data-testid="edit-step"' not in html and 'data-testid="add-step"' not in html
    assert 'data-testid="publish"' not in html
    assert client.post(_url("_step", journey), {"kind": "exit", "parent": "tip", "arm": "next"}).status_code == 403


def test_roles_an_operator_reads_but_neither_edits_nor_publishes(client, make_journey):
    journey = make_journey(publish=False)
    client.force_login(staff_in("Operators", "operator"))
    page = client.get(_url("", journey))
    if page.status_code == 200:
        assert 'data-testid="edit-step"' not in page.content.decode()
    assert client.post(_url("_step", journey), {"kind": "exit", "parent": "tip", "arm": "next"}).status_code == 403
    assert client.post(_url("_delete", journey), {"step": "tip"}).status_code == 403
    assert client.post(_url("_publish", journey)).status_code == 403
    journey.refresh_from_db()
    assert journey.status == "draft" and len(journey.graph["steps"]) == 5


def test_simulate_walks_a_real_person_and_writes_nothing(marketer_client, make_journey, django_assert_max_num_queries):
    journey = make_journey(publish=False)
    UserFactory(username="ada", email="ada@shop.example", first_name="Ada")
    counts = lambda: (Delivery.objects.count(), Notification.objects.count(), JourneyEnrollment.objects.count(),  # noqa: E731
                      JourneyStepRun.objects.count(), AuditEntry.objects.count())
    before = counts()
    with CaptureQueriesContext(connection) as queries:
        response = marketer_client.get(_url("_simulate", journey), {"person": "ada@shop.example", "context": ""})
    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
              and "django_session" not in q["sql"]]
    assert writes == []
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-step="welcome" data-taken="yes"' in html
    assert 'data-step="reminder" data-taken="yes"' in html and 'data-step="tip" data-taken="no"' in html
    assert "j-welcome subject" in html  # the rendered email subject
    assert "would be sent to ada@shop.example" in html
    assert "They would wait until" in html
    engaged = marketer_client.get(_url("_simulate", journey), {"person": "ada", "engaged": "on"}).content.decode()
    assert 'data-step="tip" data-taken="yes"' in engaged and 'data-step="reminder" data-taken="no"' in engaged
    assert "would be delivered to their inbox" in engaged and "j-tip title" in engaged
    assert counts() == before and mail.outbox == []


def test_simulate_shows_what_stops_a_message_and_bad_input(marketer_client, make_journey):
    from notifications.models import Preference

    journey = make_journey(publish=False)
    bob = UserFactory(username="bob", email="bob@example.com")
    Preference.objects.create(user=bob, category=journey.category, channel="email", enabled=False)
    html = marketer_client.get(_url("_simulate", journey), {"person": "bob"}).content.decode()
    assert "opted out" in html
    assert "Nobody has this username" in marketer_client.get(_url("_simulate", journey), {"person": "zed"}).content.decode()
    bad = marketer_client.get(_url("_simulate", journey), {"person": "bob", "context": "[1"})
    assert bad.status_code == 200 and "This is not JSON." in bad.content.decode()
    UserFactory(username="bobby", email="bobby@example.com")
    many = marketer_client.get(_url("_simulate", journey), {"person": "bo"}).content.decode()
    assert 'data-testid="candidates"' in many


def test_simulate_branches_on_a_context_field(marketer_client, make_journey):
    graph = welcome_graph()
    graph["steps"][2]["if"] = {"field": "context.instance.total", "op": "gte", "value": 100}
    journey = make_journey(publish=False, graph=graph)
    UserFactory(username="cy")
    html = marketer_client.get(_url("_simulate", journey), {
        "person": "cy", "context": json.dumps({"instance": {"total": "120.00"}})}).content.decode()
    assert 'data-step="tip" data-taken="yes"' in html and "the condition holds" in html


def test_counters_move_and_cost_a_fixed_number_of_queries(marketer_client, make_journey, django_assert_num_queries):
    journey = make_journey()
    people = [UserFactory(username=f"c{i}").pk for i in range(3)]
    journey_enter(journey=journey, user_ids=people, now=T0)
    journeys_tick(now=T0)
    url = _url("_counters", journey)
    marketer_client.get(url)  # sessions and permissions warmed
    with django_assert_num_queries(10) as captured:
        response = marketer_client.get(url)
    html = response.content.decode()
    assert response.status_code == 200 and 'hx-swap-oob="true"' in html
    pause = html[html.index("counts-" + dom_id("pause")):]
    assert "in step now <strong>3</strong>" in pause[:400]
    # More steps and people: the same number of queries.
    n_queries = len(captured.captured_queries)
    longer = welcome_graph()
    longer["steps"][3]["next"] = "later"
    longer["steps"] += [{"id": "later", "type": "wait", "days": 1, "next": "tip-again"},
                        {"id": "tip-again", "type": "send", "template": "j-tip", "channels": ["inapp"]}]
    bigger = make_journey(key="bigger", graph=longer)
    journey_enter(journey=bigger, user_ids=[UserFactory(username=f"d{i}").pk for i in range(6)], now=T0)
    journeys_tick(now=T0)
    marketer_client.get(_url("_counters", bigger))
    with django_assert_num_queries(n_queries):
        marketer_client.get(_url("_counters", bigger))


def test_graph_edits_keep_links():
    graph = {"start": "", "steps": []}
    graph, first = step_insert(graph, slot=Slot("", ""), fields={"type": "send", "template": "t", "channels": ["email"]})
    graph, second = step_insert(graph, slot=Slot("", ""), fields={"type": "wait", "days": 1})
    assert graph["start"] == second and graph["steps"][-1]["next"] == first
    graph, split = step_insert(graph, slot=Slot(second, "next"),
                               fields={"type": "split", "arms": [{"name": "A", "percent": 50}, {"name": "B", "percent": 50}]})
    arms = next(s for s in graph["steps"] if s["id"] == split)["arms"]
    assert arms[0]["next"] == first and arms[1]["next"].startswith("exit-")
    graph = step_update(graph, step_id=split, fields={"type": "split", "arms": [{"name": "A", "percent": 100}]})
    assert {s["id"] for s in graph["steps"]} == {first, second, split}
    graph = step_delete(graph, step_id=split)
    assert next(s for s in graph["steps"] if s["id"] == second)["next"] == first
    assert graph_problems(graph, check_database=False) == []


def test_cards_speak_simplified_chinese():
    from django.utils import translation

    from notifications.journeys.builder import step_words

    with translation.override("zh-hans"):
        assert step_words({"type": "wait", "days": 2}, templates={}, categories={}) == "等待 2 天"
        assert step_words({"type": "exit"}, templates={}, categories={}) == "退出旅程"


def test_simulate_honours_goals_and_exit_conditions(marketer_client, make_journey):
    from notifications.models import Preference

    goal = {"name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
            "conditions": [{"field": "status", "op": "eq", "value": "paid"}]}
    journey = make_journey(publish=False, graph=welcome_graph(goals=[goal], exits=[{"kind": "opted_out"}]))
    UserFactory(username="dee", email="dee@example.com")
    page = marketer_client.get(_url("", journey)).content.decode()
    assert "they reach the goal “paid”" in page  # offered in the panel

    html = marketer_client.get(_url("_simulate", journey), {"person": "dee", "assume": "goal:0"}).content.decode()
    assert 'data-step="welcome" data-taken="yes"' in html and 'data-step="pause" data-taken="yes"' in html
    assert 'data-step="reminder" data-taken="no"' in html and 'data-step="tip" data-taken="no"' in html
    assert "While waiting at pause they reach the goal “paid”: their journey ends as converted" in html
    plain = marketer_client.get(_url("_simulate", journey), {"person": "dee"}).content.decode()
    assert 'data-step="reminder" data-taken="yes"' in plain  # nothing assumed: the whole path

    dee = UserFactory._meta.model.objects.get(username="dee")
    Preference.objects.create(user=dee, category=journey.category, channel="sms", enabled=False)
    html = marketer_client.get(_url("_simulate", journey), {"person": "dee"}).content.decode()
    assert "They leave at once, before the first step: they opted out" in html
    assert 'data-taken="yes"' not in html


def test_deleting_a_card_the_service_refuses_says_why_and_keeps_it(marketer_client, make_journey):
    from notifications.models import Audience

    audience = Audience.objects.create(name="Gone soon", kind=Audience.Kind.STATIC)
    journey = make_journey(publish=False, reentry=Journey.Reentry.ONCE,
                           entry={"kind": "audience", "audience": audience.pk})
    before = Journey.objects.get(pk=journey.pk).graph
    audience.delete()  # every save is refused until the entry is fixed
    response = marketer_client.post(_url("_delete", journey), {"step": "pause"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="edit-error"' in html and "Entry: choose an existing audience." in html
    assert Journey.objects.get(pk=journey.pk).graph == before


def test_a_step_edit_the_service_refuses_is_a_sentence_beside_the_journey_as_stored(marketer_client, make_journey):
    from notifications.models import Audience

    audience = Audience.objects.create(name="Gone soon", kind=Audience.Kind.STATIC)
    journey = make_journey(publish=False, reentry=Journey.Reentry.ONCE,
                           entry={"kind": "audience", "audience": audience.pk})
    before = Journey.objects.get(pk=journey.pk).graph
    audience.delete()
    html = marketer_client.post(_url("_step", journey), {"step": "pause", "step-mode": "time",
                                                        "step-until_time": "09:30"},
                                HTTP_HX_REQUEST="true").content.decode()
    assert "Entry: choose an existing audience." in html
    assert "Wait until 09:30 in their time zone" not in html  # the flow shows what was kept, not the edit
    assert Journey.objects.get(pk=journey.pk).graph == before
