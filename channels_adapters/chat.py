"""Chat messages through Apprise, to the services Signalbox supports and nothing else.

The address is an Apprise URL of one of ``CHAT_SERVICES``: Slack (``slack://``), Microsoft
Teams through a Power Automate workflow (``workflow://host/id/signature``), Telegram
(``tgram://``), WeCom (``wecombot://``), DingTalk (``dingtalk://``), Feishu (``feishu://``),
Discord (``discord://``) and generic JSON webhooks (``json://host/path``, ``jsons://`` for
https). A service's own https webhook URL works too when Apprise recognises it as one of these
(``https://hooks.slack.com/services/...``, a Teams workflow URL, ...). Every other scheme
(``ntfy``, ``gotify``, ``mmost``, ``matrix``, ``apprise``, ``rsyslog``, ``form``, ``xml``, ...)
is refused, as is the ``template`` parameter (it makes Apprise read a local file or fetch a URL).

How a URL is held to that (``channels_adapters.ssrf``):

- When it is saved (``validate_chat_address``, used by the recipient profile admin forms) and
  before each send: the scheme must be allowed and, for the services whose URL names the host
  (JSON webhooks, Teams workflows), the host must resolve only to allowed addresses; a name
  that does not resolve is a form error at save and a retry at send.
- While Apprise sends: every connection it opens goes through ``guarded_connections``, which
  resolves the host, refuses any internal, loopback, link-local, multicast, reserved or
  metadata address, and connects to exactly the address it checked (DNS rebinding cannot slip
  through); fixed-host services (Slack, Telegram, ...) are checked the same way. Redirects are
  switched off in the service and refused by the guard: a 3xx fails the message.

A refusal fails the delivery with ``PermanentChannelError`` (reason ``"ssrf"``) whose message
says what was refused and why; it is never retried and never reported as sent.

OPTIONS (all optional):

- ``url``: one Apprise URL for every message of this alias (a shared team channel); the
  message's own address is then ignored. Its scheme is checked when the adapter is built (a
  refused one is a configuration error) and its host at every send.
- ``allow_private``: ``True`` lets messages reach private and loopback networks (an
  on-premises chat server, tests against 127.0.0.1), or a list such as ``["10.2.0.0/16"]``
  lets them reach only those networks. Link-local and cloud metadata addresses stay refused,
  and schemes, ``template`` and redirects are refused as without it. It also applies to the
  check when a recipient's address is saved.

Apprise reports only success or failure: ``notify()`` returns ``False`` for an HTTP error, a
timeout and a refused connection alike, and hides the status code. A ``False`` without a
refusal by the guard therefore becomes ``TransientChannelError`` (a retry is safe for a webhook
post that was not accepted); a webhook that refuses for good (e.g. a deleted Slack hook) is
retried until the pipeline gives up. Apprise gives no message id, so the provider id is a
generated uuid4 hex.

A batch goes out over ``concurrency`` lanes (default 4), each with its own kept-alive HTTP
session. Apprise's plugins call ``requests.post``/``requests.request`` (a new connection each
time); inside a lane those calls are routed to the lane's session (``_lane_session``), in the
lane's context only, so posts to one webhook reuse one checked connection. A chat post has no
idempotency key: one in flight when its worker died is ``unknown`` and never re-sent.
"""

from __future__ import annotations

import threading
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import apprise
import requests
import requests.api
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .base import BaseChannel, OutboundMessage
from .features import CHAT
from .http import keepalive_session
from .errors import (
    ChannelConfigurationError,
    ChannelError,
    InvalidAddressError,
    PermanentChannelError,
    TransientChannelError,
)
from .ssrf import PUBLIC_ONLY, AddressPolicy, check_host, guarded_connections


@dataclass(frozen=True)
class ChatService:
    """A chat service Signalbox posts to. ``host_port`` is ``None`` for a service whose host is
    fixed by Apprise (``hooks.slack.com``), else it gives the (host, port) the URL names."""

    label: str
    host_port: Any = None


def _webhook_host_port(service: Any) -> tuple[str, int]:
    # Apprise keeps an IPv6 literal in brackets ("[::1]"); the resolver wants it bare.
    return (service.host or "").strip("[]"), service.port or (443 if service.secure else 80)


