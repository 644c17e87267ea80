"""Fixtures for the channel adapters: a real SMTP server to send to, a clean locmem outbox."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from channels_adapters.locmem import LocmemChannel


@dataclass(frozen=True)
class ReceivedMail:
    peer: tuple
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class SinkHandler:
    """Stores what arrives; ``refuse[address] = 450`` (or 550) refuses that recipient at RCPT.

    ``connections`` counts TCP connections, ``sessions`` EHLO greetings.
    """

    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []
        self.sessions = 0
        self.connections = 0
        self.refuse: dict[str, int] = {}

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.refuse.get(address)
        if code:
            return f"{code} Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(ReceivedMail(session.peer, envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


class CountingSMTP(SMTP):
    def connection_made(self, transport) -> None:
        self.event_handler.connections += 1
        super().connection_made(transport)


class SinkController(Controller):
    def factory(self) -> SMTP:
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class SmtpSink:
    host: str
    port: int
    handler: SinkHandler


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_sink():
    handler = SinkHandler()
    controller = SinkController(handler, hostname="127.0.0.1", port=free_port(), server_hostname="sink.test")
    controller.start()
    handler.connections = 0  # start() makes one connection to check the server is up
    try:
        yield SmtpSink(controller.hostname, controller.port, handler)
    finally:
        controller.stop()


@pytest.fixture
def unused_port() -> int:
    """A local port nothing listens on (for "server unreachable")."""
    return free_port()


@pytest.fixture(autouse=True)
def empty_locmem_outbox():
    LocmemChannel.outbox.clear()
    yield
    LocmemChannel.outbox.clear()
