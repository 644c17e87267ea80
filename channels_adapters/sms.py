"""SMS over Twilio's Programmable Messaging API, with the official ``twilio`` SDK.

OPTIONS (all optional; the credentials and sender are required, from OPTIONS or settings):

- ``account_sid``, ``auth_token``, ``from_number``: default ``settings.TWILIO_ACCOUNT_SID``,
  ``TWILIO_AUTH_TOKEN``, ``TWILIO_FROM_NUMBER``. Missing values are a
  ``ChannelConfigurationError`` when the adapter is built.
- ``status_callback``: the URL Twilio posts delivery receipts to; default
  ``f"{settings.SITE_URL}/webhooks/twilio/status/"``. ``""`` sends none.
- ``base_url``: e.g. ``"http://127.0.0.1:8123"``; every request goes there instead of
  ``https://*.twilio.com`` (same path and query). For a local fake server in tests.
- ``timeout``: seconds for connecting and for waiting for the reply; default 10.

Limits: ``max_per_second`` is 10, which suits a Messaging Service or a toll-free sender.
A single US/CA long code is only allowed about 1 message/s (Twilio queues the excess and
eventually fails it with error 30001), so set ``"max_per_second": 1`` in OPTIONS for one.

A batch goes out over ``concurrency`` lanes (default 16): each lane has its own ``Client`` and
SDK ``http_client`` (one kept-alive HTTPS connection), so up to that many requests are in flight
at once while the shared ``max_per_second`` limit paces them. Each message is one
``messages.create`` call, so a refused number fails only its own message. Twilio's Messages API
takes no idempotency key: a message that was in flight when its worker died is ``unknown``,
whatever its category's policy, and never re-sent automatically. What each failure means for a
retry:

- HTTP 400/404 and other 4xx (e.g. 21211 invalid "To", 21610 unsubscribed recipient):
  ``PermanentChannelError`` with reason ``"twilio:<code>"``; except the 4xx codes in
  ``TRANSIENT_TWILIO_CODES`` (queue full, rate limits) and 401/403 (bad credentials are
  fixed, then retried, as for email's connect errors), which are transient.
- HTTP 429 and 5xx: ``TransientChannelError``, with ``retry_after`` from a ``Retry-After``
  header (seconds) when the reply has one.
- No connection could be made (refused, DNS, connect timeout): ``TransientChannelError``
  with reason ``"twilio_connect"``; nothing was sent.
- Anything after the request may have left (read timeout, connection dropped while waiting,
  an unreadable success reply): ``UnknownOutcomeError``. Twilio may have accepted and will
  send the SMS, so the message must never be re-sent automatically. The pipeline should
  look for a status callback or let a person decide.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from .base import BaseChannel, OutboundMessage
from .features import SMS
from .http import request_failure
from .phones import e164_address
from .errors import (
    ChannelError,
    PermanentChannelError,
    TransientChannelError,
    UnknownOutcomeError,
)

# 4xx replies whose Twilio error code says "not now" rather than "never".
TRANSIENT_TWILIO_CODES = frozenset({
    14107,  # Message rate limit exceeded
    20429,  # Too many requests
    21611,  # This "From" number has exceeded the maximum number of queued messages
})

# GSM 03.38: the default alphabet (one septet each) and its extension table (escape + one
# septet, so two septets each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_CONCATENATED = 160, 153  # septets
UCS2_SINGLE, UCS2_CONCATENATED = 70, 67  # UTF-16 code units


def _segments(costs: list[int], single: int, concatenated: int) -> int:
    """How many segments hold characters of these costs: one if they all fit in ``single``,
    else segments of ``concatenated`` units, never splitting one character (an escape
    sequence or a surrogate pair) across two segments."""
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > concatenated:
            segments, used = segments + 1, 0
        used += cost
    return segments


def sms_segments(text: str) -> tuple[str, int]:
    """Return the encoding Twilio will use for ``text`` ("GSM-7" or "UCS-2") and the number
    of SMS segments it takes (each billed as one message). Empty text takes 0 segments.

    GSM-7: 160 septets in one SMS, 153 per segment when concatenated; extension characters
    (``€[]{}|^~\\`` and form feed) take two septets. Any other character switches the whole
    message to UCS-2: 70 UTF-16 code units in one SMS, 67 per segment, so an emoji outside
    the Basic Multilingual Plane takes two.
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        costs = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return "GSM-7", _segments(costs, GSM7_SINGLE, GSM7_CONCATENATED)
    costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return "UCS-2", _segments(costs, UCS2_SINGLE, UCS2_CONCATENATED)


class RedirectingHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending every request to ``base_url`` (when given) instead of
    Twilio's hosts, and keeping the last response so error headers (``Retry-After``) can be
    read: the SDK's exceptions do not carry them."""

    def __init__(self, *, base_url: str | None = None, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.base_url = urlsplit(base_url) if base_url else None
        self.last_response: Response | None = None

    def rewrite(self, url: str) -> str:
        if self.base_url is None:
            return url
        parts = urlsplit(url)
        path = self.base_url.path.rstrip("/") + parts.path
        return urlunsplit((self.base_url.scheme, self.base_url.netloc, path, parts.query, parts.fragment))

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        self.last_response = None
        self.last_response = super().request(method, self.rewrite(url), *args, **kwargs)
        return self.last_response

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def _retry_after(response: Response | None) -> float | None:
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # An HTTP date; rare for APIs, and the caller's backoff covers it.


def twilio_error(error: TwilioRestException | TwilioServiceException, response: Response | None) -> ChannelError:
    """Translate an error reply from the API: it means Twilio did not accept the message."""
    status = int(error.status)
    code = error.code
    reason = f"twilio:{code}" if code else f"twilio_http_{status}"
    detail = getattr(error, "msg", None) or getattr(error, "detail", None) or getattr(error, "title", "")
    text = f"Twilio HTTP {status}" + (f" error {code}" if code else "") + (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        return TransientChannelError(text, reason=reason, retry_after=_retry_after(response))
    if status in (401, 403) or code in TRANSIENT_TWILIO_CODES:
        return TransientChannelError(text, reason=reason, retry_after=_retry_after(response))
    return PermanentChannelError(text, reason=reason)


def request_error(error: requests.exceptions.RequestException) -> ChannelError:
    """Translate a failure to get a reply: transient only if the request never left."""
    return request_failure(error, provider="Twilio", reason="twilio", consequence="the SMS may have been accepted")


@dataclass
class SmsLane:
    client: Client
    http_client: RedirectingHttpClient


class SmsChannel(BaseChannel):
    max_batch_size = 100
    max_per_second = 10.0
    features = SMS

    def __init__(
        self,
        alias: str,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        from_number: str | None = None,
        status_callback: str | None = None,
        base_url: str | None = None,
        timeout: float = 10,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        self.account_sid, self.auth_token, self.from_number = self.required_options(
            account_sid=(account_sid, "TWILIO_ACCOUNT_SID"),
            auth_token=(auth_token, "TWILIO_AUTH_TOKEN"),
            from_number=(from_number, "TWILIO_FROM_NUMBER"),
        )
        if status_callback is None:
            status_callback = f"{settings.SITE_URL.rstrip('/')}/webhooks/twilio/status/"
        self.status_callback = status_callback or None
        self.base_url = base_url or None
        self.timeout = self.positive_timeout(timeout)

    def open_lane(self) -> SmsLane:
        # Building the client makes no request: connecting happens on the lane's first message.
        http_client = RedirectingHttpClient(base_url=self.base_url, timeout=self.timeout)
        return SmsLane(Client(self.account_sid, self.auth_token, http_client=http_client), http_client)

    def close_lane(self, lane: SmsLane) -> None:
        lane.http_client.close()

    def normalise_address(self, address: str) -> str:
        return e164_address(address)

    def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
        payload = {"to": message.address, "from_": self.from_number, "body": message.text}
        if self.status_callback:
            payload["status_callback"] = self.status_callback
        return payload

    def send_payload(self, payload: dict[str, Any], message: OutboundMessage, lane: SmsLane) -> str:
        try:
            created = lane.client.messages.create(**payload)
        except (TwilioRestException, TwilioServiceException) as error:
            raise twilio_error(error, lane.http_client.last_response) from error
        except requests.exceptions.RequestException as error:
            raise request_error(error) from error
        except (TwilioException, json.JSONDecodeError) as error:
            # A success status with a body the SDK could not read: accepted, id unknown.
            raise UnknownOutcomeError(f"Unreadable reply from Twilio: {error!r}", reason="twilio_bad_reply") from error
        sid = created.sid or ""
        if not re.fullmatch(r"[A-Z]{2}[0-9a-fA-F]{32}", sid):
            raise UnknownOutcomeError(f"Twilio replied without a message SID ({sid!r}).", reason="twilio_bad_reply")
        return sid
