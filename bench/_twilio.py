"""The fake Twilio API (``tests/fake_twilio.py``) in a process of its own, for benchmarks.

``start_fake_twilio(latency_ms=...)`` starts it on a free port; every accepted request is
answered ``latency_ms`` after it arrived (the SDK's view of an API that far away). ``stop()``
returns how many messages it accepted.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "bench-twilio-auth-token"


@dataclass
class FakeTwilioProcess:
    base_url: str
    process: subprocess.Popen

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=10)
        return int(out.strip().splitlines()[-1])


def start_fake_twilio(*, latency_ms: float) -> FakeTwilioProcess:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench._twilio", str(latency_ms)], stdout=subprocess.PIPE, text=True,
    )
    port = int(process.stdout.readline())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return FakeTwilioProcess(f"http://127.0.0.1:{port}", process)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("The fake Twilio API did not start.")


def _serve(latency_ms: float) -> None:
    from tests.fake_twilio import FakeTwilioServer

    server = FakeTwilioServer(ACCOUNT_SID, AUTH_TOKEN, latency=latency_ms / 1000)
    server.start()
    print(server.server_address[1], flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop()
    print(len(server.messages), flush=True)


if __name__ == "__main__":
    _serve(float(sys.argv[1]))
