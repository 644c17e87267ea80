"""A marketer's day, as a new user would click through it, with a real task worker sending.

audience (live count) → template (preview) → campaign → submit → a manager approves → the
marketer launches → the progress bar reaches 100 % without a reload → analytics shows the run →
the manager downloads the campaign's PDF report.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from accounts.roles import roles_ensure
from notifications.models import Campaign, Category, Delivery, RecipientProfile
from tests.factories import PASSWORD
from tests.processes import start_worker

pytestmark = [pytest.mark.tasks, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 30
RULES = {"all": [{"field": "user.email", "op": "endswith", "value": "@journey.test"}]}


@pytest.fixture
def people(settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10  # 30 recipients need a manager's approval
    roles_ensure()
    User = get_user_model()
    staff = {}
    for username, group in (("mia", "Marketers"), ("meg", "Managers")):
        user = User.objects.create_user(username, f"{username}@staff.example", PASSWORD, is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        staff[username] = user
    password = make_password(None)
    User.objects.bulk_create(
        User(username=f"j{i}", email=f"j{i}@journey.test", first_name=f"Reader{i}", password=password)
        for i in range(RECIPIENTS)
    )
    RecipientProfile.objects.bulk_create(
        RecipientProfile(user=user) for user in User.objects.filter(username__startswith="j")
    )
    Category.objects.get_or_create(key="newsletter", defaults={"name": "Newsletter", "kind": "marketing"})
    return staff


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{base_url}/admin/")


def pick(page: Page, name: str, label: str) -> None:
    """Choose ``label`` in the select ``name`` (Unfold's selects are plain <select> elements)."""
    page.locator(f"select[name={name}]").select_option(label=label)


def test_marketer_builds_gets_approval_launches_and_watches_it_finish(
    page: Page, browser: Browser, live_server, people, processes
):
    base = live_server.url
    start_worker(processes)
    log_in(page, base, "mia")

    # 1. An audience: the count updates live as the rules change.
    page.goto(f"{base}/admin/notifications/audience/add/")
    page.locator("input[name=name]").fill("Journey readers")
    page.get_by_role("button", name="Edit as JSON").click()
    page.locator("textarea[name=rules]").fill(json.dumps(RULES))
    expect(page.get_by_test_id("audience-count")).to_have_attribute("data-count", str(RECIPIENTS), timeout=5000)
    page.locator("textarea[name=rules]").fill(json.dumps({"all": [{"field": "user.username", "op": "eq", "value": "j1"}]}))
    expect(page.get_by_test_id("audience-count")).to_have_attribute("data-count", "1", timeout=5000)
    page.locator("textarea[name=rules]").fill(json.dumps(RULES))
    expect(page.get_by_test_id("audience-count")).to_have_attribute("data-count", str(RECIPIENTS), timeout=5000)
    page.locator("button[name=_save]").click()
    expect(page.locator("body")).to_contain_text("Journey readers")

    # 2. A template, previewed for a real recipient.
    page.goto(f"{base}/admin/notifications/messagetemplate/add/")
    page.locator("input[name=key]").fill("journey-news")
    page.locator("input[name=name]").fill("Journey news")
    page.locator("input[name=inapp_title]").fill("News for {{ recipient.first_name }}")
    page.locator("textarea[name=inapp_body]").fill("From {{ campaign.name }}")
    page.locator("input[name=email_subject]").fill("News for {{ recipient.first_name }}")
    page.locator("textarea[name=email_body]").fill("Hello **{{ recipient.first_name }}**")
    page.locator("button[name=_continue]").click()
    expect(page).to_have_url(re.compile(r"/messagetemplate/\d+/change/"))
    page.goto(page.url.replace("/change/", "/preview/"))
    page.locator("input[name=recipient]").fill("j3")
    page.get_by_test_id("preview-form").get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("email-subject")).to_have_text("News for Reader3")

    # 3. A campaign, submitted for approval.
    page.goto(f"{base}/admin/notifications/campaign/add/")
    page.locator("input[name=name]").fill("Journey launch")
    pick(page, "audience", "Journey readers")
    pick(page, "template", "Journey news")
    pick(page, "category", "Newsletter")
    pick(page, "channel_1", "In-app")
    page.locator("button[name=_continue]").click()
    expect(page).to_have_url(re.compile(r"/campaign/\d+/change/"))
    campaign_url = page.url
    page.locator("[data-action=submit]").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Pending approval")
    page.locator("[data-action=launch]").click()  # not approved yet: refused with the reason
    expect(page.locator("body")).to_contain_text("approval")

    # 4. A manager approves (their own browser session).
    manager = browser.new_context(base_url=base).new_page()
    log_in(manager, base, "meg")
    manager.goto(campaign_url)
    manager.locator("[data-action=approve]").click()
    expect(manager.locator("body")).to_contain_text("Approved")

    # 5. The marketer launches and watches the progress bar reach 100 % without reloading.
    page.goto(campaign_url)
    page.locator("[data-action=launch]").click()
    expect(page.locator("body")).to_contain_text("Launched.")
    loaded = page.evaluate("performance.timeOrigin")
    expect(page.get_by_test_id("run-percent")).to_have_text("100%", timeout=30_000)
    assert page.evaluate("performance.timeOrigin") == loaded  # the same page: no reload
    campaign = Campaign.objects.get(name="Journey launch")
    assert Delivery.objects.filter(run__campaign=campaign, status="sent").count() == RECIPIENTS
    expect(page.get_by_test_id("campaign-status")).to_have_text("Completed", timeout=10_000)

    # 6. Analytics shows the run: the campaign's row with everyone sent, and its own page.
    page.goto(f"{base}/admin/analytics/")
    row = page.locator(f"[data-testid=campaign-row][data-campaign='{campaign.pk}']")
    expect(row).to_have_attribute("data-total", str(RECIPIENTS), timeout=10_000)
    page.goto(campaign_url)
    page.get_by_test_id("campaign-analytics").click()
    expect(page.locator("body")).to_contain_text("Journey launch")
    expect(page.locator("[data-testid^=chart-]").first).to_have_attribute("data-rendered", "true", timeout=10_000)

    # 7. The manager downloads the campaign's PDF report: a real PDF naming the campaign and its sent count.
    manager.goto(campaign_url)
    with manager.expect_download(timeout=60_000) as download:
        manager.get_by_test_id("campaign-pdf-download").click()
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Journey launch" in text
    assert re.search(rf"Sent\s+{RECIPIENTS}\b", text), text[:2000]
