"""The email body: Markdown in the layout, CSS inlined, and a plain-text part beside it.

Speed comes from markers. The body is rendered with every printed value replaced by a marker
(``\\ue000<n>\\ue001``), so the rendered Markdown is the same for every recipient of a branch of the
template. Markdown conversion, the layout and CSS inlining (the expensive steps: about a
millisecond together) happen once per distinct marked source and are cached; a recipient costs
the Jinja render plus splicing their escaped values into the cached pieces.

Safety comes from the same markers: a value is spliced in *after* Markdown, HTML-escaped, so a
recipient named ``<script>`` or ``[click](http://evil)`` is shown as exactly that text. The
marketer's own HTML is sanitised (nh3, an allow-list) once per marked source, before it goes into
the layout: no scripts, styles, frames, forms or event handlers, links and images only to
``http``/``https`` (and ``mailto`` for links). A link whose address holds a printed value
(``[Shop]({{ shop_url }})``) could become ``javascript:`` once the value is in, so its address is
kept as a *link slot* and checked per recipient after splicing (``link_is_safe``); an unsafe one
becomes ``#`` (nothing in the plain-text part). The layout's own markup is never sanitised.
"""

from __future__ import annotations

import html
import re
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import css_inline
import markdown
import nh3
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from .sandbox import TOKEN_CLOSE, TOKEN_OPEN

LAYOUT_TEMPLATE = "emails/layout.html"
BRAND = "Signalbox"
SLOT_OPEN, SLOT_CLOSE = "\ue002", "\ue003"
LINK_OPEN, LINK_CLOSE = "\ue004", "\ue005"  # around an address that holds printed values
_PIECE = re.compile(
    f"{TOKEN_OPEN}(\\d+){TOKEN_CLOSE}|{SLOT_OPEN}([a-z_]+){SLOT_CLOSE}|{LINK_OPEN}([^{LINK_CLOSE}]*){LINK_CLOSE}"
)
MARKDOWN_EXTENSIONS = ("tables", "fenced_code", "sane_lists", "nl2br")
# Column alignment as ``align``, not ``style``: the sanitiser allows no style attribute.
MARKDOWN_CONFIGS = {"tables": {"use_align_attribute": True}}

_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
_local = threading.local()


def slot(name: str) -> str:
    return f"{SLOT_OPEN}{name}{SLOT_CLOSE}"


def markdown_to_html(source: str) -> str:
    """Markdown -> HTML with one converter per thread (building one costs more than converting)."""
    converter = getattr(_local, "markdown", None)
    if converter is None:
        converter = _local.markdown = markdown.Markdown(
            extensions=list(MARKDOWN_EXTENSIONS), extension_configs=MARKDOWN_CONFIGS, output_format="html"
        )
    converter.reset()
    return converter.convert(source)


# --- Sanitising the marketer's HTML --------------------------------------------------------------

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_URL_IGNORED = re.compile("[\t\n\r]")  # browsers drop these anywhere in a URL
_URL_TRIMMED = "".join(chr(c) for c in range(0x21))  # and C0 controls and spaces around it
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")


def link_is_safe(url: str) -> bool:
    """Whether ``url`` is relative or ``http``/``https``/``mailto``, read as a browser reads it
    (so ``" java<TAB>script:..."`` is ``javascript:``; an entity is text here, already decoded)."""
    match = _SCHEME.match(_URL_IGNORED.sub("", url).strip(_URL_TRIMMED))
    return match is None or match.group(1).lower() in LINK_SCHEMES


# nh3 parses every address, and a marker (private-use characters) is not valid in a host name:
# ``https://{{ shop_host }}/`` would lose its href. So markers cross nh3 as ASCII stand-ins.
# The process-random part means a source cannot spell one by chance.
_STAND_IN = f"sbv{secrets.token_hex(8)}"
_VALUE_MARK = re.compile(f"{TOKEN_OPEN}(\\d+){TOKEN_CLOSE}")
_STOOD_IN = re.compile(f"{_STAND_IN}(\\d+)x")


def _mark_value_link(url: str) -> str:
    """nh3 hands over relative addresses. One with a printed value has no scheme *yet* (the value
    may bring ``javascript:``), so it becomes a link slot, checked once the value is in."""
    return f"{LINK_OPEN}{url}{LINK_CLOSE}" if _STAND_IN in url else url


EMAIL_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small",
    "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
EMAIL_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start"},
    "abbr": {"title"},
}
# Tags removed with everything inside them (other unknown tags are dropped, their text kept).
EMAIL_DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "object", "embed", "noscript", "template", "textarea", "select", "title",
})
_SANITISER = nh3.Cleaner(
    tags=set(EMAIL_TAGS), clean_content_tags=set(EMAIL_DROPPED_WITH_CONTENT), attributes=EMAIL_ATTRIBUTES,
    url_schemes=set(LINK_SCHEMES), url_relative=_mark_value_link, link_rel=None, strip_comments=True,
)
_OUR_MARKS = {ord(LINK_OPEN): None, ord(LINK_CLOSE): None, ord(SLOT_OPEN): None, ord(SLOT_CLOSE): None}


