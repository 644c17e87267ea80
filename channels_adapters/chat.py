"""Chat messages through Apprise: Slack, Microsoft Teams, Telegram, WeCom, DingTalk, generic webhooks.

The address is an Apprise URL (``slack://...``, ``msteams://...``, ``tgram://...``,
``wecombot://...``, ``dingtalk://...``, ``json://host/path``, ``jsons://host/path``, ...).

OPTIONS (all optional):

- ``url``: one Apprise URL for every message of this alias (a shared team channel); the
  message's own address is then ignored.
- ``allow_private``: skip the SSRF check (``channels_adapters.ssrf``) of generic webhook URLs
  (``json``/``form``/``xml`` and their ``s`` variants); default ``False``. Needed for an
  on-premises chat server on a private network, and in tests against 127.0.0.1.

Generic webhook URLs point wherever the user typed, so they are converted to the http(s) URL
Apprise will POST to and checked with ``assert_public_url`` before each send. The other
schemes post to their provider's fixed host. Self-hosted services that take a host (Mattermost,
ntfy, Gotify, ...) are not checked; do not offer them to users on an alias that is not trusted.

Apprise reports only success or failure: ``notify()`` returns ``False`` for an HTTP error, a
timeout and a refused connection alike, and hides the status code. A ``False`` therefore
becomes ``TransientChannelError`` (a retry is safe for a webhook post that was not accepted);
a webhook that refuses for good (e.g. a deleted Slack hook) is retried until the pipeline gives
up. Apprise gives no message id, so the provider id is a generated uuid4 hex.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import apprise

from .base import BaseChannel, OutboundMessage
from .errors import InvalidAddressError, PermanentChannelError, TransientChannelError
from .ssrf import assert_public_url

# Apprise schemes whose host is whatever the URL says: their target must be checked.
GENERIC_WEBHOOK_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})


@dataclass(frozen=True)
class ChatPayload:
    """One Apprise notification: the service built from the URL, and what to post."""

    service: Any  # an apprise NotifyBase subclass instance
    title: str
    body: str


def webhook_target(service: Any) -> str:
    """The http(s) URL a generic webhook service (``json://``, ...) will POST to."""
    scheme = "https" if service.secure else "http"
    host = service.host or ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    port = f":{service.port}" if service.port else ""
    return f"{scheme}://{host}{port}{getattr(service, 'fullpath', '') or '/'}"


class ChatChannel(BaseChannel):
    max_batch_size = 100
    # Slack and Teams incoming webhooks accept about one message per second.
    max_per_second = 1.0

    def __init__(self, alias: str, *, url: str = "", allow_private: bool = False, **options: Any) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        self.url = url.strip()
        self.allow_private = bool(allow_private)

    def normalise_address(self, address: str) -> str:
        address = (self.url or address).strip()
        if not address:
            raise InvalidAddressError("No chat URL: the address is empty and OPTIONS has no url.")
        if self._service(address) is None:
            scheme = urlsplit(address).scheme if "://" in address else ""
            # Never echo the URL: its path usually carries the webhook's secret token.
            raise InvalidAddressError(f"Not a valid or supported Apprise URL (scheme {scheme!r}).")
        return address

    @staticmethod
    def _service(address: str) -> Any:
        return apprise.Apprise.instantiate(address)

    def build_payload(self, message: OutboundMessage) -> ChatPayload:
        service = self._service(message.address)
        if service is None:  # normalise_address() already checked; keep the hook self-contained
            raise InvalidAddressError("Not a valid or supported Apprise URL.")
        body = message.text or message.subject
        if message.url:
            body = f"{body}\n\n{message.url}" if body else message.url
        if not body:
            raise PermanentChannelError("The message has no text, subject or URL to post.", reason="empty_message")
        return ChatPayload(service=service, title=message.subject, body=body)

    def send_payload(self, payload: ChatPayload, message: OutboundMessage) -> str:
        if not self.allow_private and urlsplit(message.address).scheme.lower() in GENERIC_WEBHOOK_SCHEMES:
            assert_public_url(webhook_target(payload.service))
        notifier = apprise.Apprise()
        notifier.add(payload.service)
        if not notifier.notify(body=payload.body, title=payload.title):
            raise TransientChannelError(
                f"{payload.service.url(privacy=True)} did not accept the message "
                "(Apprise does not report the reason; see the apprise log).",
                reason="chat_not_accepted",
            )
        return uuid.uuid4().hex
