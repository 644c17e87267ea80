"""Mobile push straight to Apple's push service (APNs, HTTP/2, token-based auth), with aioapns,
to the recipient's newest registered device (``models.PushDevice``), for iOS-only apps (an app on
both platforms can reach iOS through FCM's APNs bridge, ``channels_adapters.mobilepush``).

OPTIONS (default from settings): ``key`` (the .p8 provider key, PEM text or a path;
``APNS_KEY``), ``key_id`` (``APNS_KEY_ID``), ``team_id`` (``APNS_TEAM_ID``), ``topic`` (the app's
bundle id; ``APNS_TOPIC``), ``use_sandbox`` (development server), ``timeout`` (seconds, default 10).
``endpoint`` (``"127.0.0.1:8443"``) and ``ca_file`` point it at a local fake in tests.

Each lane has its own event loop and one HTTP/2 connection. aioapns's own retries (reconnect and
send again after a dropped connection, which could deliver twice) are bypassed: the adapter takes
one connection from aioapns's pool and sends once. Outcomes: 200 accepted (the provider id is the
``apns-id``, derived from the delivery so a re-send carries the same one); 410 ``Unregistered``
and 400 ``BadDeviceToken``: permanent and the token deleted; other 400s permanent; 403 (provider
token) , 429 and 5xx transient; no connection transient; no answer in time or the connection
closed after the request left: ``UnknownOutcomeError``.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aioapns import APNs, NotificationRequest
from aioapns.connection import (
    APNsDevelopmentClientProtocol,
    APNsProductionClientProtocol,
    APNsTLSClientProtocol,
)
from aioapns.exceptions import ConnectionClosed
from aioapns.exceptions import ConnectionError as ApnsConnectionError

from .base import BaseChannel, OutboundMessage, SendResult
from .device_push import DevicePushMixin
from .errors import (
    ChannelConfigurationError,
    ChannelError,
    InvalidAddressError,
    PermanentChannelError,
    TransientChannelError,
    UnknownOutcomeError,
)
from .features import MOBILEPUSH

GONE_REASONS = frozenset({"Unregistered", "BadDeviceToken"})


@dataclass
class ApnsLane:
    loop: asyncio.AbstractEventLoop
    client: APNs


class NotConnected(Exception):
    """No connection to APNs could be made: nothing was sent."""


def apns_error(status: str, reason: str) -> ChannelError:
    text = f"APNs HTTP {status}" + (f" {reason}" if reason else "")
    code = reason or status
    if status in ("403", "429") or status.startswith("5"):
        return TransientChannelError(text, reason=f"apns:{code}")
    return PermanentChannelError(text, reason=f"apns:{code}")


class ApnsChannel(DevicePushMixin, BaseChannel):
    max_batch_size = 100
    max_per_second = None
    features = MOBILEPUSH
    gone_reasons = GONE_REASONS
    reason_prefix = "apns:"

    def __init__(self, alias: str, *, key: str | None = None, key_id: str | None = None, team_id: str | None = None,
                 topic: str | None = None, use_sandbox: bool = False, endpoint: str | None = None,
                 ca_file: str | None = None, timeout: float = 10, **options: Any) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        owner = f"{type(self).__name__} {alias!r}"
        self.timeout = self.positive_timeout(timeout)
        self.key, self.key_id, self.team_id, self.topic = self.required_options(
            key=(key, "APNS_KEY"), key_id=(key_id, "APNS_KEY_ID"), team_id=(team_id, "APNS_TEAM_ID"),
            topic=(topic, "APNS_TOPIC"),
        )
        if "BEGIN" not in self.key:
            try:
                self.key = Path(self.key).read_text()
            except OSError as error:
                raise ChannelConfigurationError(f"{owner}: cannot read the key: {error}") from error
        self.ca_file = ca_file
        if endpoint:
            host, _, port = endpoint.rpartition(":")
            self.protocol_class = type("ApnsEndpointProtocol", (APNsTLSClientProtocol,),
                                       {"APNS_SERVER": host, "APNS_PORT": int(port)})
        else:
            self.protocol_class = APNsDevelopmentClientProtocol if use_sandbox else APNsProductionClientProtocol

    def normalise_address(self, address: str) -> str:
        address = address.strip()
        if not address or len(address) > 200 or not all(c in "0123456789abcdefABCDEF" for c in address):
            raise InvalidAddressError(f"Not an APNs device token: {address[:40]!r}.")
        return address.lower()

    def build_payload(self, message: OutboundMessage) -> NotificationRequest:
        alert = {"title": message.subject, "body": message.text}
        body: dict[str, Any] = {"aps": {"alert": alert, "sound": "default"}}
        if message.url:
            body["url"] = message.url
        apns_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"signalbox:{message.idempotency_key or message.delivery_id}"))
        return NotificationRequest(device_token=message.address, message=body, notification_id=apns_id)

    def open_lane(self) -> ApnsLane:
        loop = asyncio.new_event_loop()

        async def build() -> APNs:
            context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
            client = APNs(key=self.key, key_id=self.key_id, team_id=self.team_id, topic=self.topic,
                          max_connections=1, max_connection_attempts=1, ssl_context=context)
            client.pool.protocol_class = self.protocol_class
            return client

        return ApnsLane(loop, loop.run_until_complete(build()))

    def close_lane(self, lane: ApnsLane) -> None:
        self._drop_connections(lane)
        lane.loop.close()

    async def _send(self, lane: ApnsLane, request: NotificationRequest):
        try:
            connection = await asyncio.wait_for(lane.client.pool.acquire(), self.timeout)
        except (ApnsConnectionError, ConnectionError, OSError, asyncio.TimeoutError) as error:
            raise NotConnected(str(error)) from error
        return await asyncio.wait_for(connection.send_notification(request), self.timeout)

    @staticmethod
    def _drop_connections(lane: ApnsLane) -> None:
        for connection in list(lane.client.pool.connections):
            # Out of the pool now (the close completes later), without the requests whose wait
            # was given up: aioapns would fail setting a result on them when the close lands.
            lane.client.pool.connections.remove(connection)
            connection.on_connection_lost = None
            connection.requests = {key: future for key, future in connection.requests.items() if not future.done()}
            connection.close()
        lane.loop.run_until_complete(asyncio.sleep(0))

    def send_payload(self, payload: NotificationRequest, message: OutboundMessage, lane: ApnsLane) -> str:
        try:
            result = lane.loop.run_until_complete(self._send(lane, payload))
        except NotConnected as error:
            raise TransientChannelError(f"Could not connect to APNs: {error}", reason="apns_connect") from error
        except asyncio.TimeoutError as error:
            self._drop_connections(lane)  # its stream may still answer late: the next push gets a new one
            raise UnknownOutcomeError("No answer from APNs in time; the push may have been sent.",
                                      reason="apns_timeout") from error
        except ConnectionClosed as error:
            raise UnknownOutcomeError(f"The connection to APNs closed after the push was sent: {error}",
                                      reason="apns_no_reply") from error
        if result.is_successful:
            return result.notification_id
        raise apns_error(str(result.status), str(result.description or ""))

    def after_send(self, payload: NotificationRequest | None, result: SendResult) -> None:
        """A token Apple no longer accepts is deleted (410 Unregistered, 400 BadDeviceToken); the
        tokens reached are stamped as used."""
        self.device_outcome(payload.device_token if payload is not None else None, result)
