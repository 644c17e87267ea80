"""Mobile push through Firebase Cloud Messaging HTTP v1, with pyfcm (Google's OAuth through
google-auth), to the recipient's newest registered device (``models.PushDevice``, registered
through ``channels_adapters.devices``).

OPTIONS:

- ``service_account``: the Firebase service account, as a dict (the JSON file's content) or a
  path to the file; default ``settings.FCM_SERVICE_ACCOUNT_FILE``. ``project_id`` defaults to the
  account's. Missing: ``ChannelConfigurationError``.
- ``base_url``: default ``https://fcm.googleapis.com`` (tests point it at a local fake, and the
  service account's ``token_uri`` at the fake's token endpoint).
- ``timeout``: seconds; default 10.

The OAuth access token is shared by the adapter's lanes (one refresh, under a lock, when it
expires); each lane has its own kept-alive session; the SDK's own retries (urllib3 retries of
502/503 and sleeping on ``Retry-After``) are off: the pipeline retries. Outcomes:

- 200: accepted; the provider id is FCM's message name.
- 404 ``UNREGISTERED`` and 403 ``SENDER_ID_MISMATCH``: permanent, and the device token is
  deleted (the app was uninstalled, or the token belongs to another project).
- 400 ``INVALID_ARGUMENT``: permanent. 401: the OAuth token is refreshed and the message sent
  once more; a second 401 is transient. 429 and 5xx: transient, with ``Retry-After``.
- No connection (also to the OAuth endpoint): transient. A read timeout or a dropped connection
  after the request left: ``UnknownOutcomeError``, never re-sent (a push has no idempotency key).

iOS apps receive through FCM's APNs bridge; ``channels_adapters.apns`` talks to APNs directly.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import requests
from django.conf import settings
from google.oauth2 import service_account as google_service_account
from pyfcm import FCMNotification

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
from .http import keepalive_session, nothing_was_sent

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GONE_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})


class SharedCredentials:
    """One OAuth access token for every lane, refreshed once (under a lock) when it expires."""

    def __init__(self, credentials: google_service_account.Credentials, timeout: float) -> None:
        self.credentials = credentials
        self.timeout = timeout
        self.lock = threading.Lock()

    def token(self, *, stale: str | None = None) -> str:
        with self.lock:
            if not self.credentials.valid or (stale and self.credentials.token == stale):
                session = keepalive_session()
                try:
                    request = google.auth.transport.requests.Request(session=session)
                    self.credentials.refresh(functools.partial(request, timeout=self.timeout))
                finally:
                    session.close()
            return self.credentials.token


class LaneFCM(FCMNotification):
    """pyfcm's client for one lane: our endpoint, one kept-alive session, the shared token, and
    exactly one request per send (no urllib3 retries, no sleeping on ``Retry-After``)."""

    def __init__(self, *, shared: SharedCredentials, project_id: str, base_url: str) -> None:
        super().__init__(credentials=shared.credentials, project_id=project_id,
                         adapter=requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
        self.shared = shared
        self.FCM_END_POINT_BASE = f"{base_url.rstrip('/')}/v1/projects"
        self.used_token = ""

    def request_headers(self) -> dict[str, str]:
        self.used_token = self.shared.token()
        return {"Content-Type": "application/json", "Authorization": f"Bearer {self.used_token}"}

    def send_once(self, payload: bytes, timeout: float) -> requests.Response:
        session = self.requests_session
        session.headers["Authorization"] = f"Bearer {self.shared.token()}"
        self.used_token = session.headers["Authorization"].removeprefix("Bearer ")
        return session.post(self.fcm_end_point, data=payload, timeout=timeout)

    def close(self) -> None:
        session = getattr(self.thread_local, "requests_session", None)
        if session is not None:
            session.close()


@dataclass
class PushPayload:
    token: str
    body: bytes


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def fcm_error(response: requests.Response) -> ChannelError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    status = error.get("status") or ""
    codes = [d.get("errorCode") for d in error.get("details") or [] if isinstance(d, dict) and d.get("errorCode")]
    code = codes[0] if codes else status or str(response.status_code)
    text = f"FCM HTTP {response.status_code} {code}: {error.get('message', '')}".strip()
    if response.status_code == 429 or response.status_code >= 500 or response.status_code == 401:
        return TransientChannelError(text, reason=f"fcm:{code}", retry_after=_retry_after(response))
    return PermanentChannelError(text, reason=f"fcm:{code}")


def _transport_error(error: requests.exceptions.RequestException) -> ChannelError:
    if nothing_was_sent(error):
        return TransientChannelError(f"Could not connect to FCM: {error}", reason="fcm_connect")
    if isinstance(error, requests.exceptions.Timeout):
        return UnknownOutcomeError(f"No reply from FCM in time; the push may have been sent: {error}",
                                   reason="fcm_timeout")
    return UnknownOutcomeError(f"The connection to FCM failed after the request was sent: {error}",
                               reason="fcm_no_reply")


class MobilePushChannel(DevicePushMixin, BaseChannel):
    max_batch_size = 100
    max_per_second = None
    features = MOBILEPUSH
    gone_reasons = GONE_CODES
    reason_prefix = "fcm:"

    def __init__(self, alias: str, *, service_account: dict | str | None = None, project_id: str | None = None,
                 base_url: str = "https://fcm.googleapis.com", timeout: float = 10, **options: Any) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        owner = f"{type(self).__name__} {alias!r}"
        self.timeout = self.positive_timeout(timeout)
        account = service_account or getattr(settings, "FCM_SERVICE_ACCOUNT_FILE", "")
        if not account:
            raise ChannelConfigurationError(f"{owner}: missing service_account (FCM_SERVICE_ACCOUNT_FILE).")
        try:
            if isinstance(account, dict):
                credentials = google_service_account.Credentials.from_service_account_info(account, scopes=[FCM_SCOPE])
            else:
                credentials = google_service_account.Credentials.from_service_account_file(account, scopes=[FCM_SCOPE])
        except (ValueError, KeyError, OSError) as error:
            raise ChannelConfigurationError(f"{owner}: unreadable service account: {error}") from error
        self.project_id = project_id or credentials.project_id
        if not self.project_id:
            raise ChannelConfigurationError(f"{owner}: missing project_id.")
        self.shared = SharedCredentials(credentials, self.timeout)
        self.base_url = base_url
        self._builder = FCMNotification(credentials=credentials, project_id=self.project_id)  # no request made

    def normalise_address(self, address: str) -> str:
        address = address.strip()
        if not address or len(address) > 512 or any(c.isspace() for c in address):
            raise InvalidAddressError(f"Not a device token: {address[:40]!r}.")
        return address

    def build_payload(self, message: OutboundMessage) -> PushPayload:
        data = {"url": message.url} if message.url else None
        # pyfcm builds the HTTP v1 message.
        body = self._builder.parse_payload(fcm_token=message.address, notification_title=message.subject,
                                           notification_body=message.text, data_payload=data)
        return PushPayload(token=message.address, body=body)

    def open_lane(self) -> LaneFCM:
        return LaneFCM(shared=self.shared, project_id=self.project_id, base_url=self.base_url)

    def close_lane(self, lane: LaneFCM) -> None:
        lane.close()

    def send_payload(self, payload: PushPayload, message: OutboundMessage, lane: LaneFCM) -> str:
        try:
            response = lane.send_once(payload.body, self.timeout)
            if response.status_code == 401:  # the access token was refused: a new one, once
                self.shared.token(stale=lane.used_token)
                response = lane.send_once(payload.body, self.timeout)
        except google.auth.exceptions.GoogleAuthError as error:
            raise TransientChannelError(f"Could not get an FCM access token: {error}", reason="fcm_auth") from error
        except requests.exceptions.RequestException as error:
            raise _transport_error(error) from error
        if response.status_code != 200:
            raise fcm_error(response)
        try:
            name = response.json().get("name", "")
        except ValueError as error:
            raise UnknownOutcomeError(f"Unreadable reply from FCM: {error!r}", reason="fcm_bad_reply") from error
        if not name:
            raise UnknownOutcomeError("FCM accepted the message without a name.", reason="fcm_bad_reply")
        return name

    def after_send(self, payload: PushPayload | None, result: SendResult) -> None:
        """A token FCM no longer knows is deleted; the tokens reached are stamped as used."""
        self.device_outcome(payload.token if payload is not None else None, result)
