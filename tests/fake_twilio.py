"""A local fake of Twilio's Messages API, for the SMS adapter's tests.

It serves ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form-encoded, HTTP basic auth)
on 127.0.0.1 and answers like Twilio. Behaviour per destination number ("To")::

    server.invalid_numbers.add("+15005550001")   # 400, Twilio error 21211
    server.unavailable["+15005550002"] = 2       # 503 the first 2 times, then accepted
    server.unavailable["+15005550003"] = None    # 503 every time
    server.slow_numbers.add("+15005550004")      # received, then no reply for slow_seconds
    server.dropped_numbers.add("+15005550005")   # received, then the connection is closed
    server.latency = 0.1                          # every answer comes 100 ms later

Every POST that passes auth is recorded in ``server.requests`` (also refused and slow ones);
accepted messages are also in ``server.messages``. ``connections`` counts TCP connections,
``max_in_flight`` the most requests it was handling at once.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from channels_adapters.sms import sms_segments

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")


@dataclass(frozen=True)
class ReceivedRequest:
    """One POST as the fake server saw it."""

    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str
    authorization: str
    peer: tuple
    outcome: str  # "accepted", "invalid", "unavailable", "slow", "dropped"
    sid: str = ""
    form: dict[str, str] = field(default_factory=dict)


class FakeTwilioServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # a worker's lanes connect at once

    def __init__(self, account_sid: str, auth_token: str, *, slow_seconds: float = 2.0, latency: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), FakeTwilioHandler)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.slow_seconds = slow_seconds
        self.latency = latency  # seconds before every answer, as a provider far away
        self.invalid_numbers: set[str] = set()
        self.unavailable: dict[str, int | None] = {}
        self.retry_after: str | None = None  # sent with 503s when set
        self.slow_numbers: set[str] = set()
        self.dropped_numbers: set[str] = set()
        self.requests: list[ReceivedRequest] = []
        self.connections = 0
        self.in_flight = 0  # requests being handled right now
        self.max_in_flight = 0  # the most handled at once
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def messages(self) -> list[ReceivedRequest]:
        return [request for request in self.requests if request.outcome == "accepted"]

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-twilio", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()  # wakes handlers sleeping for slow numbers
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def process_request(self, request, client_address) -> None:
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)

    def outcome_for(self, to: str) -> str:
        with self.lock:
            if to in self.invalid_numbers:
                return "invalid"
            if to in self.unavailable:
                remaining = self.unavailable[to]
                if remaining is None:
                    return "unavailable"
                if remaining > 0:
                    self.unavailable[to] = remaining - 1
                    return "unavailable"
            if to in self.slow_numbers:
                return "slow"
            if to in self.dropped_numbers:
                return "dropped"
            return "accepted"


class FakeTwilioHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as api.twilio.com
    disable_nagle_algorithm = True  # headers and body are separate writes
    server: FakeTwilioServer

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def authorized(self) -> bool:
        expected = base64.b64encode(f"{self.server.account_sid}:{self.server.auth_token}".encode()).decode()
        return self.headers.get("Authorization", "") == f"Basic {expected}"

    def do_GET(self) -> None:
        self.send_json(405, {"code": 20004, "message": "Method not allowed", "status": 405})

    def do_POST(self) -> None:
        with self.server.lock:
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            self.handle_post()
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def handle_post(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if len(raw) < length:  # the client went away mid-request: Twilio never got a whole request
            self.close_connection = True
            return
        raw = raw.decode()
        match = MESSAGES_PATH.match(self.path.split("?", 1)[0])
        if not match:
            self.send_json(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})
            return
        if not self.authorized() or match["sid"] != self.server.account_sid:
            self.send_json(401, {"code": 20003, "message": "Authenticate", "status": 401})
            return
        if self.server.latency:
            time.sleep(self.server.latency)
        form = {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}
        to = form.get("To", "")
        outcome = self.server.outcome_for(to)
        sid = "SM" + secrets.token_hex(16) if outcome in ("accepted", "slow", "dropped") else ""
        record = ReceivedRequest(
            account_sid=match["sid"],
            to=to,
            from_=form.get("From", ""),
            body=form.get("Body", ""),
            status_callback=form.get("StatusCallback", ""),
            authorization=self.headers.get("Authorization", ""),
            peer=self.client_address,
            outcome=outcome,
            sid=sid,
            form=form,
        )
        with self.server.lock:
            self.server.requests.append(record)

        if outcome == "invalid":
            self.send_json(400, {
                "code": 21211,
                "message": f"The 'To' number {to} is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            })
            return
        if outcome == "unavailable":
            headers = {"Retry-After": self.server.retry_after} if self.server.retry_after else None
            self.send_json(503, {"code": 20503, "message": "Service unavailable", "status": 503}, headers)
            return
        if outcome == "slow":
            # Twilio got the request (and may send the SMS) but the reply comes too late.
            self.server.stopping.wait(self.server.slow_seconds)
            self.close_connection = True
            return
        if outcome == "dropped":
            self.close_connection = True  # no reply at all
            return

        encoding, segments = sms_segments(record.body)
        path = f"/2010-04-01/Accounts/{record.account_sid}/Messages/{sid}.json"
        self.send_json(201, {
            "account_sid": record.account_sid,
            "api_version": "2010-04-01",
            "body": record.body,
            "date_created": "Mon, 23 Nov 2026 22:00:00 +0000",
            "date_sent": None,
            "date_updated": "Mon, 23 Nov 2026 22:00:00 +0000",
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": record.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": path.replace(".json", "/Media.json")},
            "to": record.to,
            "uri": path,
        })
