"""The preference centre on a 360 px phone: nothing scrolls sideways, each category stacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.factories import PASSWORD, CategoryFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_preferences_fit_a_360px_phone(browser: Browser, live_server, fast_live_inbox, locale):
    RecipientProfileFactory(user=UserFactory(username="ada"))
    CategoryFactory(key="promotions", name="Promotions and seasonal offers", kind="marketing")
    CategoryFactory(key="orders", name="Order updates", kind="transactional", user_can_opt_out=False)
    context = browser.new_context(base_url=live_server.url, locale=locale, viewport={"width": 360, "height": 740})
    page = context.new_page()
    try:
        page.goto("/accounts/login/?next=/notifications/preferences/")
        page.locator("input[name=username]").fill("ada")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        expect(page.get_by_test_id("preferences-form")).to_be_visible()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"preferences-360-{locale}.png"), full_page=True)

        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls {overflow}px sideways"
        row = page.get_by_test_id("category-promotions")
        assert row.evaluate("el => getComputedStyle(el).display") == "block"  # stacked, not a table row
        # Each switch says which channel it is, visibly, now that the header row is hidden.
        first_cell = row.locator("td").first
        assert first_cell.evaluate("el => getComputedStyle(el, '::before').content") not in ("none", "")
        wide = page.evaluate("""() => [...document.querySelectorAll('main *')]
            .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .map(el => el.tagName + '.' + el.className + '#' + el.id)""")
        assert wide == []
    finally:
        context.close()
