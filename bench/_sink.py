"""A loopback SMTP sink for benchmarks: a real aiosmtpd server that counts what arrives.

It runs in a process of its own (``start_sink()``), so the server's Python does not compete
with the code being measured for the GIL. ``stop()`` returns how many messages arrived.
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
    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server, session, envelope):
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


def start_sink() -> SinkProcess:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench._sink", str(port)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return SinkProcess("127.0.0.1", port, process)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("The SMTP sink did not start.")


def _serve(port: int) -> None:
    from aiosmtpd.controller import Controller

    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="sink.bench")
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    controller.stop()
    print(handler.messages, flush=True)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
