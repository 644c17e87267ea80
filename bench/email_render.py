"""A templated email: the cost of a new source (Markdown, sanitising, layout, CSS inlining) and of
each further recipient (the Jinja render and splicing values into the cached pieces).

Sanitising (nh3) runs once per distinct marked source, inside the cached ``email_document``; the
per-recipient figure shows it is not paid again per recipient.
"""

from __future__ import annotations

import argparse
import time


BODY = """# Spring sale, {{ recipient.first_name }}

Hello **{{ recipient.first_name }}**, our [spring sale]({{ site_url }}/sale) starts today.

| Item | Price |
|:-----|------:|
| Tea | 3.50 |
| Cups | 12.00 |

- free shipping over 50
- returns within 30 days

> Thank you for shopping with us.

![Banner](https://img.example/banner.png) <a href="https://shop.example/?ref={{ recipient.username }}">Shop</a>
"""


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench email_render")
    parser.add_argument("--sources", type=int, default=300, help="distinct sources (cache misses)")
    parser.add_argument("--recipients", type=int, default=5000)
    opts = parser.parse_args(argv)

    from notifications.templating.compiled import compile_parts
    from notifications.templating.email import email_document, markdown_to_html, sanitise_email_html

    context = {"recipient": {"first_name": "Ada", "username": "ada", "email": "ada@example.com"}}

    # New sources: each differs, so each misses the cache (email_document holds 256).
    email_document.cache_clear()
    compiled = [compile_parts(parts={"email_subject": "Sale", "email_body": f"{BODY}\n\nIssue {i}."})
                for i in range(opts.sources)]
    started = time.perf_counter()
    for template in compiled:
        template.render(channel="email", locale="en", context=context)
    per_source = (time.perf_counter() - started) / opts.sources

    html = markdown_to_html(BODY)
    started = time.perf_counter()
    for _ in range(opts.sources):
        sanitise_email_html(html)
    sanitise = (time.perf_counter() - started) / opts.sources

    # Recipients of one source: only the first misses the cache.
    template = compiled[0]
    started = time.perf_counter()
    for i in range(opts.recipients):
        template.render(channel="email", locale="en",
                        context={"recipient": {**context["recipient"], "first_name": f"Person {i}"}})
    per_recipient = (time.perf_counter() - started) / opts.recipients

    return {
        "new_source_ms": round(per_source * 1000, 3),
        "of_which_sanitise_ms": round(sanitise * 1000, 3),
        "per_recipient_us": round(per_recipient * 1e6, 1),
        "sources": opts.sources,
        "recipients": opts.recipients,
    }
