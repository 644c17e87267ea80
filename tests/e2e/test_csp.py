"""Every page under its Content-Security-Policy in Chromium: no violation, and the features that
lean on JavaScript (live badge, language switch, audience count, plotly charts, Alpine, the cancel
confirmation, the email preview's CSS) still work. config/csp.py has the policies.
"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from notifications import tokens
from notifications.models import Audience, Campaign, Category
from tests.conftest import run_python
from tests.dashboard.analytics_data import build_ledger
from tests.factories import (
    PASSWORD,
    DeliveryFactory,
    MessageTemplateFactory,
    NotificationFactory,
    RecipientProfileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Report every violation on the console, whichever frame (the email preview's too) it happens in.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  `securitypolicyviolation: ${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));
"""


class Watch:
    """What the browser said about the policy while the test ran: console reports and the
    EvalErrors a refused ``eval``/``new Function`` throws (Alpine, htmx filters)."""

    def __init__(self, page: Page) -> None:
        self.violations: list[str] = []
        page.add_init_script(REPORT_VIOLATIONS)
        page.on("console", lambda message: self._note(message.text))
        page.on("pageerror", lambda error: self._note(f"{error.name}: {error.message}"))

    def _note(self, text: str) -> None:
        if any(mark in text for mark in ("Content Security Policy", "securitypolicyviolation", "EvalError")):
            self.violations.append(text)

    def assert_clean(self, where: str) -> None:
        assert self.violations == [], f"{where}: {self.violations}"


def open_page(page: Page, url: str, *, admin: bool = False) -> None:
    response = page.goto(url)
    assert response is not None and response.ok, url
    policy = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, (url, policy)
    if admin:
        assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0], policy
    else:
        assert "unsafe" not in policy, policy


@pytest.fixture
def watch(page: Page) -> Watch:
    return Watch(page)


@pytest.fixture
def reader():
    user = RecipientProfileFactory(user=UserFactory(username="lin", email="lin@example.com")).user
    for i in range(2):
        NotificationFactory(recipient=user, title=f"Welcome {i}")
    return user


def test_recipient_pages_run_under_the_strict_policy(page: Page, live_server, reader, watch, fast_live_inbox):
    base = live_server.url

    open_page(page, f"{base}/accounts/login/?next=/notifications/")
    page.get_by_label("Username").fill(reader.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/notifications/")
    watch.assert_clean("login")

    # The inbox: the badge still updates live over the event stream (htmx + its sse extension).
    open_page(page, f"{base}/notifications/")
    badge = page.get_by_test_id("unread-badge")
    expect(badge).to_have_text("2")
    page.wait_for_function(
        "() => document.body['htmx-internal-data'] && document.body['htmx-internal-data'].sseEventSource"
        " && document.body['htmx-internal-data'].sseEventSource.readyState === 1"
    )
    run_python(
        "from notifications.inbox.services import notifications_create, InboxMessage\n"
        f"notifications_create(recipient_ids=[{reader.pk}], message=InboxMessage(title='Shipped', body='1Z999'))"
    )
    expect(badge).to_have_text("3", timeout=5000)
    page.get_by_test_id("mark-read").first.click()  # an htmx POST swapping the list
    expect(badge).to_have_text("2")
    watch.assert_clean("inbox")

    # The policy is enforced, not only sent: a script injected into the page does not run.
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = \"document.body.dataset.injected = 'ran'\"; document.head.append(s); }"
    )
    assert page.evaluate("document.body.dataset.injected") is None
    assert any("script-src" in v for v in watch.violations), watch.violations
    watch.violations.clear()

    # "Open" on a link to another site: form-action 'self' would block the redirect, so the page
    # marks it read by fetch and then navigates (static/signalbox/recipient.js).
    host = "localhost" if "localhost" in base else "127.0.0.1"
    elsewhere = base.replace(host, {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}[host])  # another origin
    parcel = NotificationFactory(recipient=reader, title="Track your parcel", url=f"{elsewhere}/accounts/login/")
    open_page(page, f"{base}/notifications/")
    page.get_by_test_id("notification").filter(has_text="Track your parcel").get_by_role("button", name="Open").click()
    expect(page).to_have_url(f"{elsewhere}/accounts/login/")
    parcel.refresh_from_db()
    assert parcel.read_at is not None
    watch.assert_clean("open a link to another site")

    open_page(page, f"{base}/notifications/preferences/")
    expect(page.get_by_test_id("preferences-form")).to_be_visible()
    page.get_by_test_id("preferences-save").click()
    expect(page.get_by_test_id("preferences-form")).to_be_visible()
    watch.assert_clean("preferences")

    open_page(page, f"{base}/notifications/preferences/{tokens.preferences_token(reader.pk)}/")
    expect(page.get_by_test_id("preferences-form")).to_be_visible()
    watch.assert_clean("preferences by token")

    delivery = DeliveryFactory(recipient=reader, status="sent", address=reader.email)
    open_page(page, f"{base}/notifications/u/{tokens.unsubscribe_token(delivery.pk)}/")
    card = page.get_by_test_id("unsubscribe")
    expect(card).to_be_visible()
    card.locator("button[type=submit]").first.click()
    expect(card.get_by_role("status")).to_contain_text(reader.email)  # the "done" page
    watch.assert_clean("unsubscribe")

    # The language switch submits on change from a static script (it was an onchange handler).
    open_page(page, f"{base}/notifications/")
    page.locator("select[name=language]").select_option("zh-hans")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    watch.assert_clean("language switch")


