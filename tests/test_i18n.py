"""Simplified Chinese (zh-hans): the inbox speaks it on request, and the shipped catalogue is whole and compiled."""

from __future__ import annotations

import ast
import gettext
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import NotificationFactory

ROOT = Path(__file__).resolve().parent.parent
LC_MESSAGES = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
PO = LC_MESSAGES / "django.po"
MO = LC_MESSAGES / "django.mo"
INBOX = reverse("notifications:inbox")
MSGFMT = shutil.which("msgfmt") or "/usr/bin/msgfmt"


# --- Pages ------------------------------------------------------------------------------------


@pytest.fixture
def unread_inbox(recipient):
    NotificationFactory(recipient=recipient, title="Order shipped")
    NotificationFactory(recipient=recipient, title="Weekly digest")


def _assert_chinese(html: str) -> None:
    assert '<html lang="zh-hans">' in html
    assert "收件箱" in html
    assert "全部标为已读" in html  # the mark-all-read button, shown because there are unread ones
    assert "2 条未读" in html
    assert "标为已读" in html
    assert "Mark all as read" not in html
    assert "Inbox</" not in html


@pytest.mark.django_db
def test_inbox_is_english_by_default(recipient_client, unread_inbox):
    html = recipient_client.get(INBOX).content.decode()
    assert '<html lang="en">' in html
    assert "Inbox" in html
    assert "Mark all as read" in html
    assert "收件箱" not in html


@pytest.mark.django_db
def test_inbox_in_chinese_from_language_cookie(recipient_client, unread_inbox):
    recipient_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    response = recipient_client.get(INBOX)
    assert response.status_code == 200
    assert response["Content-Language"] == "zh-hans"
    _assert_chinese(response.content.decode())


@pytest.mark.django_db
def test_inbox_in_chinese_from_accept_language(recipient_client, unread_inbox):
    response = recipient_client.get(INBOX, headers={"accept-language": "zh-hans"})
    assert response.status_code == 200
    _assert_chinese(response.content.decode())


@pytest.mark.django_db
def test_browser_zh_cn_falls_back_to_simplified_chinese(recipient_client, unread_inbox):
    """A browser that sends zh-CN (the usual header in mainland China) gets zh-hans."""
    html = recipient_client.get(INBOX, headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"}).content.decode()
    _assert_chinese(html)


@pytest.mark.django_db
def test_empty_inbox_in_chinese(recipient_client):
    recipient_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = recipient_client.get(INBOX).content.decode()
    assert "全部看完了" in html
    assert "全部标为已读" not in html


@pytest.mark.django_db
def test_set_language_switches_the_next_page(recipient_client, unread_inbox):
    assert "Mark all as read" in recipient_client.get(INBOX).content.decode()
    response = recipient_client.post(reverse("set_language"), {"language": "zh-hans", "next": INBOX})
    assert response.status_code == 302
    assert response["Location"] == INBOX
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    _assert_chinese(recipient_client.get(INBOX).content.decode())
    # And back again.
    recipient_client.post(reverse("set_language"), {"language": "en", "next": INBOX})
    html = recipient_client.get(INBOX).content.decode()
    assert '<html lang="en">' in html
    assert "Mark all as read" in html


def test_login_page_in_chinese(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = client.get(reverse("login")).content.decode()
    assert "登录" in html
    assert "用户名" in html


# --- The catalogue ----------------------------------------------------------------------------


def _parse_po(path: Path) -> list[dict]:
    """A small .po reader: one dict per entry with flags, msgid, msgid_plural and msgstr list."""
    entries: list[dict] = []
    entry: dict | None = None
    target: tuple[str, int | None] | None = None

    def flush() -> None:
        if entry is not None and "msgid" in entry:
            entries.append(entry)

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
            entry, target = None, None
            continue
        if entry is None:
            entry = {"flags": set(), "msgstr": {}, "obsolete": False}
        if line.startswith("#~"):
            entry["obsolete"] = True
        elif line.startswith("#,"):
            entry["flags"].update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            value = ast.literal_eval(line)
            if target[0] == "msgstr":
                entry["msgstr"][target[1]] += value
            else:
                entry[target[0]] += value
        else:
            keyword, _, value = line.partition(" ")
            value = ast.literal_eval(value)
            if keyword.startswith("msgstr"):
                index = int(keyword[7:-1]) if "[" in keyword else 0
                target = ("msgstr", index)
                entry["msgstr"][index] = value
            else:
                target = (keyword, None)
                entry[keyword] = value
    flush()
    return entries


def test_catalogue_is_complete():
    entries = _parse_po(PO)
    header = next(e for e in entries if e["msgid"] == "")
    assert "fuzzy" not in header["flags"]
    assert "Language: zh_Hans\n" in header["msgstr"][0]
    assert "Plural-Forms: nplurals=1; plural=0;" in header["msgstr"][0]
    assert "charset=UTF-8" in header["msgstr"][0]

    messages = [e for e in entries if e["msgid"] and not e["obsolete"]]
    assert len(messages) > 100
    fuzzy = [e["msgid"] for e in messages if "fuzzy" in e["flags"]]
    untranslated = [e["msgid"] for e in messages if not all(e["msgstr"].values())]
    assert not fuzzy, f"fuzzy entries: {fuzzy}"
    assert not untranslated, f"untranslated entries: {untranslated}"
    extra_plurals = [e["msgid"] for e in messages if set(e["msgstr"]) - {0}]
    assert not extra_plurals, f"zh has one plural form; drop msgstr[1+] from: {extra_plurals}"


def test_catalogue_passes_msgfmt_check(tmp_path):
    """msgfmt --check catches format-string mismatches such as a lost %(name)s."""
    result = subprocess.run(
        [MSGFMT, "--check", "--statistics", "-o", str(tmp_path / "check.mo"), str(PO)],
        capture_output=True, text=True, env={"LC_ALL": "C"},
    )
    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr, result.stderr


def test_placeholders_are_kept():
    placeholder = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrs]|\{\{\s*\w+\s*\}\}|\{\w*\}")
    for e in _parse_po(PO):
        if not e["msgid"] or e["obsolete"]:
            continue
        expected = sorted(placeholder.findall(e["msgid"]))
        # Chinese has one plural form: it is the plural's wording, with the plural's placeholders.
        plural = sorted(placeholder.findall(e.get("msgid_plural") or "")) or expected
        for text in e["msgstr"].values():
            assert sorted(placeholder.findall(text)) in (expected, plural), e["msgid"]


def test_compiled_catalogue_is_up_to_date(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run([MSGFMT, "-o", str(fresh), str(PO)], check=True, capture_output=True)
    with MO.open("rb") as committed_file, fresh.open("rb") as fresh_file:
        committed = gettext.GNUTranslations(committed_file)
        expected = gettext.GNUTranslations(fresh_file)
    assert committed._catalog == expected._catalog, (
        "locale/zh_Hans/LC_MESSAGES/django.mo is stale: run `manage.py compilemessages`"
    )
    assert committed.info().get("plural-forms") == "nplurals=1; plural=0;"
