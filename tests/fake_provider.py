"""What the local fakes of Aliyun SMS, Tencent Cloud SMS and the WeChat API share: a threading
HTTP/1.1 server on 127.0.0.1 (keep-alive, as the real APIs) that records what it received and
misbehaves on demand for chosen targets (a phone number, an openid)::

    server.unavailable["t"] = 2     # HTTP 503 the first 2 times, then normal (None: every time)
    server.slow.add("t")            # received, then no reply for slow_seconds (a read timeout)
    server.dropped.add("t")         # received, then the connection is closed without a reply
    server.latency = 0.01           # every answer comes 10 ms later
    server.retry_after_seconds = "30"  # Retry-After on every 429 and 503

``connections`` counts TCP connections, ``max_in_flight`` the most requests handled at once.
Subclasses implement ``handle_request(handler, raw_body) -> (status, payload)`` and
``target_of(...)``; ``outcome_for(target)`` gives the misbehaviour to apply.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeProviderServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    name = "fake-provider"
    retry_after_seconds = ""  # sent as Retry-After with every 429 and 503 when set

    def __init__(self, *, slow_seconds: float = 2.0, latency: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), FakeProviderHandler)
        self.slow_seconds = slow_seconds
        self.latency = latency
        self.unavailable: dict[str, int | None] = {}
        self.slow: set[str] = set()
        self.dropped: set[str] = set()
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name,
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def process_request(self, request, client_address) -> None:
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)

    def outcome_for(self, target: str) -> str:
        """"unavailable", "slow", "dropped" or "" (answer normally) for one request to ``target``."""
        with self.lock:
            if target in self.unavailable:
                remaining = self.unavailable[target]
                if remaining is None:
                    return "unavailable"
                if remaining > 0:
                    self.unavailable[target] = remaining - 1
                    return "unavailable"
            if target in self.slow:
                return "slow"
            if target in self.dropped:
                return "dropped"
            return ""

    def handle_request(self, handler: FakeProviderHandler, raw: bytes) -> tuple[int, dict] | None:
        """Answer one request: ``(status, JSON payload)``, or ``None`` when the handler already
        dealt with the connection (slow, dropped)."""
        raise NotImplementedError

    def misbehave(self, handler: FakeProviderHandler, outcome: str) -> bool:
        """Apply "slow"/"dropped" (True: nothing more to send)."""
        if outcome == "slow":
            self.stopping.wait(self.slow_seconds)
            handler.close_connection = True
            return True
        if outcome == "dropped":
            handler.close_connection = True
            return True
        return False


class FakeProviderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: FakeProviderServer

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def send_json(self, status: int, payload, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        with self.server.lock:
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if len(raw) < length:
                self.close_connection = True
                return
            if self.server.latency:
                time.sleep(self.server.latency)
            answer = self.server.handle_request(self, raw)
            if answer is not None:
                status, payload = answer[:2]
                content_type = answer[2] if len(answer) > 2 else "application/json"
                retry_after = self.server.retry_after_seconds if status in (429, 503) else ""
                headers = {"Retry-After": retry_after} if retry_after else None
                self.send_json(status, payload, headers, content_type=content_type)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    do_GET = do_POST = _handle
