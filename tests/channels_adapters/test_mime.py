"""The fast MIME serialiser says the same thing as Django's, or steps aside."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.core.mail import EmailMultiAlternatives
from hypothesis import example, given, settings
from hypothesis import strategies as st

from channels_adapters.mime import fast_alternative_bytes


def build(subject="Your receipt", body="Thanks.", html="<p>Thanks.</p>", to="li@example.com", **headers):
    mail = EmailMultiAlternatives(
        subject=subject, body=body, from_email="Signalbox <noreply@signalbox.test>", to=[to],
        headers={"Message-ID": "<abc@signalbox.test>", **headers},
    )
    if html is not None:
        mail.attach_alternative(html, "text/html")
    return mail


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def same_meaning(mail) -> None:
    fast = parsed(fast_alternative_bytes(mail))
    slow = parsed(mail.message().as_bytes(linesep="\r\n"))
    for name in ("Subject", "From", "To", "Message-ID", "List-Unsubscribe"):
        assert str(fast.get(name, "")).strip() == str(slow.get(name, "")).strip(), name
    assert fast.get_content_type() == slow.get_content_type()
    fast_parts = [p.get_content() for p in (fast.iter_parts() if fast.is_multipart() else [fast])]
    slow_parts = [p.get_content() for p in (slow.iter_parts() if slow.is_multipart() else [slow])]
    assert [p.replace("\r\n", "\n").rstrip("\n") for p in fast_parts] == [
        p.replace("\r\n", "\n").rstrip("\n") for p in slow_parts
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"subject": "您的订单已发货", "body": "包裹正在路上。\n请查收。", "html": "<p>包裹 😀</p>"},
        {"html": None},
        {"body": "x" * 2000},
        {"body": ".leading dot\n.\nand a lone dot line"},
        {"List-Unsubscribe": "<https://signalbox.test/u/abc/>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    ],
)
def test_fast_output_means_the_same_as_djangos(kwargs):
    same_meaning(build(**kwargs))


@settings(max_examples=80, deadline=None)
@example(subject="0\x0c0", body="0")  # a form feed in the subject (found by hypothesis)
@given(subject=st.text(max_size=80).filter(lambda s: "\n" not in s and "\r" not in s), body=st.text(min_size=1, max_size=300).filter(str.strip))
def test_any_text_means_the_same_as_djangos(subject, body):
    mail = build(subject=subject, body=body, html=f"<p>{body}</p>")
    if fast_alternative_bytes(mail) is not None:
        same_meaning(mail)


def test_unusual_messages_fall_back_to_django():
    assert fast_alternative_bytes(build(to="用户@例子.中国")) is None
    assert fast_alternative_bytes(build(**{"X-Note": "non-ascii ✓"})) is None
    with_attachment = build()
    with_attachment.attach("a.txt", "hello", "text/plain")
    assert fast_alternative_bytes(with_attachment) is None
    assert fast_alternative_bytes(build(subject="bad\nheader")) is None
