"""Email through the whole ledger pipeline into a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp_channels(settings, smtp_sink):
    settings.NOTIFICATION_CHANNELS = {
        "email": {
            "BACKEND": "channels_adapters.email.EmailChannel",
            "OPTIONS": {
                "backend": "django.core.mail.backends.smtp.EmailBackend",
                "connection": {"host": smtp_sink.host, "port": smtp_sink.port, "timeout": 10},
                "from_email": "Signalbox <noreply@signalbox.test>",
            },
        }
    }
    settings.SIGNALBOX_MAX_ATTEMPTS = 4
    return smtp_sink


def make_users(n: int) -> list[int]:
    User = get_user_model()
    password = make_password(None)
    User.objects.bulk_create(User(username=f"m{i}", email=f"m{i}@example.com", password=password) for i in range(n))
    return list(User.objects.filter(username__startswith="m").values_list("id", flat=True))


def send_all_due(*, now=None) -> None:
    ids = list(Delivery.objects.due(now or timezone.now()).order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), 100):
        ledger.deliveries_send(delivery_ids=ids[start:start + 100], now=now)


def test_1000_marketing_emails_arrive_exactly_once_as_multipart_with_unsubscribe_headers(smtp_channels):
    users = make_users(1000)
    marketing = Category.objects.create(key="newsletter", name="Newsletter", kind="marketing")
    notify(users, title="November news", body="Plain text news.", html="<h1>News</h1>", channels=["email"],
           category=marketing, idempotency_key="nov-news")
    send_all_due()

    received = smtp_channels.handler.received
    assert len(received) == 1000
    recipients = [r for mail in received for r in mail.rcpt_tos]
    assert len(set(recipients)) == 1000
    for mail in received[:50] + received[-50:]:
        message = email.message_from_bytes(mail.content, policy=email.policy.default)
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert message["List-Unsubscribe"].strip().startswith("<http://127.0.0.1:8000/notifications/u/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert Delivery.objects.filter(status="sent").count() == 1000
    ids = set(Delivery.objects.values_list("provider_message_id", flat=True))
    assert {email.message_from_bytes(m.content)["Message-ID"].strip("<>") for m in received} == ids


class RefuseFirstAttempts:
    """Refuse 30% of recipients with 450 on their first two attempts, then accept."""

    def __init__(self, handler, addresses: set[str], times: int = 2) -> None:
        self.left = {a: times for a in addresses}
        self.original = handler.handle_RCPT

    async def __call__(self, server, session, envelope, address, rcpt_options):
        if self.left.get(address, 0) > 0:
            self.left[address] -= 1
            return "450 Mailbox busy, try later"
        return await self.original(server, session, envelope, address, rcpt_options)


def test_transient_refusals_are_retried_until_every_delivery_is_sent(smtp_channels):
    users = make_users(200)
    transactional = Category.objects.create(key="receipts", name="Receipts", kind="transactional", user_can_opt_out=False)
    refused = {f"m{i}@example.com" for i in range(0, 200, 10)} | {f"m{i}@example.com" for i in range(1, 200, 10)} | {
        f"m{i}@example.com" for i in range(2, 200, 10)}
    assert len(refused) == 60  # 30%
    smtp_channels.handler.handle_RCPT = RefuseFirstAttempts(smtp_channels.handler, refused)
    smtp_channels.handler.refuse["hard@example.com"] = 550
    hard = get_user_model().objects.create(username="hard", email="hard@example.com")

    notify([*users, hard.pk], title="Receipt", body="Thanks", channels=["email"], category=transactional)
    now = timezone.now()
    for _ in range(4):  # the attempt limit
        send_all_due(now=now)
        now += timedelta(hours=2)  # past any backoff

    assert Delivery.objects.filter(status="sent").count() == 200
    failed = Delivery.objects.get(recipient=hard)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.status_reason.startswith("smtp") and "550" in failed.last_error
    retried = Delivery.objects.filter(address__in=refused)
    assert set(retried.values_list("attempts", flat=True)) == {3}
    assert len(smtp_channels.handler.received) == 200