def sanitise_email_html(body: str) -> str:
    """The marketer's body HTML (Markdown output, values still as markers) cut to the allow-list.

    Value markers come out as they went in; link and slot marks a source could only contain by
    forgery are removed first, so only this function makes them.
    """
    body = _VALUE_MARK.sub(lambda m: f"{_STAND_IN}{m.group(1)}x", body.translate(_OUR_MARKS))
    return _STOOD_IN.sub(lambda m: f"{TOKEN_OPEN}{m.group(1)}{TOKEN_CLOSE}", _SANITISER.clean(body))


# --- The plain-text part -------------------------------------------------------------------------

_ESCAPABLE = "\\`*_{}[]()#+-.!>|"
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>|])")
_FENCE = re.compile(r"^ {0,3}(?:```|~~~).*$\n?", re.M)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^( {0,3}\[[^\]]+\]:[ \t]*)<?([^\s>]+)>?", re.M)
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_BR = re.compile(r"<br\s*/?>", re.I)
_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^>]*>", re.S)
_BLOCK_TAG = re.compile(r"<(/?)(script|style|iframe|object|embed|noscript|template|textarea|select|title)\b[^>]*>",
                        re.I)
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EM_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_EM_UNDERSCORE = re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])")
_CODE = re.compile(r"`([^`\n]+)`")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+$", re.M)


def _text_url(url: str) -> str | None:
    """A link's address for the plain-text part: as written, a link slot when it holds a printed
    value, ``None`` when it would run something (``javascript:``)."""
    if TOKEN_OPEN in url:
        return f"{LINK_OPEN}{url}{LINK_CLOSE}"
    return url if link_is_safe(url) else None


def _link(match: re.Match) -> str:
    label, url = match.group(1), match.group(2)
    if label.strip() == url or not url:
        return _text_url(url) or ""
    shown = _text_url(url)
    return f"{label} ({shown})" if shown is not None else label


def _reference(match: re.Match) -> str:
    shown = _text_url(match.group(2))
    return f"{match.group(1)}{shown}" if shown is not None else ""


def _heading(match: re.Match) -> str:
    level, title = len(match.group(1)), match.group(2)
    if level <= 2:
        return f"{title}\n{('=' if level == 1 else '-') * max(3, len(title))}"
    return title


def _drop_blocks(text: str) -> str:
    """Remove what the HTML part drops with its content (``<script>…</script>``...), in one pass;
    an unclosed block runs to the end, as it does in a browser."""
    out, at, inside = [], 0, None
    for match in _BLOCK_TAG.finditer(text):
        closing, name = match.group(1) == "/", match.group(2).lower()
        if inside is None and not closing:
            out.append(text[at:match.start()])
            inside = name
        elif closing and name == inside:
            inside, at = None, match.end()
    if inside is None:
        out.append(text[at:])
    return "".join(out)


def markdown_to_text(source: str) -> str:
    """A readable plain-text version of a Markdown source: links as "label (url)", emphasis
    and tags dropped, headings underlined. Markers pass through untouched."""
    text = source.replace("\r\n", "\n").translate(_OUR_MARKS)
    # Backslash escapes become private characters, so the rules below cannot see them.
    text = _ESCAPED.sub(lambda m: chr(0xF000 + _ESCAPABLE.index(m.group(1))), text)
    text = _FENCE.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(_link, text)
    text = _REFERENCE.sub(_reference, text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _BR.sub("\n", text)
    text = _drop_blocks(text)
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
    """Text split at markers: ``literals[i]`` comes before ``keys[i]`` (an int marker, a str slot,
    or a :class:`LinkSlot`)."""

    literals: tuple[str, ...]
    keys: tuple[int | str | LinkSlot, ...]

    @classmethod
    def split(cls, text: str) -> Pieces:
        literals, keys, at = [], [], 0
        for match in _PIECE.finditer(text):
            literals.append(text[at:match.start()])
            if match.group(1) is not None:
                keys.append(int(match.group(1)))
            elif match.group(2) is not None:
                keys.append(match.group(2))
            else:
                keys.append(LinkSlot(Pieces.split(match.group(3))))
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
            elif type(key) is str:
                value = slots.get(key, "")
            else:
                out.append(key.join(values, slots, escape=escape))
                continue
            out.append(html.escape(value) if escape else value)
        out.append(self.literals[-1])
        return "".join(out)


@dataclass(frozen=True)
class LinkSlot:
    """An address with printed values in it, checked per recipient once they are spliced in."""

    pieces: Pieces

    def join(self, values: Sequence[str], slots: Mapping[str, str], *, escape: bool) -> str:
        # In HTML the literal parts are serialised (``&amp;``): read them as the browser will.
        literals = [html.unescape(part) for part in self.pieces.literals] if escape else self.pieces.literals
        url = Pieces(tuple(literals), self.pieces.keys).join(values, slots, escape=False)
        if not link_is_safe(url):
            return "#" if escape else ""
        return html.escape(url) if escape else url


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
    body = sanitise_email_html(markdown_to_html(source))  # before the layout, which stays as written
    document = _layout(locale, with_unsubscribe).replace(slot("content"), body)
    inlined = _INLINER.inline(document)
    text = markdown_to_text(source) + _text_footer(locale, with_unsubscribe)
    return EmailDocument(html=Pieces.split(inlined), text=Pieces.split(text))
