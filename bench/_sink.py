"""A loopback SMTP sink for benchmarks: a real aiosmtpd server that counts what arrives."""

from __future__ import annotations

import socket

from aiosmtpd.controller import Controller


class CountingHandler:
    def __init__(self) -> None:
        self.messages = 0
        self.recipients: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


def start_sink() -> tuple[Controller, CountingHandler]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="sink.bench")
    controller.start()
    return controller, handler
