"""Marketer-authored email is cut to an allow-list before it is sent (nh3), once per source.

On the old code the Markdown body passed raw HTML through: ``<script>``, event handlers,
``<iframe>``/``<form>``/``<style>`` and ``javascript:`` links reached recipients' inboxes, and a
link whose address was a printed value (``[Shop]({{ link }})``) became ``javascript:`` when the
value was. The plain-text part carried ``javascript:`` links too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, MessageTemplate
from notifications.templating import TemplateRenderError
from notifications.templating.compiled import compile_parts
from notifications.templating.email import email_document
from tests.factories import RecipientProfileFactory, UserFactory

RECIPIENT = {"first_name": "Ada", "last_name": "Lovelace", "username": "ada", "email": "ada@example.com"}

HOSTILE_HTML = {
    "script": "<script>alert(1)</script>",
    "script in Markdown": "Hi\n\n<script src=https://evil.example/x.js></script>",
    "event handler": '<img src="https://img.example/a.png" onerror="alert(1)">',
    "event handler on a block": '<div onclick="alert(1)" onmouseover="alert(2)">hover</div>',
    "javascript link": '<a href="javascript:alert(1)">x</a>',
    "javascript Markdown link": "[x](javascript:alert(1))",
    "javascript reference link": "[x][1]\n\n[1]: javascript:alert(1)",
    "obfuscated javascript": '<a href=" JaVa&#x09;ScRiPt:alert(1)">x</a>',
    "vbscript": '<a href="vbscript:msgbox(1)">x</a>',
    "data link": '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    "data image": '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "object": '<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x">',
    "form": '<form action="https://evil.example/"><input name="card"><button>Pay</button></form>',
    "style": "<style>body { display: none }</style>",
    "style attribute": '<p style="position:fixed;top:0;background:url(javascript:alert(1))">x</p>',
    "svg": '<svg><script>alert(1)</script></svg><math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "base and link": '<base href="https://evil.example/"><link rel="stylesheet" href="https://evil.example/x.css">',
}

BLOCKED_TAGS = {"script", "iframe", "object", "embed", "form", "input", "button", "svg", "math", "meta", "base",
                "link", "frame", "frameset"}


def url_is_safe(url: str) -> bool:
    """Relative, http(s) or mailto, read as a browser reads an address: tabs and newlines dropped
    anywhere, control characters and spaces trimmed, the scheme case-insensitive."""
    cleaned = re.sub("[\t\n\r]", "", url).strip("".join(chr(c) for c in range(0x21)))
    scheme = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*):", cleaned)
    return scheme is None or scheme.group(1).lower() in ("http", "https", "mailto")


class _Audit(HTMLParser):
    """Everything a mail client could run or be redirected by, in an HTML document's body."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.handlers: list[str] = []
        self.urls: list[str] = []
        self.styles = 0
        self.in_body = False

    def handle_starttag(self, tag, attrs):
        self.styles += tag == "style"
        self.in_body = self.in_body or tag == "body"
        if not self.in_body:
            return  # the layout's <head> is ours (meta tags, the @media <style>)
        self.tags.append(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag}.{name}")
            if name in ("href", "src", "action", "data", "formaction", "xlink:href", "background"):
                self.urls.append(value or "")


def audit(html: str) -> _Audit:
    parser = _Audit()
    parser.feed(html)
    return parser


def render_email(body: str, **context) -> dict:
    compiled = compile_parts(parts={"email_subject": "Hello", "email_body": body})
    return compiled.render(channel="email", locale="en", context={"recipient": RECIPIENT, **context})


@pytest.mark.parametrize("body", HOSTILE_HTML.values(), ids=HOSTILE_HTML.keys())
def test_nothing_that_runs_reaches_the_email(body):
    content = render_email(body)
    found = audit(content["html"])

    assert not set(found.tags) & BLOCKED_TAGS
    assert found.handlers == []
    assert found.styles == 1  # the layout's own <style> (its @media rules), nothing from the author
    # ...and no author CSS was inlined from a <style> or kept in a style attribute
    assert not re.search(r"position:\s*fixed|display:\s*none|url\(", content["html"])
    assert all(url_is_safe(url) for url in found.urls), found.urls
    assert "javascript:" not in content["text"].lower() and "alert(1)" not in content["text"]


def test_ordinary_formatting_is_kept():
    body = (
        "# Spring sale\n\n## Details\n\nHello **bold**, *em*, `code`, ~~gone~~ <u>under</u> <sub>2</sub>.\n\n"
        "- one\n- two\n\n1. first\n2. second\n\n> quoted\n\n```\npre block\n```\n\n---\n\n"
        "| Item | Price |\n|:-----|------:|\n| Tea | 3 |\n\n"
        "[Shop](https://shop.example/sale?a=1&b=2 \"The shop\") [Mail us](mailto:help@shop.example) "
        "<a href=\"http://plain.example/\">plain</a>\n\n![Banner](https://img.example/banner.png)"
    )
    html = render_email(body)["html"]
    for fragment in ("<h1", "<h2", "<strong", "<em", "<code", "<u>", "<sub>", "<ul", "<ol", "<li", "<blockquote",
                     "<pre", "<hr", "<table", "<th align=\"left\"", "<td align=\"right\"", 'title="The shop"',
                     'href="https://shop.example/sale?a=1&amp;b=2"', 'href="mailto:help@shop.example"',
                     'href="http://plain.example/"', 'src="https://img.example/banner.png"', 'alt="Banner"'):
        assert fragment in html, fragment


