"""The analytics pages and the dashboard home's live parts, as staff see them."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone

from dashboard.analytics import analytics_rollup_refresh
from accounts.roles import roles_ensure
from notifications.models import Campaign, CampaignRun, Delivery, DeliveryEvent
from tests.dashboard.analytics_data import build_ledger

pytestmark = pytest.mark.django_db

WEEK = {"start": "2026-03-05", "end": "2026-03-11"}
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def staff_user(db):
    roles_ensure()

    def make(role: str | None, username: str | None = None):
        user = get_user_model().objects.create_user(username or f"staff-{role}", password="pw", is_staff=True)
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def marketer_client(client, staff_user):
    client.force_login(staff_user("Marketers"))
    return client


@pytest.fixture
def ledger():
    return build_ledger()


def charts_of(html: str) -> dict[str, dict]:
    found = re.findall(r'<script id="chart-(\w+)" type="application/json">(.*?)</script>', html, re.S)
    return {name: json.loads(body) for name, body in found}


def value_of(html: str, testid: str) -> int:
    return int(re.search(rf'data-testid="{testid}" data-value="(\d+)"', html).group(1))


# --- Permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, args", [
    ("dashboard:analytics", []), ("dashboard:campaign", [1]), ("dashboard:campaign_recipients", [1]),
    ("dashboard:delivery_timeline", [1]), ("dashboard:runs_progress", []), ("dashboard:home_kpis", []),
])
def test_anonymous_is_sent_to_the_admin_login_and_operators_are_refused(client, staff_user, name, args):
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    client.force_login(get_user_model().objects.create_user("recipient-only", password="pw"))  # not staff
    assert client.get(url).status_code == 302
    client.force_login(staff_user("Operators"))  # staff, but no view_delivery
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("role", ["Marketers", "Managers"])
def test_marketers_and_managers_see_the_analytics_in_the_sidebar(client, staff_user, role):
    client.force_login(staff_user(role))
    html = client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("dashboard:analytics")}"' in html
    assert client.get(reverse("dashboard:analytics")).status_code == 200


def test_operators_have_no_analytics_on_the_home(client, staff_user):
    client.force_login(staff_user("Operators"))
    html = client.get(reverse("admin:index")).content.decode()
    assert 'data-testid="kpis"' in html
    assert 'data-testid="analytics-kpis"' not in html and 'data-testid="runs-progress"' not in html
    assert f'href="{reverse("dashboard:analytics")}"' not in html


# --- Analytics page --------------------------------------------------------------------------


def test_analytics_page_shows_the_figures_and_charts_from_local_plotly(marketer_client, ledger):
    response = marketer_client.get(reverse("dashboard:analytics"), WEEK)
    html = response.content.decode()
    assert response.status_code == 200
    assert value_of(html, "total-planned") == 10
    assert value_of(html, "total-opened") == 4
    assert value_of(html, "total-unsubscribed") == 1
    charts = charts_of(html)
    assert set(charts) == {"volume", "funnel", "channels", "opens"}
    assert charts["funnel"]["data"][0]["x"] == [10, 7, 6, 4, 2]
    assert sum(charts["opens"]["data"][0]["marker"]["color"]) == 4  # one bar per weekday × hour cell
    assert {trace["type"] for chart in charts.values() for trace in chart["data"]} == {"bar"}  # plotly.js basic draws them
    clicked = next(t for t in charts["volume"]["data"] if t["marker"]["color"] == "#16a34a")
    assert dict(zip(clicked["x"], clicked["y"], strict=True))["2026-03-11"] == 1
    # plotly.js (its basic bundle) comes from our static files, never a CDN; charts.js fetches it.
    assert 'data-plotly-src="/static/plotly/plotly-basic.min.js"' in html and "/static/signalbox/charts.js" in html
    assert "plotly.min.js" not in html
    assert not re.search(r'<script[^>]+src="https?://', html)
    assert finders.find("plotly/plotly-basic.min.js") and finders.find("signalbox/charts.js")
    assert f'data-campaign="{ledger.campaign.pk}" data-total="6"' in html  # "Campaigns in this period"
    assert reverse("dashboard:campaign", args=[ledger.campaign.pk]) in html


def test_filters_by_htmx_return_only_the_results_fragment(marketer_client, ledger):
    response = marketer_client.get(reverse("dashboard:analytics"), {**WEEK, "channel": "sms"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="analytics-body"')
    assert "<html" not in html and "nav-sidebar" not in html
    assert value_of(html, "total-planned") == 3
    assert charts_of(html)["funnel"]["data"][0]["x"] == [3, 1, 1, 1, 1]

    by_campaign = marketer_client.get(reverse("dashboard:analytics"), {**WEEK, "campaign": ledger.campaign.pk}, **HTMX)
    assert value_of(by_campaign.content.decode(), "total-planned") == 6
    by_category = marketer_client.get(reverse("dashboard:analytics"), {**WEEK, "category": ledger.orders.pk}, **HTMX)
    assert value_of(by_category.content.decode(), "total-planned") == 4


def test_a_reversed_date_range_is_an_error_not_a_crash(marketer_client, ledger):
    html = marketer_client.get(reverse("dashboard:analytics"), {"start": "2026-03-11", "end": "2026-03-01"}).content.decode()
    assert "The end is before the start." in html


def test_analytics_page_query_count(marketer_client, ledger, staff_user, django_assert_num_queries):
    analytics_rollup_refresh(since=None)
    Delivery.objects.create(idempotency_key="today", channel="email", run=ledger.run, status="sent")
    marketer_client.get(reverse("dashboard:analytics"))  # warm the session and permission caches
    # session, user, user perms, group perms (4); filter choices: campaigns, categories, journeys (3);
    # figures: state, daily + hourly rollups, today's deliveries, unsubscribes, opens (6);
    # campaign names (1).
    with django_assert_num_queries(14):
        marketer_client.get(reverse("dashboard:analytics"), {"channel": "email"})  # the last 30 days
    # A range that ends before today reads only the rollups.
    with django_assert_num_queries(11):
        marketer_client.get(reverse("dashboard:analytics"), {**WEEK, "channel": "email"})


def test_analytics_page_speaks_chinese(marketer_client, ledger):
    html = marketer_client.get(reverse("dashboard:analytics"), WEEK, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert '<html lang="zh-hans"' in html


# --- Per-campaign page -----------------------------------------------------------------------


def test_campaign_page_has_figures_runs_and_recipients(marketer_client, ledger):
    url = reverse("dashboard:campaign", args=[ledger.campaign.pk])
    html = marketer_client.get(url).content.decode()
    assert value_of(html, "total-planned") == 6
    assert f'data-testid="run-row" data-run="{ledger.run.pk}" data-total="6"' in html
    assert html.count('data-testid="recipient-row"') == 6
    assert reverse("admin:notifications_campaign_change", args=[ledger.campaign.pk]) in html
    partial = marketer_client.get(url, {"channel": "sms"}, **HTMX).content.decode()
    assert partial.lstrip().startswith('<div id="campaign-body"')
    assert value_of(partial, "total-planned") == 0


def test_recipient_table_filters_and_pages(marketer_client, ledger):
    url = reverse("dashboard:campaign_recipients", args=[ledger.campaign.pk])
    failed = marketer_client.get(url, {"status": "failed"}, **HTMX).content.decode()
    assert re.findall(r'data-testid="recipient-row" data-delivery="(\d+)"', failed) == [str(ledger.deliveries["d"].pk)]
    found = marketer_client.get(url, {"q": "f@exa"}, **HTMX).content.decode()
    assert re.findall(r'data-delivery="(\d+)" data-status', found) == [str(ledger.deliveries["f"].pk)]

    # Keyset pages of 25, newest first, without gaps or repeats.
    more = [
        Delivery(idempotency_key=f"more:{i}", channel="email", run=ledger.run, status="sent", address=f"m{i}@example.com")
        for i in range(54)
    ]
    Delivery.objects.bulk_create(more)
    seen, params = [], {}
    for _page in range(3):
        html = marketer_client.get(url, params, **HTMX).content.decode()
        ids = [int(pk) for pk in re.findall(r'data-delivery="(\d+)" data-status', html)]
        seen += ids
        older = re.search(r'"before": "(\d+)"', html)
        if not older:
            break
        params = {"before": older.group(1)}
    assert len(seen) == 60 and len(set(seen)) == 60 and seen == sorted(seen, reverse=True)
    newer = re.search(r'"after": "(\d+)"', html).group(1)
    back = marketer_client.get(url, {"after": newer}, **HTMX).content.decode()
    assert [int(pk) for pk in re.findall(r'data-delivery="(\d+)" data-status', back)] == seen[25:50]


def test_recipient_table_query_count(marketer_client, ledger, django_assert_num_queries):
    url = reverse("dashboard:campaign_recipients", args=[ledger.campaign.pk])
    marketer_client.get(url, **HTMX)
    # session, user, perms (2), campaign, runs, one page of deliveries with their recipients,
    # how far data retention purged.
    with django_assert_num_queries(8):
        marketer_client.get(url, {"status": "delivered", "channel": "email"}, **HTMX)


def test_delivery_timeline_lists_receipts_in_order(marketer_client, ledger):
    b = ledger.deliveries["b"]
    html = marketer_client.get(reverse("dashboard:delivery_timeline", args=[b.pk]), **HTMX).content.decode()
    assert re.findall(r'<li data-kind="(\w+)"', html) == ["created", "sent", "delivered", "opened", "opened", "opened"]
    assert "machine open, not counted" in html


# --- Dashboard home ----------------------------------------------------------------------------


def _sending_run(ledger, *, planned: int = 4) -> CampaignRun:
    campaign = Campaign.objects.create(
        name="Flash sale", audience=ledger.campaign.audience, template=ledger.campaign.template, category=ledger.news,
        status=Campaign.Status.RUNNING,
    )
    run = CampaignRun.objects.create(campaign=campaign, occurrence=timezone.now(), status=CampaignRun.Status.SENDING)
    Delivery.objects.bulk_create(
        Delivery(idempotency_key=f"flash:{i}", channel="email", run=run, status="planned") for i in range(planned)
    )
    return run


def test_home_shows_kpis_runs_failures_and_schedule(marketer_client, ledger):
    run = _sending_run(ledger)
    soon = Campaign.objects.create(
        name="Weekly digest", audience=ledger.campaign.audience, template=ledger.campaign.template,
        category=ledger.news, status=Campaign.Status.SCHEDULED, next_run_at=timezone.now() + timedelta(days=2),
    )
    Campaign.objects.create(
        name="Far away", audience=ledger.campaign.audience, template=ledger.campaign.template, category=ledger.news,
        status=Campaign.Status.SCHEDULED, next_run_at=timezone.now() + timedelta(days=20),
    )
    failed = ledger.deliveries["h"]
    DeliveryEvent.objects.create(delivery=failed, kind="failed", source="twilio", data={"reason": "30005 unknown"})
    html = marketer_client.get(reverse("admin:index")).content.decode()
    assert 'data-testid="analytics-kpis" data-days="7"' in html
    assert f'data-run="{run.pk}" data-percent="0"' in html
    assert 'hx-trigger="every 2s"' in html
    assert f'data-testid="failure-row" data-delivery="{failed.pk}"' in html and "30005 unknown" in html
    assert f'data-campaign="{soon.pk}"' in html and "Far away" not in html
    kpis = marketer_client.get(reverse("dashboard:home_kpis"), {"days": "30"}, **HTMX).content.decode()
    assert kpis.lstrip().startswith('<div id="analytics-kpis"') and 'data-days="30"' in kpis


def test_progress_partial_moves_to_100_percent(marketer_client, ledger):
    run = _sending_run(ledger, planned=4)
    url = reverse("dashboard:runs_progress")
    first = marketer_client.get(url, **HTMX).content.decode()
    assert f'data-run="{run.pk}" data-percent="0"' in first
    assert 'data-testid="run-eta">time left unknown' in first
    now = timezone.now()
    sent = list(Delivery.objects.filter(run=run)[:2])
    Delivery.objects.filter(pk__in=[d.pk for d in sent]).update(status="sent", sent_at=now)
    DeliveryEvent.objects.bulk_create(DeliveryEvent(delivery=d, kind="sent", source="email") for d in sent)
    half = marketer_client.get(url, **HTMX).content.decode()
    assert f'data-run="{run.pk}" data-percent="50"' in half
    assert 'data-testid="run-rate">2/min' in half and "left</span>" in half
    Delivery.objects.filter(run=run, status="planned").update(status="failed", failed_at=now)
    CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED, finished_at=now)
    done = marketer_client.get(url, **HTMX).content.decode()
    assert f'data-run="{run.pk}" data-percent="100" data-status="completed"' in done
    assert 'hx-trigger="every 10s"' in done  # nothing active: poll slowly


def test_progress_partial_query_count(marketer_client, ledger, django_assert_num_queries):
    _sending_run(ledger)
    marketer_client.get(reverse("dashboard:runs_progress"), **HTMX)
    # session, user, perms (2), runs, counts by outcome, why the waiting ones wait, sends in the last minute.
    with django_assert_num_queries(8):
        marketer_client.get(reverse("dashboard:runs_progress"), **HTMX)


@pytest.mark.parametrize(
    "params, start, end",
    [
        ({"end": "2026-03-11"}, "2026-02-10", "2026-03-11"),  # 30 days ending there
        ({"start": "2026-03-05", "end": "2026-03-11"}, "2026-03-05", "2026-03-11"),
        ({"channel": "sms"}, None, None),  # the last 30 days
    ],
)
def test_the_form_shows_the_range_in_use(marketer_client, ledger, params, start, end):
    html = marketer_client.get(reverse("dashboard:analytics"), params, **HTMX).content.decode()
    shown = re.search(r'data-testid="analytics-range" data-start="([\d-]+)" data-end="([\d-]+)"', html).groups()
    inputs = tuple(re.search(rf'name="{name}" value="([\d-]+)"', html).group(1) for name in ("start", "end"))
    assert shown == inputs
    if start:
        assert shown == (start, end)
