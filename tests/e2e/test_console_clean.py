"""No page logs a JavaScript error: every role, every page it can reach, English and Chinese.

One Chromium context per role (signed in once), seeded demo data (``seed_demo``: every model has
rows). For each role the test visits every admin page its rules admit (``accounts.url_policy``):
each model's list, its first object's change page and its add page, plus the home, analytics (and
one campaign's analytics), reports, the audit log, system status, a template preview, the import
upload and the Outbox; a recipient visits the inbox and the preferences. A model page is visited
once per permission variant (editable, read-only, ...), by the first role that has it. Every page
is loaded in English, and each page once in Simplified Chinese. It listens to ``console`` messages of type error, ``pageerror``
and responses >= 400, and fails listing every offender (with a screenshot of each page that had
one, under ``var/screenshots/console-*.png``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import Browser, Page

from accounts.url_policy import NEVER_ADDED, rule_for
from notifications.models import Campaign, Journey, MessageTemplate, SignalTrigger, WebhookEndpoint

pytestmark = [pytest.mark.django_db(transaction=True)]

PASSWORD = "signalbox-demo"  # seed_demo's published demo password
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
LANGUAGES = ("en", "zh-hans")
STAFF = ("admin", "marketer", "operator", "manager")
SETTLE_MS = 100  # deferred work (charts, htmx loads) after the load event


def _url(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def dashboard_pages() -> list[tuple[str, str | None]]:
    pages: list[tuple[str, str | None]] = [
        ("admin:index", _url("admin:index")),
        ("dashboard:analytics", _url("dashboard:analytics")),
        ("reports:index", _url("reports:index")),
        ("reports:audit_log", _url("reports:audit_log")),
        ("ops:system_status", _url("ops:system_status")),
        ("admin:dashboard_importjob_upload", _url("admin:dashboard_importjob_upload")),
        ("dashboard:approvals", _url("dashboard:approvals")),
        ("dashboard:journeys", _url("dashboard:journeys")),
    ]
    campaign = Campaign.objects.filter(runs__isnull=False).order_by("pk").first()
    if campaign:
        pages.append(("dashboard:campaign", _url("dashboard:campaign", campaign.pk)))
        pages.append(("dashboard:approval", _url("dashboard:approval", campaign.pk)))
    trigger = SignalTrigger.objects.order_by("pk").first()
    if trigger:
        pages.append(("admin:notifications_signaltrigger_test", _url("admin:notifications_signaltrigger_test", trigger.pk)))
    journey = Journey.objects.order_by("pk").first()  # seed_demo's journeys, once it has them
    if journey:
        pages.append(("admin:notifications_journey_builder", _url("admin:notifications_journey_builder", journey.pk)))
        pages.append(("dashboard:journey", _url("dashboard:journey", journey.pk)))
        pages.append(("dashboard:journey_approval", _url("dashboard:journey_approval", journey.pk)))
        pages.append(("admin:notifications_journey_move", _url("admin:notifications_journey_move", journey.pk)))
    endpoint = WebhookEndpoint.objects.order_by("pk").first()  # the test makes one: seed_demo posts nowhere
    if endpoint:
        pages += [(f"admin:notifications_webhookendpoint_{verb}", _url(f"admin:notifications_webhookendpoint_{verb}", endpoint.pk))
                  for verb in ("send_test", "rotate_secret", "enable")]
    template = MessageTemplate.objects.order_by("pk").first()
    if template:
        pages.append(("admin:notifications_messagetemplate_preview",
                      _url("admin:notifications_messagetemplate_preview", template.pk)))
    return pages


def model_pages(opts) -> list[tuple[str, str | None]]:
    prefix = f"admin:{opts.app_label}_{opts.model_name}"
    pages = [(f"{prefix}_changelist", _url(f"{prefix}_changelist"))]
    if f"{opts.app_label}.{opts.model_name}" not in NEVER_ADDED:
        pages.append((f"{prefix}_add", _url(f"{prefix}_add")))
    # An unmanaged model has no table of rows to open (django_rq's "dashboard", with Redis).
    first = opts.model._default_manager.order_by("pk").first() if opts.managed else None
    if first is not None:
        pages.append((f"{prefix}_change", _url(f"{prefix}_change", first.pk)))
    return pages


def staff_pages(user, seen: set) -> list[tuple[str, str]]:
    """(url name, path) of every page ``user`` may open, by the same rules the server applies.

    A model's pages render alike for two users with the same permissions on that model (editable,
    read-only, with or without Add/Delete): each such variant is visited once, by the first role
    that has it (``seen``), which keeps the run short without leaving a variant out.
    """
    pages = dashboard_pages()
    for model in admin.site._registry:
        opts = model._meta
        variant = (opts.label_lower, *(user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")
                                       for action in ("view", "add", "change", "delete")))
        if variant in seen:
            continue
        seen.add(variant)
        pages += model_pages(opts)
    return [(name, path) for name, path in pages
            if path and (rule := rule_for(name)) is not None and rule.admits(user)]


RECIPIENT_PAGES = [
    ("notifications:inbox", "/notifications/"), ("notifications:preferences", "/notifications/preferences/"),
    ("shop:orders", "/shop/"),  # the demo shop's customer page with the embedded <signalbox-inbox>
]


class Listener:
    """Collects a page's console errors, uncaught exceptions and failed responses."""

    def __init__(self, page: Page):
        self.current: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.current.append(f"console: {m.text} @ {m.location.get('url', '')}"))
        page.on("pageerror", lambda e: self.current.append(f"pageerror: {e.name}: {e.message}"))
        page.on("response", lambda r: r.status >= 400 and self.current.append(f"HTTP {r.status} {r.url}"))

    def take(self) -> list[str]:
        found, self.current = self.current, []
        return found