def _https_host_port(service: Any) -> tuple[str, int]:
    return (service.host or "").strip("[]"), service.port or 443


_TEAMS = ChatService("Microsoft Teams (workflow://)", host_port=_https_host_port)
_JSON = ChatService(gettext_lazy("JSON webhook (json://, jsons://)"), host_port=_webhook_host_port)

#: The allow-list, by Apprise scheme. Each plugin here makes its requests with ``requests``
#: (so through the connection guard) and posts nowhere but the URL's service.
CHAT_SERVICES: dict[str, ChatService] = {
    "slack": ChatService("Slack (slack://)"),
    "workflow": _TEAMS,
    "workflows": _TEAMS,
    "tgram": ChatService("Telegram (tgram://)"),
    "wecombot": ChatService("WeCom (wecombot://)"),
    "dingtalk": ChatService("DingTalk (dingtalk://)"),
    "feishu": ChatService("Feishu (feishu://)"),
    "discord": ChatService("Discord (discord://)"),
    "json": _JSON,
    "jsons": _JSON,
}

# A service's own https URL is accepted when Apprise turns it into an allowed service.
_NATIVE_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class ChatTarget:
    """An allowed chat URL, parsed: the Apprise service, and the host to check if the URL names one."""

    service: Any  # an apprise NotifyBase subclass instance
    host: str = ""
    port: int = 0


@dataclass(frozen=True)
class ChatPayload:
    """One Apprise notification: where it goes, and what to post."""

    target: ChatTarget
    title: str
    body: str


def allowed_services_text() -> str:
    labels = dict.fromkeys(str(service.label) for service in CHAT_SERVICES.values())
    return ", ".join(labels)


def _refused_scheme(scheme: str) -> InvalidAddressError:
    return InvalidAddressError(
        _("Chat addresses may only be for these services: %(services)s. %(scheme)s is not one of them.")
        % {"services": allowed_services_text(), "scheme": f"{scheme}://"},
        reason="ssrf",
    )


def inspect_chat_address(address: str) -> ChatTarget:
    """Parse ``address`` into a ``ChatTarget`` if it is an allowed chat URL.

    Raises ``InvalidAddressError``: reason ``"ssrf"`` for a scheme, service or parameter that
    is not allowed, ``"invalid_address"`` for a URL Apprise cannot use. Never resolves a name
    and never echoes the URL (its path usually carries the webhook's secret token).
    """
    address = address.strip()
    if not address:
        raise InvalidAddressError(_("No chat URL: the address is empty and OPTIONS has no url."))
    if "://" not in address:
        raise InvalidAddressError(_("Not a chat URL: it should start with its service, e.g. slack://… or json://host/path."))
    scheme = address.split("://", 1)[0].lower()
    if scheme not in CHAT_SERVICES and scheme not in _NATIVE_SCHEMES:
        raise _refused_scheme(scheme)
    service = apprise.Apprise.instantiate(address)
    if service is None:
        raise InvalidAddressError(
            _("Not a valid %(scheme)s:// address: check it against the service's instructions.") % {"scheme": scheme}
        )
    spec = CHAT_SERVICES.get(service.schema)
    declared = {service.protocol, service.secure_protocol}
    declared = {name for entry in declared for name in ((entry,) if isinstance(entry, str) else entry or ())}
    if spec is None or service.schema not in declared:
        raise _refused_scheme(service.schema or scheme)
    if getattr(service, "template", None):
        raise InvalidAddressError(
            _("The template parameter is not allowed in chat addresses: it makes Signalbox read a file or fetch a URL."),
            reason="ssrf",
        )
    # Redirects are refused by the connection guard too; this keeps Apprise from asking.
    service.redirects = False
    if spec.host_port is None:
        return ChatTarget(service=service)
    host, port = spec.host_port(service)
    return ChatTarget(service=service, host=host, port=port)


def configured_chat_policy() -> AddressPolicy:
    """The address policy the ``chat`` alias sends with (public only unless it is a
    ``ChatChannel`` with ``allow_private``), so an address is saved under the rule it is sent under."""
    from .handler import channels

    try:
        adapter = channels["chat"]
    except ChannelConfigurationError:
        return PUBLIC_ONLY
    return getattr(adapter, "address_policy", PUBLIC_ONLY)


