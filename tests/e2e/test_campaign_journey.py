"""A marketer's campaign from the first click to the Manager's PDF, with a real task worker sending
(issue 12's acceptance journey). Screenshots: var/screenshots/journey-*.png.

The Marketer builds an audience (live count) and composes a campaign whose template declares
``promo_code``: pre-flight shows the missing value as an error and Launch is refused; the value is
filled; pre-flight is clean with its counts and the SMS cost; submitted. The Manager sees it on the
home and in the inbox, asks for a change with a comment; the Marketer (the comment on their page)
changes the value and submits again; the Manager opens the diff (old and new value) and approves.
The Marketer launches; progress reaches 100 % without a reload; a few recipients read it. Then the
analytics page, the CSV export and the PDF report show the same sent / delivered / opened numbers.
No page visited logs a console error or a page error.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from notifications.inbox.services import notification_mark_read
from notifications.models import Campaign, Category, Delivery, MessageTemplate, Notification, RecipientProfile
from tests.processes import start_worker

from .staff import log_in, make_staff

pytestmark = [pytest.mark.tasks, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
RECIPIENTS = 30
READERS = 7  # recipients who open the in-app message
RULES = {"all": [{"field": "user.email", "op": "endswith", "value": "@journey.test"}]}


@pytest.fixture
def people(settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10  # 30 recipients need a manager's approval
    settings.SIGNALBOX_SMS_SEGMENT_PRICE = "0.0079 USD"
    User = get_user_model()
    staff = make_staff(mia="Marketers", meg="Managers")
    password = make_password(None)
    User.objects.bulk_create(
        User(username=f"j{i}", email=f"j{i}@journey.test", first_name=f"Reader{i}", password=password)
        for i in range(RECIPIENTS)
    )
    RecipientProfile.objects.bulk_create(
        RecipientProfile(user=user, phone="+15005550006") for user in User.objects.filter(username__startswith="j")
    )
    MessageTemplate.objects.create(
        key="journey-news", name="Journey news", variables=["promo_code"],
        email_subject="News for {{ recipient.first_name }}",
        email_body="Hello **{{ recipient.first_name }}**, your code: {{ promo_code }}",
        sms_text="Spring sale: use {{ promo_code }} at checkout",
        inapp_title="News for {{ recipient.first_name }}", inapp_body="Your code: {{ promo_code }}",
    )
    Category.objects.get_or_create(key="newsletter", defaults={"name": "Newsletter", "kind": "marketing"})
    return staff


class Watched:
    """A browser page whose console errors and page errors are collected, with screenshots."""

    def __init__(self, browser: Browser, base: str, who: str):
        self.context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.who = who
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"[{who}] {m.text} {m.location}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"[{who}] {e.name}: {e.message} at {self.page.url}"))
        log_in(self.page, base, who)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"journey-{name}.png"), full_page=True)


def pick(page: Page, name: str, label: str) -> None:
    """Choose ``label`` in the select ``name`` (Unfold's selects are plain <select> elements)."""
    page.locator(f"select[name={name}]").select_option(label=label)


def test_marketer_composes_gets_approval_launches_and_every_surface_agrees(
    browser: Browser, live_server, people, processes
):
    base = live_server.url
    start_worker(processes)
    mia = Watched(browser, base, "mia")
    page = mia.page

    # 1. An audience: the count updates live as the rules change.
    page.goto("/admin/notifications/audience/add/")
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

    # 2. The composer: audience (live size; approval told up front), content, channels.
    page.goto("/admin/notifications/campaign/add/")
    page.locator("input[name=name]").fill("Journey launch")
    pick(page, "audience", "Journey readers")
    expect(page.get_by_test_id("audience-size")).to_contain_text(f"{RECIPIENTS} recipients")
    expect(page.get_by_test_id("audience-approval")).to_be_visible()
    pick(page, "template", "Journey news")
    pick(page, "category", "Newsletter")
    pick(page, "channel_1", "In-app")
    pick(page, "channel_2", "Email")
    pick(page, "channel_3", "SMS")
    mia.shot("1-compose")
    page.locator("button[name=_continue]").click()
    expect(page).to_have_url(re.compile(r"/campaign/\d+/change/"))
    campaign_url = page.url.replace(base, "")

    # 3. Pre-flight: the undeclared value is an error, and Launch is refused.
    errors = page.get_by_test_id("preflight-errors")
    expect(errors).to_contain_text("promo_code")
    expect(errors).to_contain_text("is undefined")
    mia.shot("2-preflight-errors")
    page.locator("#preflight [data-preflight-action=launch]").click()
    expect(page.locator("body")).to_contain_text("Pre-flight found problems")
    expect(page.get_by_test_id("campaign-status")).to_have_text("Draft")

    # 4. The value filled in: pre-flight is clean, with its counts and the SMS cost; submitted.
    page.locator("input[name=value__promo_code]").fill("SPRING24")
    page.locator("button[name=_continue]").click()
    expect(page.get_by_test_id("preflight-clean")).to_be_visible()
    expect(page.get_by_test_id("preflight-recipients")).to_have_text(f"{RECIPIENTS} recipients")
    expect(page.get_by_test_id("cost-sms")).to_contain_text("USD")
    mia.shot("3-preflight-clean")
    page.locator("#preflight [data-preflight-action=submit]").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Pending approval")
    campaign = Campaign.objects.get(name="Journey launch")

    # 5. The Manager: the home lists it, the inbox has the message; they ask for a change.
    meg = Watched(browser, base, "meg")
    row = meg.page.locator(f"[data-testid=awaiting-row][data-kind=campaign][data-pk='{campaign.pk}']")
    expect(row).to_contain_text("Journey launch")
    expect(row).to_contain_text(f"{RECIPIENTS} recipients")
    meg.shot("4-manager-home")
    meg.page.goto("/notifications/")
    message = meg.page.get_by_test_id("notification").filter(has_text="Awaiting your approval: Journey launch").first
    expect(message).to_be_visible()
    meg.shot("5-manager-inbox")
    message.get_by_role("button", name="Open").click()
    expect(meg.page).to_have_url(f"{base}/admin/analytics/approvals/campaigns/{campaign.pk}/")
    expect(meg.page.get_by_test_id("no-earlier-approval")).to_be_visible()
    meg.page.locator("#approval-comment").fill("Use this spring's code, SPRING25.")
    meg.page.get_by_test_id("request-changes").click()
    expect(meg.page.get_by_test_id("approval-status")).to_have_text("Changes requested")

    # 6. The Marketer reads the comment on the campaign's page, changes the value, submits again.
    page.goto(campaign_url)
    expect(page.locator("body")).to_contain_text("Use this spring's code, SPRING25.")
    page.locator("input[name=value__promo_code]").fill("SPRING25")
    page.locator("button[name=_continue]").click()
    expect(page.get_by_test_id("preflight-clean")).to_be_visible()
    page.locator("#preflight [data-preflight-action=submit]").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Pending approval")

    # 7. The Manager opens the diff (what changed since the first submission) and approves.
    # The first one was sent back, not approved: the diff compares with the last version a
    # Manager decided on.
    meg.page.goto(f"/admin/analytics/approvals/campaigns/{campaign.pk}/")
    expect(meg.page.get_by_test_id("approval-channels")).to_contain_text("In-app → Email → SMS")
    expect(meg.page.get_by_test_id("approval-size")).to_have_attribute("data-size", str(RECIPIENTS))
    changed = meg.page.locator("[data-testid=diff-part][data-part=template]")
    expect(changed).to_have_attribute("data-changed", "yes")
    expect(changed.locator("[data-op='-']")).to_contain_text("SPRING24")
    expect(changed.locator("[data-op='+']")).to_contain_text("SPRING25")
    meg.shot("6-approval-diff")
    meg.page.get_by_test_id("approve").click()
    expect(meg.page.get_by_test_id("approval-status")).to_have_text("Approved")

    # 8. The Marketer launches and watches progress reach 100 % without reloading.
    page.goto(campaign_url)
    expect(page.get_by_test_id("campaign-status")).to_have_text("Approved")
    page.locator("[data-action=launch]").click()
    expect(page.locator("body")).to_contain_text("Launched.")
    loaded = page.evaluate("performance.timeOrigin")
    expect(page.get_by_test_id("run-percent")).to_have_text("100%", timeout=60_000)
    assert page.evaluate("performance.timeOrigin") == loaded  # the same page: no reload
    expect(page.get_by_test_id("campaign-status")).to_have_text("Completed", timeout=15_000)
    mia.shot("7-completed")
    sent = Delivery.objects.filter(run__campaign=campaign, status="sent")
    assert sent.filter(channel="inapp").count() == RECIPIENTS
    assert sent.count() == 3 * RECIPIENTS
    inbox = Notification.objects.filter(delivery__run__campaign=campaign).select_related("content")
    assert all("SPRING25" in (n.body or n.content.body) for n in inbox)

    # A few recipients read it in their inbox.
    for notification in Notification.objects.filter(delivery__run__campaign=campaign).order_by("pk")[:READERS]:
        notification_mark_read(user=notification.recipient, notification_id=notification.pk)

    # 9. The same numbers on the analytics page, in the CSV export and in the PDF report.
    figures: dict[str, dict[str, int]] = {}
    meg.page.goto(f"/admin/analytics/?campaign={campaign.pk}")
    figures["analytics"] = {
        name: int(meg.page.get_by_test_id(f"total-{name}").get_attribute("data-value"))
        for name in ("sent", "delivered", "opened")
    }
    meg.shot("8-analytics")

    meg.page.goto("/admin/reports/")
    meg.page.locator("select[name=export-kind]").select_option("campaigns")
    meg.page.locator("select[name=export-format]").select_option("csv")
    meg.page.locator("select[name=export-campaign]").select_option(str(campaign.pk))
    with meg.page.expect_download(timeout=60_000) as download:
        meg.page.get_by_test_id("export-submit").click()
    body = Path(download.value.path()).read_text(encoding="utf-8").lstrip("\ufeff")
    (row,) = [r for r in csv.DictReader(io.StringIO(body)) if r["Campaign id"] == str(campaign.pk)]
    figures["CSV"] = {name: int(row[name.capitalize()]) for name in ("sent", "delivered", "opened")}

    meg.page.goto(campaign_url)
    with meg.page.expect_download(timeout=90_000) as download:
        meg.page.get_by_test_id("campaign-pdf-download").click()
    meg.shot("9-pdf-ready")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Journey launch" in text
    figures["PDF"] = {}
    for name in ("sent", "delivered", "opened"):
        match = re.search(rf"{name.capitalize()}\s+([\d,]+)\s", text)
        assert match, f"{name} in the PDF: {text[:1500]}"
        figures["PDF"][name] = int(match[1].replace(",", ""))

    assert figures["analytics"]["sent"] == 3 * RECIPIENTS
    assert figures["analytics"]["opened"] == READERS
    assert figures["CSV"] == figures["analytics"] == figures["PDF"], figures
    problems = mia.errors + meg.errors
    mia.context.close()
    meg.context.close()
    assert problems == [], problems
