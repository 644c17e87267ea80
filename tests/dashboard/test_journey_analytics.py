"""The journey analytics page: its figures are the enrollment, step-run and ledger tables'."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard.analytics.journeys import journey_figures, percentile
from notifications.journeys.engine import journeys_tick
from notifications.journeys.services import journey_enter
from notifications.models import Delivery, Journey, JourneyEnrollment, JourneyStepRun, Preference
from tests.factories import CustomerFactory, OrderFactory, staff_in
from tests.notifications.journeys.conftest import T0, make_journey, make_people, marketing, templates, welcome_graph

__all__ = ["make_journey", "marketing", "templates"]  # the journeys' fixtures, used here too

pytestmark = pytest.mark.django_db

GOAL = {"name": "paid", "model": "demo_shop.order", "recipient_path": "customer.user",
        "conditions": [{"field": "status", "op": "eq", "value": "paid"}], "since_field": "paid_at"}


def split_graph() -> dict:
    """A/B split in front of the welcome journey: both arms go on to the same welcome email."""
    graph = welcome_graph(start="split", goals=[GOAL], exits=[{"kind": "opted_out"}])
    graph["steps"].insert(0, {"id": "split", "type": "split", "arms": [
        {"name": "A", "percent": 50, "next": "welcome"}, {"name": "B", "percent": 50, "next": "welcome"}]})
    return graph


@pytest.fixture
def scenario(make_journey, marketing):
    """40 people in two cohorts an hour apart; some open, some buy, one opts out; a second journey
    whose deliveries share the step id "welcome" and must not be counted."""
    journey = make_journey(key="welcome", graph=split_graph())
    other = make_journey(key="other", graph=welcome_graph())
    buyers = [CustomerFactory() for _ in range(8)]
    people = [c.user_id for c in buyers] + make_people(32)
    journey_enter(journey=journey, user_ids=people[:20], now=T0)
    journey_enter(journey=journey, user_ids=people[20:], now=T0 + timedelta(hours=1))
    journey_enter(journey=other, user_ids=make_people(5, prefix="o"), now=T0)
    journeys_tick(now=T0 + timedelta(hours=1))
    welcome = Delivery.objects.filter(recipient_id__in=people, idempotency_key__contains=":welcome:")
    welcome.filter(recipient_id__in=people[::3]).update(status="opened", sent_at=T0, opened_at=T0 + timedelta(hours=3))
    welcome.filter(recipient_id__in=people[1::3]).update(status="sent", sent_at=T0 + timedelta(hours=1))
    welcome.filter(recipient_id__in=people[::6]).update(status="clicked", clicked_at=T0 + timedelta(hours=4))
    Delivery.objects.exclude(recipient_id__in=people).update(status="clicked", sent_at=T0, clicked_at=T0)
    for i, customer in enumerate(buyers[:5]):
        OrderFactory(customer=customer, status="paid", paid_at=T0 + timedelta(hours=2 + i))
    journeys_tick(now=T0 + timedelta(days=1))  # the buyers convert here, mid-wait
    Preference.objects.create(user_id=people[10], category=marketing, channel="email", enabled=False)
    journeys_tick(now=T0 + timedelta(days=2, hours=1))
    return journey


def test_figures_equal_the_tables(scenario):
    figures = journey_figures(version=scenario.current_version)
    enrollments = JourneyEnrollment.objects.filter(version=scenario.current_version)
    runs = JourneyStepRun.objects.filter(version=scenario.current_version)

    assert figures.entered == enrollments.count() == 40
    assert figures.converted == enrollments.filter(state="converted").count() == 5
    reached = Counter(runs.values_list("step_id", flat=True))
    assert {s.id: s.reached for s in figures.steps} == {s: reached.get(s, 0) for s in
                                                          ("split", "welcome", "pause", "opened?", "tip", "reminder")}
    assert [s.id for s in figures.steps] == ["split", "welcome", "pause", "opened?", "tip", "reminder"]
    assert figures.steps[3].outcomes == dict(Counter(runs.filter(step_id="opened?").values_list("outcome", flat=True)))
    exits = Counter(enrollments.exclude(state__in=["active", "converted"]).values_list("state", "state_reason"))
    assert {(state, reason): n for state, reason, n in figures.exits} == dict(exits)
    assert exits[("exited", "opted_out")] == 1

    spans = [f - e for e, f in enrollments.filter(state="converted").values_list("entered_at", "finished_at")]
    assert figures.time_to_convert_median == statistics.median(spans)
    assert figures.time_to_convert_p90 == sorted(spans)[-1]  # nearest rank of 5 values

    arms = {arm.name: arm for split in figures.splits for arm in split.arms}
    taken = Counter(runs.filter(step_id="split").values_list("outcome", flat=True))
    converted = Counter(runs.filter(step_id="split", enrollment__state="converted").values_list("outcome", flat=True))
    assert {n: (a.entered, a.converted) for n, a in arms.items()} == {n: (taken[n], converted[n]) for n in ("A", "B")}
    assert figures.splits[0].note  # the two-proportion sentence

    sends = {send.step_id: send.totals for send in figures.sends}
    mine = Delivery.objects.filter(recipient__journey_enrollments__version=scenario.current_version)
    welcome = mine.filter(idempotency_key__contains=":welcome:")
    assert sends["welcome"].planned == welcome.count() == 40
    assert sends["welcome"].sent == welcome.exclude(sent_at=None).count()
    assert sends["welcome"].opened == welcome.filter(status__in=["opened", "clicked"]).count()
    assert sends["welcome"].clicked == welcome.filter(status="clicked").count() > 0
    for step in ("tip", "reminder"):
        assert sends[step].planned == mine.filter(idempotency_key__contains=f":{step}:").count() > 0


def test_percentile_is_the_nearest_rank():
    values = [timedelta(hours=h) for h in (5, 1, 3, 2, 4)]
    assert percentile(values, 0.5) == timedelta(hours=3)
    assert percentile(values, 0.9) == timedelta(hours=5)
    assert percentile(values[:4], 0.5) == timedelta(hours=2, minutes=30)
    assert percentile([], 0.5) is None


@pytest.fixture
def marketer_client(client, db):
    client.force_login(staff_in("Marketers", "jmarketer"))
    return client


def test_the_page_shows_the_figures_in_a_pinned_number_of_queries(scenario, marketer_client,
                                                                  django_assert_num_queries):
    url = reverse("dashboard:journey", args=[scenario.pk])
    marketer_client.get(url)  # warm the session and site caches
    # session, user, user perms, group perms (4); journey, versions (2); enrollments by state,
    # step runs, exits, conversion times, split arms (5); one per send step: welcome, tip, reminder (3).
    with django_assert_num_queries(14):
        html = marketer_client.get(url).content.decode()
    assert re.search(r'data-testid="total-entered" data-value="40"', html)
    assert re.search(r'data-testid="total-converted" data-value="5"', html)
    assert 'data-testid="send-row" data-step="welcome"' in html
    assert 'data-testid="chart-journey-funnel"' in html
    assert "opted out of the category" in html  # why people ended, in words
    with django_assert_num_queries(5):  # session, user, perms (4); journeys with their counts (1)
        listing = marketer_client.get(reverse("dashboard:journeys")).content.decode()
    assert 'data-journey="welcome" data-entered="40"' in listing


def test_the_query_count_does_not_grow_with_people(make_journey, marketer_client):
    journey = make_journey(key="welcome", graph=split_graph())
    url = reverse("dashboard:journey", args=[journey.pk])
    journey_enter(journey=journey, user_ids=make_people(3), now=T0)
    journeys_tick(now=T0)
    marketer_client.get(url)
    with CaptureQueriesContext(connection) as small:
        marketer_client.get(url)
    journey_enter(journey=journey, user_ids=make_people(60, prefix="more"), now=T0)
    journeys_tick(now=T0)
    with CaptureQueriesContext(connection) as large:
        marketer_client.get(url)
    assert len(large) == len(small)


def test_the_page_in_chinese(scenario, marketer_client):
    html = marketer_client.get(reverse("dashboard:journey", args=[scenario.pk]),
                               HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert '<html lang="zh-hans"' in html
    assert "转化" in html and "按步骤的漏斗" in html


def test_an_unpublished_journey_and_an_unknown_one(make_journey, marketer_client):
    draft = make_journey(key="draft", publish=False)
    html = marketer_client.get(reverse("dashboard:journey", args=[draft.pk])).content.decode()
    assert 'data-testid="journey-empty"' in html
    assert marketer_client.get(reverse("dashboard:journey", args=[draft.pk + 999])).status_code == 404


def test_another_version_is_chosen_by_number_and_htmx_gets_the_body(scenario, marketer_client):
    url = reverse("dashboard:journey", args=[scenario.pk])
    response = marketer_client.get(url, {"version": "1"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="journey-body"')
    assert marketer_client.get(url, {"version": "nope"}).status_code == 200


def test_operators_may_not_see_it(scenario, client):
    client.force_login(staff_in("Operators", "joperator"))
    assert client.get(reverse("dashboard:journey", args=[scenario.pk])).status_code == 403


# --- Journeys in the analytics filters and the exports ---------------------------------------------


def _journey_deliveries(journey):
    return Delivery.objects.filter(recipient__journey_enrollments__journey=journey,
                                   idempotency_key__startswith="journey:").distinct()


def test_the_analytics_journey_filter_counts_only_that_journeys_messages(scenario, marketer_client):
    expected = _journey_deliveries(scenario)
    days = {"start": "2026-03-01", "end": timezone.localdate().isoformat()}
    html = marketer_client.get(reverse("dashboard:analytics"), {**days, "journey": scenario.pk}).content.decode()
    assert f'<option value="{scenario.pk}" selected' in html
    planned = int(re.search(r'data-testid="total-planned" data-value="(\d+)"', html).group(1))
    assert planned == expected.count() > 40
    clicked = int(re.search(r'data-testid="total-clicked" data-value="(\d+)"', html).group(1))
    assert clicked == expected.filter(status="clicked").count()  # the other journey's clicks are not in it
    everything = marketer_client.get(reverse("dashboard:analytics"), days).content.decode()
    assert int(re.search(r'data-testid="total-planned" data-value="(\d+)"', everything).group(1)) > planned
    bad = marketer_client.get(reverse("dashboard:analytics"), {**days, "journey": "nope"})
    assert bad.status_code == 200


def test_exports_carry_the_journey_and_step_and_filter_by_journey(scenario):
    from dashboard.reports.data import ReportFilters
    from dashboard.reports.exports import export_table
    from notifications.models import DeliveryEvent

    expected = _journey_deliveries(scenario)
    table = export_table(kind="deliveries", filters=ReportFilters(journey_id=scenario.pk))
    rows = [dict(zip(table.headers, row, strict=True)) for row in table.rows]
    assert len(rows) == expected.count()
    assert {row["Journey"] for row in rows} == {"Welcome"}
    assert Counter(row["Journey step"] for row in rows) == Counter(
        key.split(":")[2] for key in expected.values_list("idempotency_key", flat=True))
    assert table.headers[-2:] == ["Journey", "Journey step"]  # last: earlier columns keep their letters

    everything = export_table(kind="deliveries", filters=ReportFilters())
    journeys = Counter(dict(zip(everything.headers, row, strict=True))["Journey"] for row in everything.rows)
    other = _journey_deliveries(Journey.objects.get(key="other")).count()
    assert journeys == {"Welcome": expected.count(), "Other": other} and other == 10  # welcome + tip/reminder

    delivery = expected.filter(idempotency_key__contains=":welcome:").first()
    DeliveryEvent.objects.create(delivery=delivery, kind="opened", source="pixel", occurred_at=T0)
    receipts = export_table(kind="receipts", filters=ReportFilters(journey_id=scenario.pk))
    [receipt] = [r for r in (dict(zip(receipts.headers, row, strict=True)) for row in receipts.rows)
                 if r["Kind"] == "opened"]
    assert (receipt["Delivery id"], receipt["Journey"], receipt["Journey step"]) == (delivery.pk, "Welcome", "welcome")


def test_the_export_form_offers_published_journeys(scenario):
    from dashboard.reports.forms import ExportForm

    form = ExportForm({"kind": "deliveries", "format": "csv", "journey": scenario.pk})
    assert form.is_valid(), form.errors
    assert form.filters().journey_id == scenario.pk
    assert not ExportForm({"kind": "deliveries", "format": "csv", "journey": "x"}).is_valid()


def test_the_journey_filter_costs_the_same_queries_whatever_the_people(make_journey, marketer_client):
    journey = make_journey(key="welcome", graph=split_graph())
    query = {"start": "2026-03-01", "end": timezone.localdate().isoformat(), "journey": journey.pk}
    journey_enter(journey=journey, user_ids=make_people(3), now=T0)
    journeys_tick(now=T0)
    marketer_client.get(reverse("dashboard:analytics"), query)
    with CaptureQueriesContext(connection) as small:
        marketer_client.get(reverse("dashboard:analytics"), query)
    journey_enter(journey=journey, user_ids=make_people(60, prefix="more"), now=T0)
    journeys_tick(now=T0)
    with CaptureQueriesContext(connection) as large:
        html = marketer_client.get(reverse("dashboard:analytics"), query).content.decode()
    assert len(large) == len(small)
    assert 'data-testid="total-planned" data-value="63"' in html
    assert not any(" LIKE " in q["sql"].upper() for q in large.captured_queries if "delivery" in q["sql"].lower())


def test_the_journey_builder_links_to_its_analytics(scenario, marketer_client):
    html = marketer_client.get(reverse("admin:notifications_journey_builder", args=[scenario.pk])).content.decode()
    assert f'href="{reverse("dashboard:journey", args=[scenario.pk])}" data-testid="journey-analytics-link"' in html