@pytest.fixture
def admin_page(page: Page, live_server) -> Page:
    user = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    RecipientProfileFactory(user=user)
    open_page(page, f"{live_server.url}/admin/login/?next=/admin/", admin=True)
    page.locator("input[name=username]").fill("root")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{live_server.url}/admin/")
    return page


def test_admin_pages_run_under_the_admin_policy(admin_page: Page, live_server, watch):
    page, base = admin_page, live_server.url
    watch.assert_clean("admin login")

    open_page(page, f"{base}/admin/", admin=True)
    expect(page.locator("html")).not_to_have_attribute("x-cloak", re.compile(".*"))  # Alpine started
    watch.assert_clean("admin index")

    # Audience builder: the live count still arrives (htmx) and follows the rules typed.
    for i in range(3):
        UserFactory(username=f"csp{i}", email=f"csp{i}@csp.test")
    open_page(page, f"{base}/admin/notifications/audience/add/", admin=True)
    page.get_by_role("button", name="Edit as JSON").click()
    rules = page.locator("textarea[name=rules]")
    rules.fill(json.dumps({"all": [{"field": "user.email", "op": "endswith", "value": "@csp.test"}]}))
    expect(page.get_by_test_id("audience-count")).to_have_attribute("data-count", "3", timeout=5000)
    rules.fill(json.dumps({"all": [{"field": "user.username", "op": "eq", "value": "csp1"}]}))
    expect(page.get_by_test_id("audience-count")).to_have_attribute("data-count", "1", timeout=5000)
    watch.assert_clean("audience builder")

    # Template preview: the email's own CSS renders in the sandboxed frame; its script does not run.
    template = MessageTemplateFactory(
        key="csp-preview",
        email_body='Hello **{{ recipient.first_name }}**\n\n<script>document.body.dataset.ran = "yes"</script>',
    )
    open_page(page, f"{base}/admin/notifications/messagetemplate/{template.pk}/preview/?recipient=root", admin=True)
    email = page.frame_locator("[data-testid=email-html]")
    expect(email.locator(".sb-card")).to_have_css("background-color", "rgb(255, 255, 255)")
    expect(email.locator(".sb-card")).to_have_css("border-top-left-radius", "8px")
    expect(email.locator("body")).not_to_have_attribute("data-ran", "yes")
    watch.assert_clean("template preview")

    # Campaign page: the cancel confirmation (a static script now) still asks, and No means no.
    campaign = Campaign.objects.create(
        name="CSP spring", template=template, channels=["email"],
        audience=Audience.objects.create(name="CSP readers", kind=Audience.Kind.RULES, rules={}),
        category=Category.objects.create(key="csp-news", name="CSP news", kind="marketing"),
    )
    open_page(page, f"{base}/admin/notifications/campaign/{campaign.pk}/change/", admin=True)
    status = page.get_by_test_id("campaign-status")
    expect(status).to_have_text("Draft")
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.locator("[data-action=cancel]").click()
    expect(status).to_have_text("Draft")
    assert questions and "Cancel this campaign?" in questions[0]
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("[data-action=cancel]").click()
    expect(status).to_have_text("Cancelled")
    watch.assert_clean("campaign page")
    # The read-only page of a cancelled campaign runs without a script error (Unfold's show/hide
    # conditions once referred to the schedule field the read-only form no longer has).
    errors = []
    page.on("pageerror", lambda error: errors.append(error.message))
    open_page(page, f"{base}/admin/notifications/campaign/{campaign.pk}/change/", admin=True)
    expect(page.get_by_test_id("campaign-status")).to_have_text("Cancelled")
    page.wait_for_timeout(300)
    assert errors == []

    # Analytics: plotly (served locally) draws every chart; the htmx filter swaps them in place.
    build_ledger()
    open_page(page, f"{base}/admin/analytics/?start=2026-03-05&end=2026-03-11", admin=True)
    for chart in ("volume", "funnel", "channels", "opens"):
        expect(page.get_by_test_id(f"chart-{chart}")).to_have_attribute("data-rendered", "true")
    page.locator("select[name=channel]").select_option("sms")
    expect(page.get_by_test_id("total-planned")).to_have_attribute("data-value", "3")
    expect(page.get_by_test_id("chart-funnel")).to_have_attribute("data-rendered", "true")
    watch.assert_clean("analytics")
