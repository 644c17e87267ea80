"""A journey on the approval desk, in Chromium: a Marketer presses Publish on a journey whose
audience is above the approval threshold and is told it waits for a Manager; a Manager finds it on
the home page, reads what approval covers (entry, reach, steps), approves with a comment; the
Marketer reads that comment in the inbox and publishes.

Screenshots: var/screenshots/journey-approval-*.png. Any console error or page error fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from notifications.journeys.services import journey_save
from notifications.models import Audience, Category, Journey, MessageTemplate, Notification

from .staff import log_in, make_staff

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture
def big_journey(settings):
    """A Marketer's draft journey entered from an audience of 20 (the threshold is 10)."""
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    User = get_user_model()
    staff = make_staff(mia="Marketers", meg="Managers")
    for i in range(20):
        User.objects.create_user(f"fan{i}", f"fan{i}@example.com")
    audience = Audience.objects.create(
        name="Fans", kind=Audience.Kind.RULES, rules={"all": [{"field": "user.username", "op": "startswith", "value": "fan"}]},
    )
    MessageTemplate.objects.create(key="hello", name="Hello", email_subject="Hello", email_body="Welcome aboard.")
    category = Category.objects.get_or_create(key="newsletter", defaults={"name": "Newsletter", "kind": "marketing"})[0]
    journey = Journey(key="fans", name="Fan welcome", category=category, created_by=staff["mia"],
                      entry={"kind": "audience", "audience": audience.pk},
                      graph={"start": "hello", "steps": [{"id": "hello", "type": "send", "template": "hello",
                                                          "channels": ["email"]}]})
    journey_save(journey=journey, actor=staff["mia"])
    return journey


def test_a_manager_approves_a_journey_from_the_desk_and_the_author_publishes(browser: Browser, live_server,
                                                                            big_journey):
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []

    def new_page(username: str):
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and errors.append(f"{message.text} {message.location}"))
        page.on("pageerror", lambda error: errors.append(f"{error.name}: {error.message}"))
        log_in(page, live_server.url, username)
        return context, page

    publish = f"/admin/notifications/journey/{big_journey.pk}/publish/"  # the journey's Publish action
    mia, mia_page = new_page("mia")
    meg, meg_page = new_page("meg")
    try:
        # The Marketer presses Publish: refused for want of an approval, and put on the desk.
        mia_page.goto(publish)
        mia_page.locator("button[data-action=publish]").click()
        expect(mia_page.locator("body")).to_contain_text("20 recipients is above the approval threshold of 10")
        expect(mia_page.locator("body")).to_contain_text("It waits on the approval desk")
        assert Journey.objects.get(pk=big_journey.pk).status == Journey.Status.DRAFT
        mia_page.screenshot(path=str(SHOTS / "journey-approval-refused.png"), full_page=True)

        # The Manager finds it on the home page and opens its approval page.
        meg_page.goto("/admin/")
        row = meg_page.locator(f"[data-testid=awaiting-row][data-kind=journey][data-pk='{big_journey.pk}']")
        expect(row).to_contain_text("Fan welcome")
        expect(row).to_contain_text("20 recipients")
        row.get_by_role("link").first.click()
        expect(meg_page.get_by_test_id("journey-approval-page")).to_be_visible()
        expect(meg_page.get_by_test_id("approval-size")).to_have_attribute("data-size", "20")
        expect(meg_page.get_by_test_id("approval-steps")).to_have_text("1. Send “Hello” by Email")
        meg_page.screenshot(path=str(SHOTS / "journey-approval-page.png"), full_page=True)
        meg_page.locator("#approval-comment").fill("Go ahead; mind the unsubscribe rate.")
        meg_page.get_by_test_id("approve").click()
        expect(meg_page.get_by_test_id("approval-holds")).to_contain_text("meg")
        meg_page.goto("/admin/")
        expect(meg_page.locator("[data-testid=awaiting-row][data-kind=journey]")).to_have_count(0)

        # The author reads the comment in the inbox, and Publish now goes through.
        mia_page.goto("/notifications/")
        message = mia_page.get_by_test_id("notification").filter(has_text="Approved: Fan welcome").first
        expect(message).to_contain_text("Go ahead; mind the unsubscribe rate.")
        mia_page.goto(publish)
        mia_page.locator("button[data-action=publish]").click()
        expect(mia_page.locator("body")).to_contain_text("Version 1 is published")
        mia_page.screenshot(path=str(SHOTS / "journey-approval-published.png"), full_page=True)
    finally:
        mia.close()
        meg.close()
    assert Journey.objects.get(pk=big_journey.pk).status == Journey.Status.LIVE
    assert Notification.objects.filter(recipient__username="mia", title="Approved: Fan welcome").exists()
    assert errors == [], errors
