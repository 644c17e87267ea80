"""Web push (RFC 8030 + VAPID, RFC 8292; payload encrypted with aes128gcm, RFC 8291) via pywebpush.

The address is the endpoint of a ``WebPushSubscription`` (stored by ``channels_adapters.views``
when the browser subscribes); its keys are looked up per message. The payload the service
worker receives is JSON ``{"title": ..., "body": ..., "url": ...}``.

OPTIONS:

- ``vapid_private_key`` (required): the application server's P-256 key, as PEM or as the
  base64url raw 32-byte key (or base64url DER), e.g. from ``vapid --gen``.
- ``vapid_subject`` (required): a contact for the push service, ``mailto:...`` or ``https://...``.
- ``ttl``: seconds the push service keeps an undelivered message; default one day.
- ``timeout``: seconds for each HTTP request to the push service; default 10.
- ``allow_private``: skip the SSRF check of the endpoint (``channels_adapters.ssrf``); default
  ``False``. Endpoints come from browsers, i.e. from users, so leave it off in production.

Responses: 2xx accepted (the provider id is the ``Location`` header, the push service's
message URL, else a uuid4 hex); 404/410 the subscription is gone, so its row is deleted and
the message fails with ``PermanentChannelError(reason="webpush:gone")``; 429 and 5xx are
transient (honouring ``Retry-After`` in seconds); any other 4xx is permanent. A batch goes out
over ``concurrency`` lanes (default 8), each with its own kept-alive HTTP session; redirects are
refused (``webpush:redirect``). Subscriptions are read and updated in the calling thread
(``build_payload``, ``after_send``), never by the lanes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.utils import timezone
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from .base import BaseChannel, OutboundMessage, SendResult
from .features import WEBPUSH
from .http import keepalive_session
from .errors import (
    ChannelConfigurationError,
    InvalidAddressError,
    PermanentChannelError,
    TransientChannelError,
    UnknownOutcomeError,
)
from .ssrf import assert_public_url

# An aes128gcm record is at most 4096 bytes: minus the 86-byte header, 16-byte tag and the
# 1-byte padding delimiter, this much plaintext fits (RFC 8291 section 4).
MAX_PLAINTEXT_BYTES = 3993

DEFAULT_TTL = 24 * 60 * 60


@dataclass(frozen=True)
class WebPushPayload:
    subscription: Any  # channels_adapters.models.WebPushSubscription
    data: str


def load_vapid_key(key: str) -> Vapid:
    """A ``py_vapid.Vapid`` from a PEM key or a base64url raw/DER key; a bad key is a setting error."""
    key = key.strip()
    try:
        if key.startswith("-----BEGIN"):
            return Vapid(load_pem_private_key(key.encode(), password=None))
        return Vapid.from_string(key)
    except (ValueError, TypeError) as error:
        raise ChannelConfigurationError(f"vapid_private_key is not a valid P-256 private key: {error}") from error


def retry_after_seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: let the pipeline's own backoff decide


class WebPushChannel(BaseChannel):
    max_batch_size = 100
    features = WEBPUSH

    def __init__(
        self,
        alias: str,
        *,
        vapid_private_key: str = "",
        vapid_subject: str = "",
        ttl: int = DEFAULT_TTL,
        timeout: float = 10,
        allow_private: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        if not vapid_private_key:
            raise ChannelConfigurationError(f"WebPushChannel {alias!r}: OPTIONS needs vapid_private_key.")
        if not vapid_subject.startswith(("mailto:", "https://")):
            raise ChannelConfigurationError(
                f"WebPushChannel {alias!r}: vapid_subject must be a mailto: or https:// URL, not {vapid_subject!r}."
            )
        self.vapid = load_vapid_key(vapid_private_key)
        self.vapid_subject = vapid_subject
        self.ttl = int(ttl)
        self.timeout = self.positive_timeout(timeout)
        self.allow_private = bool(allow_private)

    def open_lane(self) -> requests.Session:
        session = keepalive_session()
        # Push services never redirect; following one would bypass the SSRF check.
        session.max_redirects = 0
        return session

    def close_lane(self, lane: requests.Session) -> None:
        lane.close()

    def build_payload(self, message: OutboundMessage) -> WebPushPayload:
        from .models import WebPushSubscription

        subscription = WebPushSubscription.objects.filter(endpoint=message.address).first()
        if subscription is None:
            raise InvalidAddressError("No web push subscription has this endpoint (the browser unsubscribed).")
        data = json.dumps(
            {"title": message.subject, "body": message.text, "url": message.url},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        if len(data.encode()) > MAX_PLAINTEXT_BYTES:
            raise PermanentChannelError(
                f"The push payload is {len(data.encode())} bytes; at most {MAX_PLAINTEXT_BYTES} fit.",
                reason="webpush:too_large",
            )
        return WebPushPayload(subscription=subscription, data=data)

    def send_payload(self, payload: WebPushPayload, message: OutboundMessage, lane: requests.Session) -> str:
        subscription = payload.subscription
        if not self.allow_private:
            assert_public_url(subscription.endpoint)
        try:
            response = webpush(
                subscription.subscription_info,
                data=payload.data,
                vapid_private_key=self.vapid,
                # A fresh dict each time: webpush() writes "aud" (the endpoint's origin) into it.
                vapid_claims={"sub": self.vapid_subject},
                ttl=self.ttl,
                timeout=self.timeout,
                requests_session=lane,
            )
        except WebPushException as error:
            raise self._refusal(error, subscription) from error
        except requests.TooManyRedirects as error:
            raise PermanentChannelError("The push service answered with a redirect.", reason="webpush:redirect") from error
        except requests.ConnectionError as error:
            raise TransientChannelError(f"Could not reach the push service: {error}", reason="webpush:connection") from error
        except requests.RequestException as error:
            # E.g. a read timeout: the request went out and may have been accepted.
            raise UnknownOutcomeError(f"No answer from the push service: {error}", reason="webpush:no_answer") from error
        except (ValueError, TypeError) as error:
            # The stored keys cannot be used to encrypt (not a P-256 point, wrong length).
            raise PermanentChannelError(f"Unusable subscription keys: {error}", reason="webpush:bad_keys") from error
        return response.headers.get("Location") or uuid.uuid4().hex

    def after_send(self, payload: WebPushPayload | None, result: SendResult) -> None:
        if payload is None:
            return
        subscription = payload.subscription
        if result.ok:
            type(subscription).objects.filter(pk=subscription.pk).update(last_used_at=timezone.now())
        elif result.error.reason == "webpush:gone":
            type(subscription).objects.filter(pk=subscription.pk).delete()

    def _refusal(self, error: WebPushException, subscription: Any) -> Exception:
        status = error.status_code
        if status is None:
            return PermanentChannelError(f"Web push failed: {error.message}", reason="webpush:error")
        text = f"Push service answered {status}"
        if status in (404, 410):
            return PermanentChannelError(f"{text}: the subscription is gone and was deleted.", reason="webpush:gone")
        if status == 429 or status >= 500:
            return TransientChannelError(
                text, reason=f"webpush_{status}", retry_after=retry_after_seconds(error.retry_after)
            )
        return PermanentChannelError(text, reason=f"webpush_{status}")
