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
``max_in_flight`` the most requests it was handling at once. The server, the misbehaviour and the
counting are ``tests.fake_provider``'s, shared with the other providers' fakes.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from channels_adapters.sms import sms_segments
from tests.fake_provider import FakeProviderHandler, FakeProviderServer

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


class FakeTwilioServer(FakeProviderServer):
    name = "fake-twilio"

    def __init__(self, account_sid: str, auth_token: str, *, slow_seconds: float = 2.0, latency: float = 0.0) -> None:
        super().__init__(slow_seconds=slow_seconds, latency=latency)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.invalid_numbers: set[str] = set()
        self.slow_numbers = self.slow  # the names the SMS tests use
        self.dropped_numbers = self.dropped
        self.requests: list[ReceivedRequest] = []

    @property
    def messages(self) -> list[ReceivedRequest]:
        return [request for request in self.requests if request.outcome == "accepted"]

    def outcome_for(self, target: str) -> str:
        with self.lock:
            if target in self.invalid_numbers:
                return "invalid"
        return super().outcome_for(target) or "accepted"

    def authorized(self, handler: FakeProviderHandler) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return handler.headers.get("Authorization", "") == f"Basic {expected}"

    def handle_request(self, handler: FakeProviderHandler, raw: bytes):
        json_type = "application/json; charset=utf-8"
        if handler.command != "POST":
            return 405, {"code": 20004, "message": "Method not allowed", "status": 405}, json_type
        match = MESSAGES_PATH.match(handler.path.split("?", 1)[0])
        if not match:
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}, json_type
        if not self.authorized(handler) or match["sid"] != self.account_sid:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}, json_type
        form = {key: values[-1] for key, values in parse_qs(raw.decode(), keep_blank_values=True).items()}
        to = form.get("To", "")
        outcome = self.outcome_for(to)
        sid = "SM" + secrets.token_hex(16) if outcome in ("accepted", "slow", "dropped") else ""
        record = ReceivedRequest(
            account_sid=match["sid"], to=to, from_=form.get("From", ""), body=form.get("Body", ""),
            status_callback=form.get("StatusCallback", ""), authorization=handler.headers.get("Authorization", ""),
            peer=handler.client_address, outcome=outcome, sid=sid, form=form,
        )
        with self.lock:
            self.requests.append(record)

        if outcome == "invalid":
            return 400, {
                "code": 21211,
                "message": f"The 'To' number {to} is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            }, json_type
        if outcome == "unavailable":
            return 503, {"code": 20503, "message": "Service unavailable", "status": 503}, json_type
        # "slow": Twilio got the request (and may send the SMS) but the reply comes too late;
        # "dropped": no reply at all.
        if self.misbehave(handler, outcome):
            return None

        encoding, segments = sms_segments(record.body)
        path = f"/2010-04-01/Accounts/{record.account_sid}/Messages/{sid}.json"
        return 201, {
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
        }, json_type
