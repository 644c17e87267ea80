"""Two people watch their inboxes while another process sends a broadcast (issue 10 acceptance).

The broadcast shows live in both open inboxes within 2 s, counts as unread once for each of
them, and reading it (one broadcast, or everything) is each person's own.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from notifications.models import BroadcastRead
from tests.conftest import run_python
from tests.factories import PASSWORD, NotificationFactory, RecipientProfileFactory, UserFactory

SSE_OPEN = (
    "() => document.body['htmx-internal-data'] && document.body['htmx-internal-data'].sseEventSource"
    " && document.body['htmx-internal-data'].sseEventSource.readyState === 1"
)


@pytest.fixture
def readers(transactional_db):
    joined = timezone.now() - timedelta(days=3)
    lin = RecipientProfileFactory(user=UserFactory(username="lin", first_name="林", date_joined=joined)).user
    sam = RecipientProfileFactory(user=UserFactory(username="sam", first_name="Sam", date_joined=joined)).user
    NotificationFactory(recipient=lin, title="Welcome, Lin")
    return lin, sam


def open_inbox(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/notifications/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/notifications/")
    page.wait_for_function(SSE_OPEN)


def test_a_broadcast_shows_live_in_every_open_inbox_and_is_read_per_person(
    browser: Browser, live_server, readers, fast_live_inbox
):
    lin, sam = readers
    lin_page = browser.new_context().new_page()
    sam_page = browser.new_context().new_page()
    open_inbox(lin_page, live_server.url, "lin")
    open_inbox(sam_page, live_server.url, "sam")
    expect(lin_page.get_by_test_id("unread-badge")).to_have_text("1")
    expect(sam_page.get_by_test_id("unread-badge")).to_have_text("0")

    run_python(
        "from notifications.api import broadcast\n"
        "broadcast(title='Maintenance tonight', body='Read-only from 02:00 to 02:15 UTC.')"
    )
    sent = time.monotonic()
    for page, count in ((lin_page, "2"), (sam_page, "1")):
        expect(page.get_by_test_id("unread-badge")).to_have_text(count, timeout=2000)
        expect(page.get_by_test_id("notification").first).to_contain_text("Maintenance tonight", timeout=2000)
    assert time.monotonic() - sent <= 2.0

    # Sam reads it: Sam's badge goes down, Lin's does not.
    sam_page.get_by_test_id("notification").first.get_by_role("button", name="Mark as read").click()
    expect(sam_page.get_by_test_id("unread-badge")).to_have_text("0")
    lin_page.reload()
    expect(lin_page.get_by_test_id("unread-badge")).to_have_text("2")

    # Lin marks everything read, the broadcast included.
    lin_page.get_by_test_id("mark-all-read").click()
    expect(lin_page.get_by_test_id("unread-badge")).to_have_text("0")
    expect(lin_page.locator(".notification.unread")).to_have_count(0)
    assert BroadcastRead.objects.count() == 2
    sam_page.reload()
    expect(sam_page.get_by_test_id("unread-badge")).to_have_text("0")
    expect(sam_page.get_by_test_id("notification")).to_have_count(1)