def sign_in(page: Page, username: str, *, staff: bool) -> None:
    page.goto("/admin/login/?next=/admin/" if staff else "/accounts/login/?next=/notifications/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/(admin|notifications)/$"))


def visit_all(browser: Browser, base_url: str, username: str, pages: list[tuple[str, str]], *, staff: bool,
              translated: set[str]) -> list[str]:
    """Every page in English; in Chinese each page (by URL name) once, whichever role gets there
    first (``translated``): what a language changes is text, the same for every role."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    listener = Listener(page)
    offenders: list[str] = []
    try:
        sign_in(page, username, staff=staff)
        listener.take()
        for language in LANGUAGES:
            context.add_cookies([{"name": "django_language", "value": language, "url": base_url}])
            for name, path in pages:
                if language != LANGUAGES[0]:
                    if name in translated:
                        continue
                    translated.add(name)
                response = page.goto(path, wait_until="load")
                page.wait_for_timeout(SETTLE_MS)
                problems = listener.take()
                shown_in = page.locator("html").get_attribute("lang")
                if shown_in != language:
                    problems.append(f"shown in {shown_in!r}, not {language!r}")
                if response is not None and response.status >= 400 and not any(path in p for p in problems):
                    problems.append(f"HTTP {response.status} {path}")
                if problems:
                    slug = re.sub(r"[^a-z0-9]+", "-", f"{username}-{language}-{name}".lower()).strip("-")
                    page.screenshot(path=str(SHOTS / f"console-{slug}.png"), full_page=True)
                    offenders += [f"[{username} {language}] {path}: {problem}" for problem in problems]
    finally:
        context.close()
    return offenders


def test_no_page_logs_a_javascript_error(browser: Browser, live_server, settings, fast_live_inbox):
    settings.DEBUG = False
    call_command("seed_demo", "--users", "12", "--days", "2", "--force", verbosity=0, stdout=open("/dev/null", "w"))
    # An outbound webhook endpoint (disabled: nothing is posted), so its pages are walked too.
    WebhookEndpoint.objects.create(url="https://hooks.example.com/signalbox", description="CRM",
                                   events=["delivery.status_changed"], enabled=False,
                                   secret="whsec_" + "A" * 43 + "=")
    SHOTS.mkdir(parents=True, exist_ok=True)
    User = get_user_model()
    offenders: list[str] = []
    visited = 0
    seen: set = set()
    translated: set[str] = set()
    for username in STAFF:
        pages = staff_pages(User.objects.get(username=username), seen)
        assert len(pages) >= 5, (username, pages)
        visited += len(pages)
        offenders += visit_all(browser, live_server.url, username, pages, staff=True, translated=translated)
    offenders += visit_all(browser, live_server.url, "demo", RECIPIENT_PAGES, staff=False, translated=translated)
    assert visited > 60
    assert offenders == [], "\n" + "\n".join(offenders)