def test_the_layout_is_not_sanitised():
    content = render_email("<script>x</script>Hi", unsubscribe_url="https://app.example/u/token/")
    html = content["html"]
    assert html.startswith("<!DOCTYPE html>") and "@media" in html and 'role="presentation"' in html
    assert 'href="https://app.example/u/token/"' in html and ">Unsubscribe<" in html


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "\x01javascript:alert(1)",
             "data:text/html,x", "vbscript:x"],
)
def test_a_printed_value_cannot_turn_a_link_into_script(link):
    content = render_email(
        "[Shop]({{ link }}) <a href=\"{{ link }}\">raw</a> [Path]({{ link }}/x) "
        "<a href=\"java{{ rest }}\">split</a> ![img]({{ link }})",
        link=link, rest="script:alert(1)",
    )
    found = audit(content["html"])
    assert found.urls and all(url_is_safe(url) for url in found.urls), found.urls
    assert all("script:" not in url.lower() and not url.startswith("data:") for url in found.urls)
    assert "javascript:" not in content["text"].lower() and "vbscript:" not in content["text"].lower()


def test_printed_values_in_safe_links_still_work():
    content = render_email(
        "[Shop]({{ link }}) [Host](https://{{ host }}/p?x=1&y=2) [Mail](mailto:{{ recipient.email }}) "
        "[Path]({{ path }}/account)",
        link="https://shop.example/a?b=1&c=2", host="shop.example", path="/me",
    )
    html, text = content["html"], content["text"]
    assert 'href="https://shop.example/a?b=1&amp;c=2"' in html
    assert 'href="https://shop.example/p?x=1&amp;y=2"' in html
    assert 'href="mailto:ada@example.com"' in html
    assert 'href="/me/account"' in html
    assert "Shop (https://shop.example/a?b=1&c=2)" in text and "Host (https://shop.example/p?x=1&y=2)" in text


def test_values_are_still_escaped_text_after_sanitising():
    content = render_email("Hi {{ recipient.first_name }}", recipient={**RECIPIENT, "first_name": "<img src=x onerror=alert(1)>"})
    assert "&lt;img src=x onerror=alert(1)&gt;" in content["html"]
    assert audit(content["html"]).handlers == []


def test_sanitising_happens_once_per_source_not_per_recipient():
    compiled = compile_parts(parts={"email_subject": "Hi", "email_body": "<b>Hi</b> {{ recipient.first_name }} "
                                                                         "<script>x</script>"})
    before = email_document.cache_info()
    for i in range(50):
        content = compiled.render(channel="email", locale="en",
                                  context={"recipient": {**RECIPIENT, "first_name": f"Person {i}"}})
        assert f"Person {i}" in content["html"] and "<script" not in content["html"]
    after = email_document.cache_info()
    assert after.misses - before.misses == 1 and after.hits - before.hits == 49


@pytest.mark.parametrize("url", ["javascript:alert(1)", " javascript:alert(1)", "JAVASCRIPT:alert(1)",
                                 "data:text/html,x", "vbscript:x"])
@pytest.mark.parametrize("channel", ["inapp", "webpush"])
def test_push_and_inapp_links_from_templates_cannot_be_script(channel, url):
    compiled = compile_parts(parts={"inapp_title": "T", "push_title": "T", "inapp_url": "{{ link }}"})
    with pytest.raises(TemplateRenderError):
        compiled.render(channel=channel, locale="en", context={"recipient": RECIPIENT, "link": url})


@pytest.mark.django_db
def test_a_sent_templated_email_carries_no_script(locmem_channels):
    ada = RecipientProfileFactory(user=UserFactory(username="ada", email="ada@example.com")).user
    category = Category.objects.get_or_create(key="news", defaults={"name": "News", "kind": "marketing"})[0]
    template = MessageTemplate.objects.create(
        key="hostile", name="Hostile", category=category, email_subject="News",
        email_body='# News\n\n<script>alert(1)</script><a href="javascript:alert(2)" onclick="x()">Read</a> '
                   "[More]({{ link }})",
    )

    notify([ada], template=template, context={"link": "javascript:alert(3)"}, channels=["email"])
    ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))

    [sent] = [p.message for p in LocmemChannel.outbox if p.message.address == "ada@example.com"]
    found = audit(sent.html)
    assert "<h1" in sent.html and ">Read</a>" in sent.html
    assert not set(found.tags) & BLOCKED_TAGS and found.handlers == []
    assert all(url_is_safe(url) for url in found.urls)
    assert "javascript:" not in sent.html.lower() and "javascript:" not in sent.text.lower()
