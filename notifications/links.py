"""Absolute links to our own pages, as messages carry them (``SITE_URL`` + the path).

Every rendered message carries two or three of them (preferences, unsubscribe, the open pixel),
and ``reverse`` costs more than the rest of building a link: each named pattern is resolved once
and the token put into its place. The result is byte for byte ``SITE_URL + reverse(name,
args=[token])`` (tokens are URL-safe base64 and ``:``, which ``reverse`` leaves unquoted; a
test holds this). Cached per site URL and script prefix, so a changed setting is seen.
"""

from __future__ import annotations

import re

from django.urls import get_script_prefix, reverse

from . import conf

_TOKEN = "TOKEN0"  # a placeholder every token pattern accepts
_SAFE = re.compile(r"[A-Za-z0-9_\-:.]+")  # what reverse() passes through unquoted
_shapes: dict[tuple[str, str, str], tuple[str, str]] = {}


def token_url(name: str, token: str) -> str:
    """``SITE_URL + reverse(name, args=[token])``, resolving the pattern once, not per message."""
    key = (name, conf.site_url(), get_script_prefix())
    shape = _shapes.get(key)
    if shape is None:
        head, _sep, tail = (key[1] + reverse(name, args=[_TOKEN])).partition(_TOKEN)
        shape = _shapes[key] = (head, tail)
    if not _SAFE.fullmatch(token):  # never from our signers; reverse() quotes it
        return key[1] + reverse(name, args=[token])
    return f"{shape[0]}{token}{shape[1]}"


def page_url(name: str) -> str:
    """``SITE_URL + reverse(name)`` for a page without arguments, resolved once."""
    key = (name, conf.site_url(), get_script_prefix())
    shape = _shapes.get(key)
    if shape is None:
        shape = _shapes[key] = (key[1] + reverse(name), "")
    return shape[0]
