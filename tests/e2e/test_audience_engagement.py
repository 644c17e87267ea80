"""Issue 13 point 4 in Chromium: a Marketer builds engagement conditions in the rule builder, with
the inputs each needs (a text and a number of days; days and a channel; a campaign from a list),
and the live count follows every edit; the saved rules are what was built. Any console error or
page error fails the test. Screenshot: var/screenshots/audience-engagement.png."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Browser, expect

from notifications.models import Audience, Campaign, CampaignRun
from notifications.receipts import tracking
from tests.factories import PASSWORD, CategoryFactory, DeliveryFactory, MessageTemplateFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path("var/screenshots")


def ago(days: int):
    return timezone.now() - timedelta(days=days)


def test_marketer_builds_engagement_conditions_with_a_live_count(browser: Browser, live_server):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    ada, bob, cy = (UserFactory(username=name) for name in ("ada", "bob", "cy"))
    audience = Audience.objects.create(name="Everyone static", kind="static")
    campaign = Campaign.objects.create(name="Spring sale", audience=audience, template=MessageTemplateFactory(),
                                       category=CategoryFactory(), status="completed")
    run = CampaignRun.objects.create(campaign=campaign, occurrence=ago(5), status="completed")
    mail = DeliveryFactory(recipient=ada, run=run, status="sent", sent_at=ago(3), created_at=ago(3))
    link = mail.links.create(url="https://shop.example/pricing", position=0)
    tracking.click_record(link=link)  # ada clicked the pricing link
    DeliveryFactory(recipient=bob, run=run, status="delivered", sent_at=ago(20), created_at=ago(20))

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(f"{m.text} {m.location}"))
    page.on("pageerror", lambda e: errors.append(f"{e.name}: {e.message}"))
    page.goto("/admin/login/?next=/admin/")
    page.locator("input[name=username]").fill("root")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()

    page.goto("/admin/notifications/audience/add/")
    page.locator("input[name=name]").fill("Pricing clickers")
    count = page.get_by_test_id("audience-count")
    expect(count).to_have_attribute("data-count", "4", timeout=5000)  # everyone active: root, ada, bob, cy

    page.get_by_role("button", name="+ Add condition").click()
    row = page.locator(".sb-condition").first
    row.get_by_label("Field").select_option("engagement.clicked")
    expect(row.get_by_label("Operator")).to_have_value("contains_within_days")
    row.get_by_label("Value").fill("pricing")
    expect(count).to_have_attribute("data-count", "1", timeout=5000)  # ada
    row.get_by_label("days").fill("1")  # her click was just now: still ada
    expect(count).to_have_attribute("data-count", "1", timeout=5000)
    row.get_by_label("Operator").select_option("not_contains_within_days")
    expect(count).to_have_attribute("data-count", "3", timeout=5000)  # same inputs, kept: all but ada
    expect(row.get_by_label("Value")).to_have_value("pricing")

    # Days and a channel: nobody was sent an email in the last 14 days but ada.
    row.get_by_label("Field").select_option("engagement.sent")
    row.get_by_label("Operator").select_option("not_within_days")
    row.get_by_label("days").fill("14")
    row.get_by_label("Channel").select_option("email")
    expect(count).to_have_attribute("data-count", "3", timeout=5000)
    row.get_by_label("Channel").select_option("sms")  # nobody got an SMS
    expect(count).to_have_attribute("data-count", "4", timeout=5000)

    # A campaign from the list: received Spring sale and did not open it.
    row.get_by_label("Field").select_option("engagement.campaign")
    row.get_by_label("Operator").select_option("not_opened")
    row.get_by_label("Value").select_option(label="Spring sale")
    expect(count).to_have_attribute("data-count", "1", timeout=5000)  # bob (ada's click is an open)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "audience-engagement.png"), full_page=True)
    page.locator("button[name=_save]").click()
    expect(page.locator("body")).to_contain_text("Pricing clickers")

    saved = Audience.objects.get(name="Pricing clickers")
    assert saved.rules == {"all": [{"field": "engagement.campaign", "op": "not_opened", "value": [campaign.pk]}]}
    assert errors == []


def test_marketer_follows_up_a_finished_run_from_the_campaign_page(browser: Browser, live_server):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    audience = Audience.objects.create(name="Two", kind="static")
    campaign = Campaign.objects.create(name="Spring sale", audience=audience, template=MessageTemplateFactory(),
                                       category=CategoryFactory(), channels=["email"], status="completed")
    run = CampaignRun.objects.create(campaign=campaign, occurrence=ago(2), status="completed", finished_at=ago(2))
    opened = DeliveryFactory(recipient=ada, run=run, status="sent", sent_at=ago(2), created_at=ago(2))
    tracking.open_record(delivery=opened, user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/120", ip="203.0.113.9")
    DeliveryFactory(recipient=bob, run=run, status="delivered", sent_at=ago(2), created_at=ago(2))

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(f"{m.text} {m.location}"))
    page.on("pageerror", lambda e: errors.append(f"{e.name}: {e.message}"))
    page.goto("/admin/login/?next=/admin/")
    page.locator("input[name=username]").fill("root")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()

    page.goto(f"/admin/notifications/campaign/{campaign.pk}/change/")
    page.get_by_role("button", name="Send to those who did not open").click()
    expect(page.locator("body")).to_contain_text("A draft to the 1 person who did not open it")
    expect(page.get_by_test_id("campaign-status")).to_have_text("Draft")
    expect(page.get_by_test_id("audience-size")).to_contain_text("1 recipient right now", timeout=5000)
    expect(page.get_by_test_id("audience-sample")).to_contain_text("bob@example.com")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "campaign-followup-draft.png"), full_page=True)
    assert Campaign.objects.filter(name="Spring sale — did not open", status="draft").exists()
    assert errors == []
