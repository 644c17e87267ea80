"""Every admin, dashboard and recipient page in Simplified Chinese, with no English left behind.

The crawl signs in as a superuser with ``zh-hans`` active and GETs every URL the project serves
(the same walk as ``tests/accounts/test_url_policy.py``: every model admin's list, add and change
page, the custom admin views, analytics, reports, status, inbox, preference centre, unsubscribe),
with data on each page. While it runs, every message looked up through gettext / ngettext /
pgettext / npgettext in the zh-hans catalogue is recorded; a msgid the catalogue lacks fails the
test with the URL it was seen on. The rendered HTML is also scanned for a few English UI words
that reach a page without gettext (hard-coded in a template or in JavaScript).

A missing msgid is fixed by appending it to ``locale/zh_Hans/LC_MESSAGES/django.po`` (our catalogue
comes first through ``LOCALE_PATHS``, so it also fills gaps in Unfold's and other packages'
catalogues) and running ``manage.py compilemessages``. A string that is rightly the same in
Chinese (a brand, "CSV") goes in ``SAME_IN_CHINESE`` with the reason.
"""

from __future__ import annotations

import re
from collections import defaultdict
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation
from django.utils.translation import trans_real

from accounts.url_policy import rule_for, unnamed_rule
from tests.accounts.test_url_policy import QUERIES, concrete, objects, url_patterns, users_by_role

pytestmark = pytest.mark.django_db

LANGUAGE = "zh-hans"

# msgids that are looked up and rightly shown as they are in Chinese. One reason each.
SAME_IN_CHINESE: dict[str, str] = {
    "CSV": "a file format's name",
    "XLSX": "a file format's name",
    "PDF": "a file format's name",
    "JSON": "a format's name",
    "SMS": "the channel's usual name in Chinese UIs too",
    "RRULE": "the iCalendar term a marketer types",
    "URL": "the usual term in Chinese UIs",
    "ID": "the usual term in Chinese UIs",
    "IP": "the usual term in Chinese UIs",
    "Signalbox": "the product's name",
    "Unfold": "a product's name",
    "Django": "a product's name",
    "Slack": "a product's name",
    "Apprise": "a product's name",
    "Twilio": "a product's name",
    "English": "a language shown in its own name in the language switcher",
    "简体中文": "a language shown in its own name in the language switcher",
}

# Stored values that rightly show as they are, with the reason.
SHOWN_AS_STORED: dict[str, str] = {
    "zh-hans": "the language switcher shows each language's code next to its name",
    "webpush": "also a receipt's source on the delivery events list (webpush, anymail, click): an identifier",
}

# Names of URL patterns the crawl does not open as a page: downloads, streams, machine endpoints,
# signing out. Anything else that answers with something other than HTML is skipped anyway.
NOT_PAGES = re.compile(
    r"^(anymail:|webhooks:|push:|set_language$|logout$|admin:(logout|autocomplete|jsi18n)$"
    r"|ops:(healthz|readyz|metrics)$|reports:(export|request_pdf|campaign_pdf|download)$"
    r"|notifications:(stream|open|broadcast_open|track_open|track_click)$|.*_export_personal_data$)"
)

# English UI words that would show on a page without going through gettext. Matched as whole text
# nodes or attribute values (placeholder, title, aria-label) of the rendered HTML, so a data value
# that happens to contain one of them does not trip it.
ENGLISH_UI_WORDS = (
    "Light", "Dark", "System", "Filters", "General", "Search", "Save", "Delete", "Cancel", "Close",
    "Actions", "Add", "Change", "History", "Home", "Log out", "Previous", "Next", "Apply", "Reset",
    "Search apps and models...", "Run", "Go", "Yes", "No", "Status", "Name", "Date", "Preview",
    "PREVIEWED", "PENDING", "DONE", "FAILED", "RUNNING", "Pending", "Done", "Failed",
)
_TEXT_NODE = re.compile(r">\s*([^<>{}]+?)\s*<")
_ATTRIBUTE = re.compile(r'\b(?:placeholder|title|aria-label)="([^"]+)"')


