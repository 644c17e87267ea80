"""The embeddable inbox (<signalbox-inbox>) on the demo shop's customer page, in Chromium: the badge
follows notify() live, the dropdown lists and marks read, keyboard use, no console errors, in
English and Simplified Chinese."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from notifications.api import broadcast, notify
from notifications.models import Notification
from tests.factories import (
    PASSWORD,
    CategoryFactory,
    CustomerFactory,
    NotificationFactory,
    OrderFactory,
    RecipientProfileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

# Per browser locale: the page language's labels the component must show.
LOCALES = {
    "en-US": {"bell": "Notifications, 2 unread", "mark_read": "Mark as read", "mark_all": "Mark all as read",
              "empty_bell": "Notifications", "open_inbox": "Open inbox"},
    "zh-CN": {"bell": "通知，2 条未读", "mark_read": "标为已读", "mark_all": "全部标为已读",
              "empty_bell": "通知", "open_inbox": "打开收件箱"},
}


@pytest.fixture
def shopper(transactional_db):
    user = RecipientProfileFactory(user=UserFactory(username="mei", first_name="美", last_name="王")).user
    OrderFactory(customer=CustomerFactory(user=user), number="SB-1001", status="pending")
    now = timezone.now()
    NotificationFactory(recipient=user, title="Welcome to the shop", created_at=now - timedelta(hours=3))
    NotificationFactory(recipient=user, title="Your basket misses you", created_at=now - timedelta(minutes=5))
    NotificationFactory(recipient=user, title="Old news", created_at=now - timedelta(days=2), read_at=now)
    return user


@pytest.mark.parametrize("locale", list(LOCALES))
def test_inbox_on_the_shop_page_updates_live_and_marks_read(
    browser: Browser, live_server, fast_live_inbox, shopper, locale
):
    labels = LOCALES[locale]
    orders = CategoryFactory(key="orders", name="Order updates", kind="transactional", user_can_opt_out=False)
    context = browser.new_context(base_url=live_server.url, locale=locale)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("response", lambda response: response.status >= 400 and problems.append(f"{response.status} {response.url}"))
    feed_reads: list[str] = []
    page.on("request", lambda request: "/feed/" in request.url and feed_reads.append(request.url))
    try:
        page.goto("/accounts/login/?next=/shop/")
        page.locator("input[name=username]").fill(shopper.username)
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        expect(page.get_by_test_id("shop-order")).to_have_count(1)

        bell = page.get_by_test_id("inbox-bell")
        badge = page.get_by_test_id("inbox-badge")
        expect(badge).to_have_text("2")
        expect(bell).to_have_attribute("aria-label", labels["bell"])
        # Let the component's event stream connect before notifying.
        page.wait_for_function(
            "() => { const el = document.querySelector('signalbox-inbox');"
            " return el && el._source && el._source.readyState === EventSource.OPEN; }"
        )
        # The count and the stream state came with the page: nothing is read again until it changes.
        assert feed_reads == []

        notify([shopper], title="<b>Order SB-1001 shipped</b>", body="Tracking: 1Z999", url="/shop/", category=orders)
        committed = time.monotonic()
        expect(badge).to_have_text("3", timeout=2000)
        assert time.monotonic() - committed <= 2.0

        bell.click()
        expect(bell).to_have_attribute("aria-expanded", "true")
        items = page.get_by_test_id("inbox-item")
        expect(items).to_have_count(4)
        newest = items.first
        expect(newest).to_contain_text("<b>Order SB-1001 shipped</b>")  # shown as text, not markup
        expect(newest).to_contain_text("Tracking: 1Z999")
        expect(newest.get_by_role("link")).to_have_attribute("href", "/shop/")
        expect(page.get_by_test_id("inbox-panel").get_by_role("link", name=labels["open_inbox"])).to_be_visible()
        assert page.locator("signalbox-inbox b").count() == 0
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"embedded-inbox-{locale}.png"))

        newest.get_by_role("button", name=labels["mark_read"]).click()
        expect(badge).to_have_text("2")
        expect(newest.get_by_role("button", name=labels["mark_read"])).to_have_count(0)
        expect(page.locator("signalbox-inbox .item.unread")).to_have_count(2)
        assert Notification.objects.get(title="<b>Order SB-1001 shipped</b>").read_at is not None

        page.get_by_test_id("inbox-mark-all").click()
        expect(badge).to_be_hidden()
        expect(bell).to_have_attribute("aria-label", labels["empty_bell"])
        expect(page.locator("signalbox-inbox .item.unread")).to_have_count(0)
        assert not Notification.objects.filter(recipient=shopper, read_at__isnull=True).exists()
        # The pressed "Mark all as read" is gone; focus stays in the dropdown, not lost to the page.
        page.wait_for_function(
            "() => document.querySelector('signalbox-inbox').shadowRoot.activeElement?.dataset.testid === 'inbox-panel'"
        )

        # Keyboard: Escape closes and gives focus back to the bell; Enter opens again.
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("inbox-panel")).to_be_hidden()
        expect(bell).to_have_attribute("aria-expanded", "false")
        assert page.evaluate("() => document.querySelector('signalbox-inbox').shadowRoot.activeElement.dataset.testid") == "inbox-bell"
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("inbox-panel")).to_be_visible()
        page.keyboard.press("Escape")

        # A new notification after everything was read brings the badge back.
        notify([shopper], title="Order SB-1001 delivered", category=orders)
        expect(badge).to_have_text("1", timeout=2000)
        # A broadcast counts like any notification, as on the inbox page.
        broadcast(title="Shop closed on Monday")
        expect(badge).to_have_text("2", timeout=2000)
        bell.click()
        expect(items.first).to_contain_text("Shop closed on Monday")
        expect(page.get_by_test_id("inbox-panel")).to_be_visible()
        page.mouse.click(5, 300)  # a click elsewhere on the page closes the dropdown
        expect(page.get_by_test_id("inbox-panel")).to_be_hidden()
        assert problems == [], problems
    finally:
        context.close()
