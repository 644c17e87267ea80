"""The staff pages added for production (System status, erasing one person's data) in Chromium,
in English and Simplified Chinese: they render translated and the browser reports no error."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from tests.factories import PASSWORD, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = {
    # locale: (html lang, System status heading, erase page title prefix)
    "en-US": ("en", "Readiness", "Erase the personal data of person"),
    "zh-CN": ("zh-hans", "就绪检查", "删除"),
}


@pytest.mark.parametrize("locale", sorted(PAGES))
def test_status_and_erase_pages_render_translated_without_browser_errors(browser: Browser, live_server, locale):
    lang, readiness, erase_title = PAGES[locale]
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    person = RecipientProfileFactory(user=UserFactory(username="ada", email="ada@example.com")).user
    context = browser.new_context(locale=locale, base_url=live_server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(f"{message.text} {message.location}"))
    page.on("pageerror", lambda error: errors.append(f"{error.name}: {error.message}"))
    page.on("response", lambda response: response.status >= 400 and errors.append(f"{response.status} {response.url}"))
    try:
        page.goto("/admin/login/?next=/admin/")
        page.locator("input[name=username]").fill("root")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        expect(page).to_have_url(f"{live_server.url}/admin/")

        response = page.goto("/admin/status/")
        assert response is not None and response.status == 200
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.get_by_test_id("system-status-page")).to_contain_text(readiness)

        response = page.goto(f"/admin/auth/user/{person.pk}/erase-personal-data/")
        assert response is not None and response.status == 200
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page).to_have_title(re.compile(re.escape(erase_title)))
        expect(page.locator("button[data-action=erase]")).to_be_visible()
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert errors == [], errors