class Misses:
    """The untranslated msgids seen, each with the URLs it was seen on."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = defaultdict(set)
        self.url = "(outside a request)"

    def add(self, key: str) -> None:
        """``key`` is a msgid, or ``"context\x04msgid"`` for pgettext."""
        if key.strip() and key.split("\x04")[-1] not in SAME_IN_CHINESE:
            self.seen[key].add(self.url)

    def report(self) -> str:
        lines = [f"{len(self.seen)} msgid(s) have no {LANGUAGE} translation (append them to "
                 "locale/zh_Hans/LC_MESSAGES/django.po, then compilemessages):"]
        for key in sorted(self.seen, key=lambda k: k.split("\x04")[::-1]):
            urls = sorted(self.seen[key])
            shown = ", ".join(urls[:3]) + (f" (+{len(urls) - 3} more)" if len(urls) > 3 else "")
            context, _, msgid = key.rpartition("\x04")
            where = f"msgctxt {context!r} " if context else ""
            lines.append(f"  {where}msgid {msgid!r}  seen on {shown}")
        return "\n".join(lines)


@contextmanager
def recording(misses: Misses):
    """Record every lookup the zh-hans catalogue cannot answer.

    ``trans_real.gettext`` and ``pgettext`` end in ``DjangoTranslation.gettext`` (pgettext looks up
    ``"context\\x04msgid"``) and ``ngettext`` / ``npgettext`` in ``DjangoTranslation.ngettext``: the
    class is where every lookup passes, whatever module called it.
    """
    cls = trans_real.DjangoTranslation
    original_gettext, original_ngettext = cls.gettext, cls.ngettext

    def ours(translation_object) -> bool:
        return translation_object.language() == LANGUAGE

    def gettext(self, message):
        if ours(self) and message not in self._catalog:
            misses.add(message)
        return original_gettext(self, message)

    def ngettext(self, msgid1, msgid2, n):
        if ours(self):
            try:
                self._catalog.plural(msgid1, n)
            except KeyError:
                misses.add(msgid1)
        return original_ngettext(self, msgid1, msgid2, n)

    cls.gettext, cls.ngettext = gettext, ngettext
    try:
        yield misses
    finally:
        cls.gettext, cls.ngettext = original_gettext, original_ngettext


OUR_APPS = ("notifications", "dashboard", "channels_adapters", "ops", "accounts", "demo_shop")


def raw_choice_values() -> set[str]:
    """Stored values of our models' choice fields whose label reads differently ("previewed" for
    "Previewed"): one shown as a page's whole text is a value that skipped its translated label."""
    from django.apps import apps

    values = set()
    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS:
            continue
        for field in model._meta.get_fields():
            for value, _label in getattr(field, "flatchoices", None) or ():
                if isinstance(value, str) and len(value) > 2 and "_" not in value and value != str(_label):
                    values.add(value)
    return values - set(SHOWN_AS_STORED)


# An attribute a person reads (placeholder, tooltip, screen-reader label) in plain English words:
# "Search campaigns", "Filter by name…". Examples (name@example.com, FREQ=DAILY) do not match.
_ENGLISH_PHRASE = re.compile(r"^[A-Z][a-z]+(?: [A-Za-z][a-z]*)+(?:\.\.\.|…)?$")


def english_left(html: str, raw_values: frozenset[str] = frozenset()) -> set[str]:
    """English UI words (and raw choice values) that are a whole text node or attribute value of
    ``html``, and attributes people read that are English phrases."""
    body = re.sub(r"<(script|style|textarea|pre|code)\b.*?</\1>", "", html, flags=re.S | re.I)
    attributes = set(_ATTRIBUTE.findall(body))
    found = {m.strip() for m in _TEXT_NODE.findall(body)} | attributes
    phrases = {value for value in attributes if _ENGLISH_PHRASE.match(value)}
    return (found & (set(ENGLISH_UI_WORDS) | raw_values)) | phrases


