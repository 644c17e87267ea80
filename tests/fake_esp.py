"""A local fake of Postmark's send API, for email through django-anymail's Postmark backend.

It serves ``POST /email`` (JSON, ``X-Postmark-Server-Token``) on 127.0.0.1, as
``api.postmarkapp.com`` does, and answers after ``latency`` seconds. Point the backend at it
with the connection option ``api_url`` (anymail's ``POSTMARK_API_URL``). Every accepted message
is recorded in ``received`` with the recipient and the Message-ID header it carried;
``refuse[to] = (status, reply)`` answers that recipient with an error instead.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class EspMessage:
    to: str
    subject: str
    message_id_header: str
    esp_message_id: str


class FakePostmarkServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # a worker's lanes connect at once

    def __init__(self, server_token: str, *, latency: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), FakePostmarkHandler)
        self.server_token = server_token
        self.latency = latency
        self.received: list[EspMessage] = []
        self.refuse: dict[str, tuple[int, dict]] = {}  # recipient -> (HTTP status, JSON reply)
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class FakePostmarkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API
    disable_nagle_algorithm = True
    server: FakePostmarkServer

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if len(raw) < length:  # the client went away mid-request: nothing was submitted
            self.close_connection = True
            return
        data = json.loads(raw or b"{}")
        if self.headers.get("X-Postmark-Server-Token") != self.server.server_token:
            self.reply(401, {"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied."})
            return
        if self.path.rstrip("/") != "/email":
            self.reply(404, {"ErrorCode": 404, "Message": "Not found"})
            return
        if self.server.latency:
            time.sleep(self.server.latency)
        if data.get("To", "") in self.server.refuse:
            self.reply(*self.server.refuse[data["To"]])
            return
        headers = {h.get("Name", "").lower(): h.get("Value", "") for h in data.get("Headers") or []}
        esp_id = str(uuid.uuid4())
        message = EspMessage(
            to=data.get("To", ""), subject=data.get("Subject", ""), message_id_header=headers.get("message-id", ""),
            esp_message_id=esp_id,
        )
        with self.server.lock:
            self.server.received.append(message)
        self.reply(200, {
            "To": message.to, "SubmittedAt": "2026-12-02T10:00:00.0000000Z", "MessageID": esp_id,
            "ErrorCode": 0, "Message": "OK",
        })
