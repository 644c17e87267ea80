"""The analytics in Chromium: charts drawn by the local plotly.js, filters and progress without reloads."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.roles import roles_ensure
from notifications.models import Campaign, CampaignRun, Delivery, DeliveryEvent
from tests.dashboard.analytics_data import build_ledger
from tests.e2e.conftest import browser_type_launch_args  # noqa: F401 - the e2e Chromium setup
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def marketer_page(live_server, page: Page) -> Page:
    roles_ensure()
    user = get_user_model().objects.create_user("mona", "mona@staff.example", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.locator("input[name=username]").fill("mona")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{live_server.url}/admin/")
    return page


def test_charts_filters_and_timeline_without_reloads(live_server, marketer_page: Page):
    page = marketer_page
    ledger = build_ledger()
    cdn = []
    page.on("request", lambda request: cdn.append(request.url) if not request.url.startswith(live_server.url) else None)
    page.goto(f"{live_server.url}/admin/analytics/?start=2026-03-05&end=2026-03-11")
    for chart in ("volume", "funnel", "channels", "opens"):
        expect(page.get_by_test_id(f"chart-{chart}")).to_have_attribute("data-rendered", "true")
    expect(page.get_by_test_id("total-planned")).to_have_attribute("data-value", "10")
    loaded = page.evaluate("performance.timeOrigin")
    page.locator("select[name=channel]").select_option("sms")
    expect(page.get_by_test_id("total-planned")).to_have_attribute("data-value", "3")
    expect(page).to_have_url(re.compile(r"channel=sms"))  # hx-push-url: the filtered view can be shared
    expect(page.get_by_test_id("chart-funnel")).to_have_attribute("data-rendered", "true")
    assert page.evaluate("performance.timeOrigin") == loaded  # htmx swapped the results in place
    assert cdn == []  # plotly.js and everything else came from this server

    page.goto(f"{live_server.url}/admin/analytics/campaigns/{ledger.campaign.pk}/")
    row = page.locator(f'[data-testid=recipient-row][data-delivery="{ledger.deliveries["b"].pk}"]')
    row.locator("summary").click()
    expect(row.get_by_test_id("timeline").locator("li")).to_have_count(6)
    page.locator("#recipients select[name=status]").select_option("failed")
    expect(page.get_by_test_id("recipient-row")).to_have_count(1)


def test_home_progress_reaches_100_percent_without_reload(live_server, marketer_page: Page):
    page = marketer_page
    ledger = build_ledger()
    campaign = Campaign.objects.create(
        name="Flash sale", audience=ledger.campaign.audience, template=ledger.campaign.template, category=ledger.news,
        status=Campaign.Status.RUNNING,
    )
    run = CampaignRun.objects.create(campaign=campaign, occurrence=timezone.now(), status=CampaignRun.Status.SENDING)
    Delivery.objects.bulk_create(
        Delivery(idempotency_key=f"flash:{i}", channel="email", run=run, status="planned") for i in range(4)
    )
    page.goto(f"{live_server.url}/admin/")
    bar = page.locator(f'[data-testid=run-progress][data-run="{run.pk}"]')
    expect(bar).to_have_attribute("data-percent", "0")
    loaded = page.evaluate("performance.timeOrigin")
    deliveries = list(Delivery.objects.filter(run=run))
    Delivery.objects.filter(run=run).update(status="sent", sent_at=timezone.now())
    DeliveryEvent.objects.bulk_create(DeliveryEvent(delivery=d, kind="sent", source="email") for d in deliveries)
    CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED, finished_at=timezone.now())
    expect(bar).to_have_attribute("data-percent", "100", timeout=10_000)
    expect(bar.get_by_test_id("run-percent")).to_have_text("100%")
    assert page.evaluate("performance.timeOrigin") == loaded


def test_page_works_before_plotly_arrives_and_charts_draw_with_the_basic_bundle(live_server, marketer_page: Page):
    """The filters work while plotly.js is still on its way; then every chart draws in its placeholder
    with the basic bundle, without console errors or CSP violations."""
    page = marketer_page
    build_ledger()
    errors, scripts, held = [], [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: scripts.append(request.url) if request.resource_type == "script" else None)
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));"
    )
    page.route("**/static/plotly/**", lambda route: held.append(route))  # plotly.js waits until the test lets it through

    page.goto(f"{live_server.url}/admin/analytics/?start=2026-03-05&end=2026-03-11", wait_until="domcontentloaded")
    funnel = page.get_by_test_id("chart-funnel")
    expect(funnel).to_be_visible()
    placeholder = funnel.bounding_box()
    page.locator("select[name=channel]").select_option("sms")
    expect(page.get_by_test_id("total-planned")).to_have_attribute("data-value", "3")
    expect(page).to_have_url(re.compile(r"channel=sms"))
    assert page.get_by_test_id("chart-funnel").get_attribute("data-rendered") is None

    for _ in range(200):  # charts.js asks for plotly.js once the page has painted
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1 and held[0].request.url.split("/")[-1].startswith("plotly-basic.")
    held[0].continue_()
    for chart in ("volume", "funnel", "channels", "opens"):
        expect(page.get_by_test_id(f"chart-{chart}")).to_have_attribute("data-rendered", "true")
    expect(page.get_by_test_id("chart-funnel").locator("g.point")).to_have_count(5)  # planned → clicked
    expect(page.get_by_test_id("chart-opens").locator("g.point")).to_have_count(7 * 24)  # weekday × hour
    drawn = page.get_by_test_id("chart-funnel").bounding_box()
    assert drawn["height"] == placeholder["height"]  # the placeholder kept the chart's room: nothing moved
    assert not [url for url in scripts if url.endswith(".js") and "/plotly/plotly." in url]  # never the full bundle
    assert errors == []
    assert page.evaluate("window.__violations") == []