def validate_chat_address(address: str, *, policy: AddressPolicy | None = None) -> None:
    """Django validator for a personal chat address: an allowed service, and (for a URL that
    names its host) a host that resolves, only to allowed addresses. Raises ``ValidationError``."""
    try:
        target = inspect_chat_address(address)
        if target.host:
            check_host(target.host, target.port, policy=policy or configured_chat_policy())
    except ChannelError as error:
        raise ValidationError(error.message, code=error.reason) from error


def validate_chat_ids(value: Any, *, policy: AddressPolicy | None = None) -> None:
    """Django validator for ``RecipientProfile.chat_ids``: a JSON object whose ``"apprise"``
    entry, the personal chat address the chat channel sends to, passes ``validate_chat_address``."""
    if value in (None, ""):
        return
    if not isinstance(value, dict):
        raise ValidationError(_('Chat ids must be a JSON object, e.g. {"apprise": "slack://…"}.'), code="invalid")
    address = value.get("apprise")
    if address in (None, ""):
        return
    if not isinstance(address, str):
        raise ValidationError(_('The "apprise" chat id must be a URL written as text.'), code="invalid")
    validate_chat_address(address, policy=policy)


_lane_session: ContextVar[requests.Session | None] = ContextVar("signalbox_chat_lane_session", default=None)
_routing_lock = threading.Lock()
_original_request: list = []


def _route_requests_to_lane_sessions() -> None:
    """Once per process: module-level ``requests`` calls made in a context that has a lane
    session go through that session (kept-alive connections); every other call is untouched."""
    with _routing_lock:
        if _original_request:
            return
        original = requests.api.request
        _original_request.append(original)

        def request(method, url, **kwargs):
            session = _lane_session.get()
            if session is None:
                return original(method, url, **kwargs)
            return session.request(method=method, url=url, **kwargs)

        # ``requests.post`` & co. call ``requests.api.request``; Apprise also calls ``requests.request``.
        requests.api.request = request
        requests.request = request


class ChatChannel(BaseChannel):
    max_batch_size = 100
    features = CHAT
    # Slack and Teams incoming webhooks accept about one message per second.
    max_per_second = 1.0

    def __init__(self, alias: str, *, url: str = "", allow_private: Any = False, **options: Any) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        self.url = url.strip()
        self.address_policy = AddressPolicy.from_option(allow_private, alias=alias)
        if self.url:
            try:
                inspect_chat_address(self.url)
            except ChannelError as error:
                raise ChannelConfigurationError(f"ChatChannel {alias!r}: OPTIONS url is refused. {error.message}") from error

    def normalise_address(self, address: str) -> str:
        address = (self.url or address).strip()
        inspect_chat_address(address)
        return address

    def build_payload(self, message: OutboundMessage) -> ChatPayload:
        target = inspect_chat_address(message.address)
        body = message.text or message.subject
        if message.url:
            body = f"{body}\n\n{message.url}" if body else message.url
        if not body:
            raise PermanentChannelError(_("The message has no text, subject or URL to post."), reason="empty_message")
        return ChatPayload(target=target, title=message.subject, body=body)

    def open_lane(self) -> requests.Session:
        _route_requests_to_lane_sessions()
        return keepalive_session()

    def close_lane(self, lane: requests.Session) -> None:
        lane.close()

    def send_payload(self, payload: ChatPayload, message: OutboundMessage, lane: requests.Session) -> str:
        target = payload.target
        if target.host:
            # Early and with a clear DNS error; the guard below is what holds at connect time.
            check_host(target.host, target.port, policy=self.address_policy)
        notifier = apprise.Apprise()
        notifier.add(target.service)
        token = _lane_session.set(lane)
        try:
            with guarded_connections(policy=self.address_policy) as guard:
                accepted = notifier.notify(body=payload.body, title=payload.title)
        finally:
            _lane_session.reset(token)
        if guard.refusal is not None:
            raise guard.refusal
        if not accepted:
            raise TransientChannelError(
                f"{target.service.url(privacy=True)} did not accept the message "
                "(Apprise does not report the reason; see the apprise log).",
                reason="chat_not_accepted",
            )
        return uuid.uuid4().hex
