"""Issue 12 in Chromium: a Marketer builds "every Monday and Thursday at 09:30 Asia/Shanghai" in
the campaign form and sees the next send times before saving; the zone picker finds Shanghai by
typing "Shang"; a recipient does the same on the preference page on a 360 px wide phone, where
a stored alias (US/Pacific) shows as its zone. Any console error or page error fails the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import Browser, expect

from notifications import tokens
from notifications.models import RecipientProfile
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path("var/screenshots")


def _watch(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(f"{message.text} {message.location}"))
    page.on("pageerror", lambda error: errors.append(f"{error.name}: {error.message}"))
    return errors


def test_weekly_schedule_shows_next_send_times_before_saving(browser: Browser, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    context = browser.new_context(base_url=live_server.url, timezone_id="Europe/London", locale="en-US")
    page = context.new_page()
    errors = _watch(page)
    try:
        page.goto("/admin/login/?next=/admin/")
        page.locator("input[name=username]").fill("root")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        expect(page).to_have_url(f"{live_server.url}/admin/")

        page.goto("/admin/notifications/campaign/add/")
        page.locator("select[name=schedule]").select_option("recurring")
        builder = page.locator("[data-schedule-builder]")
        expect(builder).to_be_visible()
        builder.locator("select[name=rrule_mode]").select_option("weekly")
        builder.locator("input[name=rrule_days][value=MO]").check()
        builder.locator("input[name=rrule_days][value=TH]").check()
        builder.locator("input[name=rrule_time]").fill("09:30")

        zone = page.locator("select[name=schedule_timezone]")
        search = page.locator("[data-tz-picker]:has(select[name=schedule_timezone]) input[type=search]")
        search.fill("Shang")
        expect(zone).to_have_value("Asia/Shanghai")
        expect(zone.locator("option:not([hidden])")).to_have_count(1)
        page.screenshot(path=str(SHOTS / "schedule-zone-search.png"), full_page=True)

        preview = page.get_by_test_id("schedule-preview-list")
        expect(preview.locator("li")).to_have_count(5)
        expect(preview.locator("li").first).to_contain_text("09:30 (CST)")
        expect(preview.locator("li").first).to_contain_text("01:30 UTC")
        expect(preview.locator("li").first).to_contain_text("your time (Europe/London)")
        days = {text[:3] for text in preview.locator("li").all_inner_texts()}
        assert days == {"Mon", "Thu"}, days
        expect(builder.locator("[data-sb-rule]")).to_have_text("FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=9;BYMINUTE=30")
        page.screenshot(path=str(SHOTS / "schedule-builder-weekly.png"), full_page=True)

        # A mistake is said in words, live, before saving.
        builder.locator("select[name=rrule_mode]").select_option("advanced")
        builder.locator("input[name=rrule]").fill("FREQ")
        expect(page.get_by_test_id("schedule-preview-error")).to_contain_text("“FREQ” is not a rule part")
        page.screenshot(path=str(SHOTS / "schedule-builder-error.png"), full_page=True)
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert errors == [], errors


def test_preference_page_zone_search_on_a_phone(browser: Browser, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    person = UserFactory(username="ada", email="ada@example.com")
    RecipientProfile.objects.update_or_create(user=person, defaults={"timezone": "US/Pacific"})
    context = browser.new_context(base_url=live_server.url, viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    errors = _watch(page)
    try:
        page.goto(reverse("notifications:preferences_token", args=[tokens.preferences_token(person.pk)]))
        zone = page.locator("select[name=timezone]")
        expect(zone).to_have_value("America/Los_Angeles")  # the stored alias, shown as its zone
        search = page.locator("[data-tz-picker] input[type=search]")
        search.fill("Shang")
        expect(zone).to_have_value("Asia/Shanghai")
        right = page.evaluate("Math.max(...[...document.querySelectorAll('[data-tz-picker] *')]"
                              ".map((e) => e.getBoundingClientRect().right))")
        assert right <= 360, right
        page.screenshot(path=str(SHOTS / "schedule-preferences-phone.png"), full_page=True)
        page.get_by_test_id("preferences-save").click()
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert errors == [], errors
    assert RecipientProfile.objects.get(user=person).timezone == "Asia/Shanghai"