def crawl_data(superuser) -> dict[str, object]:
    """A row of everything, a small demo shop (campaigns in several states, history, recipients
    with Chinese names), and a ledger with figures so analytics and reports draw charts."""
    from dashboard.models import ImportJob
    from demo_shop.seeding.data import demo_data_seed
    from tests.dashboard.analytics_data import build_ledger

    demo_data_seed(users=12, days=2)
    build_ledger()
    rows = objects(superuser)
    for status in ImportJob.Status:  # the import list shows a label for each
        ImportJob.objects.create(original_name=f"{status}.csv", file=f"imports/{status}.csv", status=status)
    return rows


def pages(rows) -> list[tuple[str, str]]:
    """(URL name or route, URL) of every page to open."""
    from notifications.tokens import preferences_token, unsubscribe_token

    found = []
    for route, name, pattern in url_patterns():
        label = name or route
        if NOT_PAGES.search(label) or (rule_for(name) if name else unnamed_rule(route)) is None:
            continue
        if name in ("notifications:unsubscribe", "notifications:preferences_token"):
            continue  # opened below with real tokens
        url = concrete(route, name, pattern, rows)
        if url is not None:
            found.append((label, url))
    delivery = rows["notifications.delivery"]
    found.append(("notifications:unsubscribe", f"/notifications/u/{unsubscribe_token(delivery.pk)}/"))
    found.append(("notifications:preferences_token",
                  f"/notifications/preferences/{preferences_token(delivery.recipient_id)}/"))
    return found


@pytest.mark.slow
def test_every_page_is_in_chinese():
    users = users_by_role()
    superuser = users["superuser"]
    rows = crawl_data(superuser)
    client = Client(raise_request_exception=False)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = LANGUAGE
    misses, english, broken = Misses(), defaultdict(set), []
    raw_values = frozenset(raw_choice_values())
    visited: list[str] = []
    with recording(misses):
        for label, url in pages(rows):
            client.force_login(superuser)
            client.cookies[settings.LANGUAGE_COOKIE_NAME] = LANGUAGE
            misses.url = url
            response = client.get(url, QUERIES.get(label, {}))
            if response.status_code >= 500:
                broken.append(f"GET {url} ({label}) answered {response.status_code}")
                continue
            if response.streaming or "text/html" not in response.get("Content-Type", ""):
                continue
            html = response.content.decode()
            visited.append(url)
            for word in english_left(html, raw_values):
                english[word].add(url)
    translation.activate(settings.LANGUAGE_CODE)
    # The walk itself works: it rendered the admin, its models, analytics and the recipient pages.
    assert len(visited) > 120, visited
    for must in ("/admin/", "/admin/analytics/", "/notifications/", "/notifications/preferences/",
                 "/admin/notifications/category/", "/admin/dashboard/importjob/"):
        assert must in visited, must
    assert any(url.startswith("/notifications/u/") for url in visited)
    problems = []
    if misses.seen:
        problems.append(misses.report())
    if english:
        problems.append("English UI words on pages in Chinese (not passed through gettext):\n" + "\n".join(
            f"  {word!r} on {', '.join(sorted(urls)[:3])}" for word, urls in sorted(english.items())))
    problems.extend(broken)
    assert not problems, "\n\n".join(problems)


def test_the_recorder_sees_misses_and_not_hits():
    misses = Misses()
    with translation.override(LANGUAGE), recording(misses):
        assert translation.gettext("Inbox") == "收件箱"
        translation.gettext("A message nobody translated")
        translation.pgettext("some context", "Another one nobody translated")
        translation.ngettext("%(n)s apple nobody translated", "%(n)s apples", 2)
        translation.gettext("CSV")
    assert set(misses.seen) == {
        "A message nobody translated", "some context\x04Another one nobody translated",
        "%(n)s apple nobody translated",
    }
    assert "msgctxt 'some context' msgid 'Another one nobody translated'" in misses.report()


def test_english_scan_reads_text_and_attributes_not_data():
    html = ('<button>Light</button><input placeholder="Search"><p>Light rain in the Dark Peak</p>'
            '<input placeholder="Search campaigns..."><input placeholder="name@example.com">'
            '<input placeholder="搜索营销活动"><span title="FREQ=DAILY">')
    assert english_left(html) == {"Light", "Search", "Search campaigns..."}
