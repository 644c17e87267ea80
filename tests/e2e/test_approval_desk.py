"""The approval desk in Chromium: a Manager learns a campaign awaits them (home card and inbox),
opens its approval page, sees what changed since the last approval, and approves it.

Screenshots: var/screenshots/approval-*.png. Any console error or page error fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from notifications.campaigns import services
from notifications.models import Audience, Campaign, Category, MessageTemplate, RecipientProfile
from tests.factories import PASSWORD

from .staff import make_staff

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
CAPTURE = {"BACKEND": "channels_adapters.capture.CaptureChannel", "OPTIONS": {}}


@pytest.fixture
def resubmitted(settings):
    """A campaign approved once, then edited (a new subject line) and submitted again."""
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10
    settings.NOTIFICATION_CHANNELS = {**settings.NOTIFICATION_CHANNELS, "email": CAPTURE}
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    User = get_user_model()
    people = make_staff(mia="Marketers", meg="Managers", mo="Managers")
    for i in range(20):
        RecipientProfile.objects.create(user=User.objects.create_user(f"fan{i}", f"fan{i}@example.com", first_name=f"Fan{i}"))
    audience = Audience.objects.create(
        name="Fans", kind=Audience.Kind.RULES, rules={"all": [{"field": "user.username", "op": "startswith", "value": "fan"}]},
    )
    template = MessageTemplate.objects.create(
        key="spring", name="Spring sale", email_subject="Spring sale for {{ recipient.first_name }}",
        email_body="Everything **20% off**.", inapp_title="Spring sale", inapp_body="20% off",
    )
    category = Category.objects.get_or_create(key="newsletter", defaults={"name": "Newsletter", "kind": "marketing"})[0]
    campaign = Campaign.objects.create(name="Spring sale", audience=audience, template=template, category=category,
                                       channels=["email", "inapp"], author=people["mia"])
    services.campaign_submit(campaign=campaign, actor=people["mia"])
    services.campaign_approve(campaign=campaign, actor=people["mo"])
    MessageTemplate.objects.filter(pk=template.pk).update(email_subject="Last chance, {{ recipient.first_name }}")
    campaign = Campaign.objects.get(pk=campaign.pk)
    services.campaign_submit(campaign=campaign, actor=people["mia"])
    return campaign


def test_a_manager_finds_the_campaign_sees_the_diff_and_approves(browser: Browser, live_server, resubmitted):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(f"{message.text} {message.location}"))
    page.on("pageerror", lambda error: errors.append(f"{error.name}: {error.message}"))
    try:
        page.goto("/admin/login/?next=/admin/")
        page.locator("input[name=username]").fill("meg")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        expect(page).to_have_url(f"{live_server.url}/admin/")

        # The home: "Awaiting your approval" lists it with its author and size.
        row = page.locator(f"[data-testid=awaiting-row][data-kind=campaign][data-pk='{resubmitted.pk}']")
        expect(row).to_contain_text("Spring sale")
        expect(row).to_contain_text("mia")
        expect(row).to_contain_text("20 recipients")
        row.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "approval-home.png"), full_page=True)

        # The inbox: the message from the submission, with a link to the approval page.
        page.goto("/notifications/")
        message = page.get_by_test_id("notification").filter(has_text="Awaiting your approval: Spring sale").first
        expect(message).to_be_visible()
        page.screenshot(path=str(SHOTS / "approval-inbox.png"), full_page=True)
        message.get_by_role("button", name="Open").click()

        # The approval page: what it covers, and the subject line that changed since the last approval.
        expect(page).to_have_url(f"{live_server.url}/admin/analytics/approvals/campaigns/{resubmitted.pk}/")
        expect(page.get_by_test_id("approval-channels")).to_contain_text("Email → In-app")
        expect(page.get_by_test_id("approval-size")).to_have_attribute("data-size", "20")
        changed = page.locator("[data-testid=diff-part][data-part=template]")
        expect(changed).to_have_attribute("data-changed", "yes")
        expect(changed.locator("[data-op='-']")).to_contain_text("Spring sale for {{ recipient.first_name }}")
        expect(changed.locator("[data-op='+']")).to_contain_text("Last chance, {{ recipient.first_name }}")
        expect(page.get_by_test_id("approval-content")).to_contain_text("Last chance, Fan0")
        page.screenshot(path=str(SHOTS / "approval-page.png"), full_page=True)

        page.locator("#approval-comment").fill("Fine by me.")
        page.get_by_test_id("approve").click()
        expect(page.get_by_test_id("approval-status")).to_have_text("Approved")
        expect(page.get_by_test_id("approval-form")).to_have_count(0)
        page.screenshot(path=str(SHOTS / "approval-approved.png"), full_page=True)

        # Nothing awaits any more.
        page.goto("/admin/")
        expect(page.get_by_test_id("awaiting-approval")).to_contain_text("Nothing awaits your approval.")
    finally:
        context.close()
    assert Campaign.objects.get(pk=resubmitted.pk).status == "approved"
    assert errors == [], errors
