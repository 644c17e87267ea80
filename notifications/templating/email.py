"""The email body: Markdown in the layout, CSS inlined, and a plain-text part beside it.

Speed comes from markers. The body is rendered with every printed value replaced by a marker
(``\\ue000<n>\\ue001``), so the rendered Markdown is the same for every recipient of a branch of the
template. Markdown conversion, the layout and CSS inlining (the expensive steps: about a
millisecond together) happen once per distinct marked source and are cached; a recipient costs
the Jinja render plus splicing their escaped values into the cached pieces.

Safety comes from the same markers: a value is spliced in *after* Markdown, HTML-escaped, so a
recipient named ``<script>`` or ``[click](http://evil)`` is shown as exactly that text.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import css_inline
import markdown
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from .sandbox import TOKEN_CLOSE, TOKEN_OPEN

LAYOUT_TEMPLATE = "emails/layout.html"
BRAND = "Signalbox"
SLOT_OPEN, SLOT_CLOSE = "\ue002", "\ue003"
_PIECE = re.compile(f"{TOKEN_OPEN}(\\d+){TOKEN_CLOSE}|{SLOT_OPEN}([a-z_]+){SLOT_CLOSE}")
MARKDOWN_EXTENSIONS = ("tables", "fenced_code", "sane_lists", "nl2br")

_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
_local = threading.local()


def slot(name: str) -> str:
    return f"{SLOT_OPEN}{name}{SLOT_CLOSE}"


def markdown_to_html(source: str) -> str:
    """Markdown -> HTML with one converter per thread (building one costs more than converting)."""
    converter = getattr(_local, "markdown", None)
    if converter is None:
        converter = _local.markdown = markdown.Markdown(extensions=list(MARKDOWN_EXTENSIONS), output_format="html")
    converter.reset()
    return converter.convert(source)


# --- The plain-text part -------------------------------------------------------------------------

_ESCAPABLE = "\\`*_{}[]()#+-.!>|"
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>|])")
_FENCE = re.compile(r"^ {0,3}(?:```|~~~).*$\n?", re.M)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_BR = re.compile(r"<br\s*/?>", re.I)
_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^>]*>", re.S)
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EM_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_EM_UNDERSCORE = re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])")
_CODE = re.compile(r"`([^`\n]+)`")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+$", re.M)


def _link(match: re.Match) -> str:
    label, url = match.group(1), match.group(2)
    return url if label.strip() == url or not url else f"{label} ({url})"


def _heading(match: re.Match) -> str:
    level, title = len(match.group(1)), match.group(2)
    if level <= 2:
        return f"{title}\n{('=' if level == 1 else '-') * max(3, len(title))}"
    return title


def markdown_to_text(source: str) -> str:
    """A readable plain-text version of a Markdown source: links as "label (url)", emphasis
    and tags dropped, headings underlined. Markers pass through untouched."""
    text = source.replace("\r\n", "\n")
    # Backslash escapes become private characters, so the rules below cannot see them.
    text = _ESCAPED.sub(lambda m: chr(0xF000 + _ESCAPABLE.index(m.group(1))), text)
    text = _FENCE.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(_link, text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _BR.sub("\n", text)
    text = _TAG.sub("", text)
    text = _HEADING.sub(_heading, text)
    text = _STRONG.sub(r"\2", text)
    text = _EM_STAR.sub(r"\1", text)
    text = _EM_UNDERSCORE.sub(r"\1", text)
    text = _CODE.sub(r"\1", text)
    text = html.unescape(text)
    text = "".join(_ESCAPABLE[ord(c) - 0xF000] if 0xF000 <= ord(c) < 0xF000 + len(_ESCAPABLE) else c for c in text)
    text = _TRAILING.sub("", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


# --- Pieces: cached text with markers, and splicing values in ------------------------------------

@dataclass(frozen=True)
class Pieces:
    """Text split at markers: ``literals[i]`` comes before ``keys[i]`` (an int marker, a str slot)."""

    literals: tuple[str, ...]
    keys: tuple[int | str, ...]

    @classmethod
    def split(cls, text: str) -> Pieces:
        literals, keys, at = [], [], 0
        for match in _PIECE.finditer(text):
            literals.append(text[at:match.start()])
            keys.append(int(match.group(1)) if match.group(1) is not None else match.group(2))
            at = match.end()
        literals.append(text[at:])
        return cls(tuple(literals), tuple(keys))

    def join(self, values: Sequence[str], slots: Mapping[str, str], *, escape: bool) -> str:
        out = []
        count = len(values)
        for literal, key in zip(self.literals, self.keys, strict=False):
            out.append(literal)
            if type(key) is int:
                value = values[key] if key < count else ""
            else:
                value = slots.get(key, "")
            out.append(html.escape(value) if escape else value)
        out.append(self.literals[-1])
        return "".join(out)


@lru_cache(maxsize=16)
def _layout(locale: str, with_unsubscribe: bool) -> str:
    with translation.override(locale):
        return render_to_string(LAYOUT_TEMPLATE, {
            "lang": locale,
            "brand": BRAND,
            "subject": slot("subject"),
            "content": mark_safe(slot("content")),  # the inlined body goes here, before inlining
            "preferences_url": slot("preferences_url"),
            "unsubscribe_url": slot("unsubscribe_url") if with_unsubscribe else "",
        })


@lru_cache(maxsize=8)
def _text_footer(locale: str, with_unsubscribe: bool) -> str:
    with translation.override(locale):
        lines = [_("Manage your email preferences: %(url)s") % {"url": slot("preferences_url")}]
        if with_unsubscribe:
            lines.append(_("Unsubscribe: %(url)s") % {"url": slot("unsubscribe_url")})
    return "\n\n-- \n" + "\n".join(lines)


@dataclass(frozen=True)
class EmailDocument:
    html: Pieces
    text: Pieces


@lru_cache(maxsize=256)
def email_document(*, locale: str, source: str, with_unsubscribe: bool) -> EmailDocument:
    """The layout around one marked Markdown source, CSS inlined, and its plain-text twin.

    The layout is inlined together with the body, so selectors such as ``.sb-content a`` style
    the Markdown output exactly as the stylesheet says; ``@media`` rules stay in a ``<style>``.
    """
    body = markdown_to_html(source)
    document = _layout(locale, with_unsubscribe).replace(slot("content"), body)
    inlined = _INLINER.inline(document)
    text = markdown_to_text(source) + _text_footer(locale, with_unsubscribe)
    return EmailDocument(html=Pieces.split(inlined), text=Pieces.split(text))
