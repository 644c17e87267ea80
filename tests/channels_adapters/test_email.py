"""The email adapter against a real SMTP server (``smtp_sink``)."""

from __future__ import annotations

import email
import email.policy

import pytest

from tests.channels_adapters.helpers import send
from channels_adapters.base import OutboundMessage
from channels_adapters.email import EmailChannel
from channels_adapters.errors import InvalidAddressError, PermanentChannelError, TransientChannelError
from channels_adapters.handler import channels

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture
def email_channel(settings, smtp_sink) -> EmailChannel:
    settings.EMAIL_HOST = smtp_sink.host
    settings.EMAIL_PORT = smtp_sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.NOTIFICATION_CHANNELS = {
        "email": {
            "BACKEND": "channels_adapters.email.EmailChannel",
            "OPTIONS": {
                "backend": SMTP_BACKEND,
                "connection": {"timeout": 5},
                "from_email": "Signalbox <noreply@signalbox.test>",
            },
        }
    }
    return channels["email"]


def message(delivery_id: int, address: str, **kwargs) -> OutboundMessage:
    defaults = {"subject": f"Hello {delivery_id}", "text": f"Plain {delivery_id}", "html": f"<p>Rich {delivery_id}</p>"}
    return OutboundMessage(delivery_id=delivery_id, address=address, **{**defaults, **kwargs})


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_a_batch_of_50_arrives_as_multipart_messages_over_a_pool_of_kept_connections(email_channel, smtp_sink):
    batch = [message(n, f"user{n}@example.com") for n in range(50)]

    results = send(email_channel, batch)

    assert all(result.ok for result in results)
    assert len(smtp_sink.handler.received) == 50
    # One connection per lane (at most the adapter's default concurrency, 20), each kept for
    # several messages.
    assert email_channel.features.concurrency == 20
    assert 2 <= smtp_sink.handler.connections <= 20
    assert smtp_sink.handler.sessions == smtp_sink.handler.connections
    assert len({mail.peer for mail in smtp_sink.handler.received}) == smtp_sink.handler.connections
    by_recipient = {mail.rcpt_tos[0]: mail for mail in smtp_sink.handler.received}
    for n in range(50):
        mail = by_recipient[f"user{n}@example.com"]
        parsed = parse(mail.content)
        assert mail.rcpt_tos == [f"user{n}@example.com"]
        assert parsed.get_content_type() == "multipart/alternative"
        assert parsed["Subject"] == f"Hello {n}"
        assert parsed["From"] == "Signalbox <noreply@signalbox.test>"
        assert parsed.get_body(("plain",)).get_content().strip() == f"Plain {n}"
        assert parsed.get_body(("html",)).get_content().strip() == f"<p>Rich {n}</p>"


def test_provider_id_is_the_message_id_the_server_received(email_channel, smtp_sink):
    results = send(email_channel, [message(1, "a@example.com"), message(2, "b@example.com")])

    received_ids = {mail.rcpt_tos[0]: parse(mail.content)["Message-ID"] for mail in smtp_sink.handler.received}
    assert received_ids == {
        "a@example.com": f"<{results[0].provider_message_id}>", "b@example.com": f"<{results[1].provider_message_id}>",
    }
    assert all(result.provider_message_id.endswith("@signalbox.test") for result in results)
    assert results[0].provider_message_id != results[1].provider_message_id


def test_marketing_mail_carries_one_click_unsubscribe_and_transactional_does_not(email_channel, smtp_sink):
    url = "https://signalbox.test/u/opaque-token"
    send(email_channel, [
        message(1, "a@example.com", metadata={"category_kind": "marketing", "unsubscribe_url": url}),
        message(2, "b@example.com", metadata={"category_kind": "transactional", "unsubscribe_url": url}),
    ])

    by_recipient = {mail.rcpt_tos[0]: parse(mail.content) for mail in smtp_sink.handler.received}
    marketing, transactional = by_recipient["a@example.com"], by_recipient["b@example.com"]
    assert marketing["List-Unsubscribe"] == f"<{url}>"
    assert marketing["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert transactional["List-Unsubscribe"] is None
    assert transactional["List-Unsubscribe-Post"] is None


def test_refused_recipients_fail_by_reply_code_and_the_rest_still_arrive(email_channel, smtp_sink):
    smtp_sink.handler.refuse = {"full@example.com": 450, "gone@example.com": 550}

    results = send(email_channel, [
        message(1, "a@example.com"),
        message(2, "full@example.com"),
        message(3, "gone@example.com"),
        message(4, "b@example.com"),
    ])

    assert isinstance(results[1].error, TransientChannelError) and results[1].error.reason == "smtp_450"
    assert isinstance(results[2].error, PermanentChannelError) and results[2].error.reason == "smtp_550"
    assert results[0].ok and results[3].ok
    assert sorted(mail.rcpt_tos for mail in smtp_sink.handler.received) == [["a@example.com"], ["b@example.com"]]
    assert smtp_sink.handler.sessions <= 4  # one per lane, none re-opened after a refusal


def test_invalid_address_fails_without_contacting_the_server(email_channel, smtp_sink):
    [result] = send(email_channel, [message(1, "not an address")])

    assert isinstance(result.error, InvalidAddressError)
    assert smtp_sink.handler.received == []
    assert smtp_sink.handler.connections == 0


def test_unreachable_server_fails_the_batch_as_transient(unused_port):
    channel = EmailChannel(
        "email", backend=SMTP_BACKEND, connection={"host": "127.0.0.1", "port": unused_port, "timeout": 5}
    )

    results = send(channel, [message(1, "a@example.com"), message(2, "b@example.com")])

    assert [type(result.error) for result in results] == [TransientChannelError, TransientChannelError]
    assert {result.error.reason for result in results} == {"smtp_connect"}


def test_text_only_message_is_sent_as_plain_text(email_channel, smtp_sink):
    send(email_channel, [message(1, "a@example.com", html="")])

    parsed = parse(smtp_sink.handler.received[0].content)
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().strip() == "Plain 1"


def test_header_injection_fails_only_that_message(email_channel, smtp_sink):
    results = send(email_channel, [
        message(1, "a@example.com", subject="Hi\nBcc: victim@example.com"),
        message(2, "b@example.com"),
    ])

    assert isinstance(results[0].error, PermanentChannelError) and results[0].error.reason == "bad_header"
    assert results[1].ok
    assert [mail.rcpt_tos for mail in smtp_sink.handler.received] == [["b@example.com"]]


def test_chinese_subject_and_body_arrive_intact(email_channel, smtp_sink):
    [result] = send(email_channel, 
        [message(1, "li@example.com", subject="您的订单已发货", text="包裹正在路上。", html="<p>包裹正在路上。</p>")]
    )
    assert result.ok
    received = parse(smtp_sink.handler.received[0].content)
    # Folding can leave one leading space after "Subject:" (Apprise re-registers the utf-8
    # charset globally); mail clients ignore it.
    assert received["Subject"].strip() == "您的订单已发货"
    text, html = (part.get_content() for part in received.iter_parts())
    assert text.strip() == "包裹正在路上。" and "包裹正在路上。" in html


def test_non_ascii_address_takes_djangos_full_path(email_channel, smtp_sink):
    [result] = send(email_channel, [message(2, "user@exämple.com")])
    assert result.ok
    assert smtp_sink.handler.received[0].rcpt_tos == ["user@xn--exmple-cua.com"]
