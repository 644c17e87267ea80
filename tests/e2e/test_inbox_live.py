"""A recipient watches their inbox update live while another process notifies them."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from notifications.models import Notification
from tests.conftest import run_python
from tests.factories import PASSWORD, NotificationFactory, RecipientProfileFactory, UserFactory


@pytest.fixture
def reader(transactional_db):
    user = RecipientProfileFactory(user=UserFactory(username="lin", first_name="林", last_name="小雨")).user
    now = timezone.now()
    for i in range(3):
        NotificationFactory(recipient=user, title=f"Welcome {i}", created_at=now - timedelta(minutes=10 - i))
    NotificationFactory(recipient=user, title="Old news", created_at=now - timedelta(days=2), read_at=now)
    return user


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/notifications/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/notifications/")


def test_badge_and_list_update_live_and_read_marks_count_down(page: Page, live_server, reader, fast_live_inbox):
    log_in(page, live_server.url, reader.username)
    badge = page.get_by_test_id("unread-badge")
    expect(badge).to_have_text("3")
    expect(page.get_by_test_id("notification")).to_have_count(4)
    # Let the event stream connect before the other process writes.
    page.wait_for_function("() => document.body['htmx-internal-data'] && document.body['htmx-internal-data'].sseEventSource && document.body['htmx-internal-data'].sseEventSource.readyState === 1")

    run_python(
        "from notifications.inbox.services import notifications_create, InboxMessage\n"
        f"notifications_create(recipient_ids=[{reader.pk}], "
        "message=InboxMessage(title='<b>Your order shipped</b>', body='Tracking: 1Z999'))"
    )
    committed = time.monotonic()
    expect(badge).to_have_text("4", timeout=2000)
    new_item = page.get_by_test_id("notification").first
    expect(new_item).to_contain_text("<b>Your order shipped</b>", timeout=2000)  # shown as text, not markup
    assert time.monotonic() - committed <= 2.0
    assert page.locator("#inbox-list b").count() == 0

    new_item.get_by_role("button", name="Mark as read").click()
    expect(badge).to_have_text("3")
    expect(page.locator(".notification.unread")).to_have_count(3)

    page.get_by_test_id("mark-all-read").click()
    expect(badge).to_have_text("0")
    expect(page.locator(".notification.unread")).to_have_count(0)
    assert not Notification.objects.filter(recipient=reader, read_at__isnull=True).exists()

    page.reload()
    expect(page.get_by_test_id("unread-badge")).to_have_text("0")
    expect(page.get_by_test_id("notification")).to_have_count(5)
