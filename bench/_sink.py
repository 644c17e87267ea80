"""A loopback SMTP sink for benchmarks: a real aiosmtpd server that counts what arrives.

It runs in a process of its own (``start_sink()``), so the server's Python does not compete
with the code being measured for the GIL. ``stop()`` returns how many messages arrived.

``latency_ms`` makes it behave like a relay that far away: each reply to EHLO, MAIL, RCPT and
the end of DATA leaves ``latency_ms`` after the bytes carrying its command arrived (aiosmtpd
sends the 354 that invites the message at once, as a nearby server would). Commands that
arrive together (PIPELINING, RFC 2920, which the sink offers unless ``pipelining=False``) are
answered together, as a network round trip would: the delay is per round trip, not per command.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass


class CountingHandler:
    def __init__(self, latency: float = 0.0, pipelining: bool = True) -> None:
        self.messages = 0
        self.latency = latency
        self.pipelining = pipelining

    async def _wait(self, server) -> None:
        if self.latency:
            import asyncio

            loop = asyncio.get_running_loop()
            delay = getattr(server, "arrived", loop.time()) + self.latency - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await self._wait(server)
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        await self._wait(server)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self._wait(server)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await self._wait(server)
        self.messages += 1
        return "250 OK"


@dataclass
class SinkProcess:
    hostname: str
    port: int
    process: subprocess.Popen

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=10)
        return int(out.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sink(*, latency_ms: float = 0.0, pipelining: bool = True) -> SinkProcess:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench._sink", str(port), str(latency_ms), "1" if pipelining else "0"],
        stdout=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return SinkProcess("127.0.0.1", port, process)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("The SMTP sink did not start.")


def _serve(port: int, latency_ms: float, pipelining: bool) -> None:
    import asyncio

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    class TimedSMTP(SMTP):
        def data_received(self, data: bytes) -> None:
            # When the bytes of the command being handled arrived: replies are due latency later.
            self.arrived = asyncio.get_running_loop().time()
            super().data_received(data)

    class TimedController(Controller):
        def factory(self):
            return TimedSMTP(self.handler, **self.SMTP_kwargs)

    handler = CountingHandler(latency=latency_ms / 1000, pipelining=pipelining)
    controller = TimedController(handler, hostname="127.0.0.1", port=port, server_hostname="sink.bench")
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    controller.stop()
    print(handler.messages, flush=True)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0, (sys.argv[3:4] or ["1"])[0] == "1")
