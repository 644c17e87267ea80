"""One worker's batch goes out over several connections at once, and SMTP pipelines when it may.

A latency-injecting SMTP sink (an aiosmtpd handler that waits before answering EHLO, MAIL,
RCPT and DATA) shows the email adapter's lanes in flight together and, when the server offers
PIPELINING (RFC 2920), MAIL/RCPT/DATA arriving in one write; the fake Twilio API with a latency
shows the same for SMS, within the shared rate limit. Nothing here looks at a clock.
"""

from __future__ import annotations

import asyncio

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, RateWindow, RecipientProfile
from tests.channels_adapters.conftest import CountingSMTP, SinkHandler, free_port

pytestmark = pytest.mark.django_db(transaction=True)


class LatencyHandler(SinkHandler):
    """Answers every command ``delay`` seconds late; counts transactions in progress at once."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.active = 0
        self.most_active = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await asyncio.sleep(self.delay)
        return await super().handle_EHLO(server, session, envelope, hostname, responses)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        await asyncio.sleep(self.delay)
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await asyncio.sleep(self.delay)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        self.active -= 1
        return await super().handle_DATA(server, session, envelope)


class ChunkRecordingSMTP(CountingSMTP):
    """Keeps every chunk of bytes the client wrote, as it arrived (one chunk per client write
    here: the messages are small and the client writes each group at once)."""

    def data_received(self, data: bytes) -> None:
        self.event_handler.chunks.append(bytes(data))
        super().data_received(data)


class LatencySink(Controller):
    def factory(self):
        return ChunkRecordingSMTP(self.handler, **self.SMTP_kwargs)


@pytest.fixture
def latency_sink():
    handler = LatencyHandler(delay=0.02)
    handler.chunks = []
    controller = LatencySink(handler, hostname="127.0.0.1", port=free_port(), server_hostname="slow.test")
    controller.start()
    handler.connections, handler.chunks = 0, []  # start() checks the server is up with one connection
    try:
        yield controller
    finally:
        controller.stop()


def plan_emails(settings, sink, n: int, *, concurrency: int) -> list[int]:
    settings.NOTIFICATION_CHANNELS = {"email": {"BACKEND": "channels_adapters.email.EmailChannel", "OPTIONS": {
        "backend": "django.core.mail.backends.smtp.EmailBackend",
        "connection": {"host": sink.hostname, "port": sink.port, "timeout": 10},
        "from_email": "Signalbox <noreply@signalbox.test>", "concurrency": concurrency,
    }}}
    User = get_user_model()
    User.objects.bulk_create(
        User(username=f"c{i}", email=f"c{i}@example.com", password=make_password(None)) for i in range(n)
    )
    receipts = Category.objects.create(key="receipts", name="Receipts", kind="transactional", user_can_opt_out=False)
    notify(list(User.objects.values_list("id", flat=True)), title="Receipt", body="Thanks.", channels=["email"],
           category=receipts)
    return list(Delivery.objects.order_by("id").values_list("id", flat=True))


def test_one_batch_goes_out_over_several_smtp_connections_at_once(settings, latency_sink):
    ids = plan_emails(settings, latency_sink, 24, concurrency=4)

    summary = ledger.deliveries_send(delivery_ids=ids)  # one worker, one batch

    handler = latency_sink.handler
    assert summary.sent == 24 and Delivery.objects.filter(status="sent").count() == 24
    assert sorted(mail.rcpt_tos[0] for mail in handler.received) == sorted(f"c{i}@example.com" for i in range(24))
    assert handler.connections == 4
    assert handler.most_active == 4  # four transactions in progress together


def test_smtp_pipelining_sends_mail_rcpt_and_data_in_one_write_when_offered(settings, latency_sink):
    latency_sink.handler.pipelining = True
    ids = plan_emails(settings, latency_sink, 12, concurrency=2)

    ledger.deliveries_send(delivery_ids=ids)

    chunks = latency_sink.handler.chunks
    envelopes = [c for c in chunks if c.startswith(b"MAIL FROM:")]
    assert len(envelopes) == 12
    # Each envelope is one write: MAIL, RCPT and DATA before any of their replies came back.
    assert all(b"\r\nRCPT TO:<" in c and c.endswith(b"\r\nDATA\r\n") for c in envelopes)
    assert len(latency_sink.handler.received) == 12


def test_without_pipelining_each_command_waits_for_its_reply(settings, latency_sink):
    ids = plan_emails(settings, latency_sink, 6, concurrency=2)

    ledger.deliveries_send(delivery_ids=ids)

    chunks = latency_sink.handler.chunks
    assert sum(c.startswith(b"MAIL FROM:") for c in chunks) == 6
    assert not any(b"RCPT TO:" in c and b"MAIL FROM:" in c for c in chunks)
    assert Delivery.objects.filter(status="sent").count() == 6


def test_a_refused_recipient_in_a_pipelined_envelope_fails_alone(settings, latency_sink):
    latency_sink.handler.pipelining = True
    latency_sink.handler.refuse = {"c1@example.com": 550, "c2@example.com": 450}
    ids = plan_emails(settings, latency_sink, 5, concurrency=2)

    ledger.deliveries_send(delivery_ids=ids)

    outcome = {d.address: (d.status, d.status_reason) for d in Delivery.objects.all()}
    assert outcome["c1@example.com"] == ("failed", "smtp_550")
    assert outcome["c2@example.com"] == ("deferred", "smtp_450")
    assert {outcome[f"c{i}@example.com"][0] for i in (0, 3, 4)} == {"sent"}
    assert sorted(m.rcpt_tos[0] for m in latency_sink.handler.received) == ["c0@example.com", "c3@example.com", "c4@example.com"]


def test_sms_requests_are_in_flight_together_within_the_shared_rate(settings, fake_twilio):
    fake_twilio.latency = 0.05
    settings.NOTIFICATION_CHANNELS = {"sms": {"BACKEND": "channels_adapters.sms.SmsChannel", "OPTIONS": {
        "account_sid": fake_twilio.account_sid, "auth_token": fake_twilio.auth_token, "from_number": "+15005550006",
        "base_url": fake_twilio.base_url, "status_callback": "", "max_per_second": 5, "concurrency": 8,
    }}}
    User = get_user_model()
    User.objects.bulk_create(User(username=f"s{i}", password=make_password(None)) for i in range(12))
    RecipientProfile.objects.bulk_create(
        RecipientProfile(user_id=pk, phone=f"+1415555{i:04d}") for i, pk in enumerate(User.objects.values_list("id", flat=True))
    )
    codes = Category.objects.create(key="codes", name="Codes", kind="transactional", user_can_opt_out=False)
    notify(list(User.objects.values_list("id", flat=True)), title="Code", body="1234", channels=["sms"], category=codes)

    summary = ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))

    assert summary.sent == 12 and len(fake_twilio.messages) == 12
    # Five a second everywhere: each second's window holds at most five, and a chunk of five
    # goes out together (never more than the rate at once, more than one at a time).
    windows = list(RateWindow.objects.filter(channel="sms").values_list("used", flat=True))
    assert sum(windows) == 12 and max(windows) <= 5
    assert 2 <= fake_twilio.max_in_flight <= 5
