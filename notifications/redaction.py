"""Recipient-facing links made inert before staff see them (README "Security model").

A message carries links that act for its recipient without a sign-in: one-click unsubscribe,
the preference centre, the open pixel and click tracking, password reset and invitation links.
Staff read messages in the Outbox, the ledger and previews; a working link there would let them
(or anyone they forward it to) act as the recipient. ``inert_links`` keeps each such link
recognisable but replaces its token, so it no longer does anything.

Which links carry a token is not listed here: it is every URL whose rule in
``accounts.url_policy`` is ``TOKEN``, so a new token page is covered the day it is added.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.urls import Resolver404, resolve

from accounts.url_policy import TOKEN, rule_for

from . import conf

HIDDEN = "…"
_URL = re.compile(r"""(?P<url>(?:https?://[^\s"'<>()\\]+)|(?:(?<=["'(])/[^\s"'<>()\\]+))""")


def _our_path(url: str, site: str):
    """``(path, resolver match)`` of a link to this site, or ``(path, None)`` for another site's
    link or a path no view answers."""
    path = url[len(site):] if url.startswith(site) else url
    if not path.startswith("/"):
        return path, None  # another site's link: not ours to judge
    try:
        return path, resolve(urlsplit(path).path)
    except Resolver404:
        return path, None


def _inert(url: str, site: str) -> str:
    path, match = _our_path(url, site)
    if match is None or rule_for(match.view_name) is not TOKEN:
        return url
    parts = urlsplit(path)
    inert_path = parts.path
    for value in match.kwargs.values():
        if isinstance(value, str) and len(value) > 2:
            inert_path = inert_path.replace(value, HIDDEN)
    return url[: len(url) - len(path)] + inert_path


def inert_links(text: str) -> str:
    """``text`` (HTML, plain text or a header value) with every token link of ours made inert."""
    if not text:
        return text
    site = conf.site_url()
    return _URL.sub(lambda m: _inert(m.group("url"), site), text)


def inert_value(value):
    """``inert_links`` through a JSON-like value (dicts, lists, strings), e.g. headers or content."""
    if isinstance(value, str):
        return inert_links(value)
    if isinstance(value, dict):
        return {key: inert_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [inert_value(item) for item in value]
    return value


BLANK_PIXEL = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
_IMG_SRC = re.compile(r"""(?P<before><img\b[^>]*?\bsrc\s*=\s*["'])(?P<url>[^"']+)""", re.IGNORECASE)


def without_open_pixels(html: str) -> str:
    """``html`` with our open-tracking pixels replaced by a blank image, for showing a message to
    staff: displaying it must not record an open for its recipient (nor ask for an inert one)."""
    if not html:
        return html
    site = conf.site_url()

    def blank(match: re.Match) -> str:
        url = match.group("url")
        ours = _our_path(url, site)[1]
        is_pixel = ours is not None and ours.view_name == "notifications:track_open"
        return match.group("before") + (BLANK_PIXEL if is_pixel else url)

    return _IMG_SRC.sub(blank, html)
