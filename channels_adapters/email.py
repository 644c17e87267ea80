"""Email over Django's mail API: any ``EMAIL_BACKEND`` works, SMTP in production.

OPTIONS (all optional):

- ``backend``: dotted path of a Django mail backend; default ``settings.EMAIL_BACKEND``.
- ``connection``: keyword arguments for that backend, e.g. ``{"host": ..., "port": ...,
  "timeout": 10}`` for SMTP or ``{"api_key": ..., "api_url": ...}`` for an anymail ESP; unset
  values fall back to the ``EMAIL_*`` / ``ANYMAIL`` settings.
- ``from_email``: default ``settings.DEFAULT_FROM_EMAIL``.
- ``message_id_domain``: the right-hand side of Message-IDs; default the domain of
  ``from_email`` (avoids a slow reverse DNS lookup of the host name).
- ``concurrency``: connections per batch (default 20, Postfix's default per-destination
  concurrency; listmonk's pool defaults to 10). Lower it for a relay that limits connections.

Each lane of a batch owns one backend connection (one SMTP session, one ESP HTTP session),
opened on its first message, and sends its messages one ``send_messages([msg])`` at a time, so
a refused recipient fails only its own message. Lanes are threads, each with its own
``smtplib`` connection: smtplib blocks on the socket with the GIL released, no new dependency
is needed (aiosmtplib would be one), and every connection stays a plain Django mail backend, so
anymail ESPs and any other backend get the same pool.

SMTP (Django's SMTP backend, plain-ASCII addresses) takes a fast path: the message is
serialised once in the calling thread and the lane speaks the transaction itself. When the
server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA leave in one write and their replies
are read together, so a message costs two round trips instead of four.

ESPs through anymail: one API request per message over the lane's kept-alive session. Batch
sending (one request for many recipients with ``merge_data``) does not apply: every message
carries per-recipient content and links (open pixel, click links, unsubscribe URL) that the
pipeline renders, not the ESP. The provider id is the ESP's message id (its tracking webhooks
name it); anymail exposes no idempotency key for any ESP, so a re-send carries the same
Message-ID header and nothing more.

Message-ID: derived from the delivery's ``idempotency_key``, so every attempt of one delivery
(a re-send after a crash under an ``at_least_once`` category) carries the same one.
"""

from __future__ import annotations

import smtplib
import socket
import threading
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection, make_msgid
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.validators import validate_email

from .base import BaseChannel, OutboundMessage
from .errors import ChannelError, InvalidAddressError, PermanentChannelError, TransientChannelError, UnknownOutcomeError
from .features import EMAIL
from .http import nothing_was_sent
from .mime import alternative_bytes
from .smtp import smtp_error, smtp_transaction


@dataclass
class EmailPayload:
    email: EmailMultiAlternatives | None  # None on the SMTP fast path (``raw`` is all it needs)
    message_id: str  # without <>
    raw: bytes | None  # the wire bytes for the SMTP fast path, else None


@dataclass
class EmailLane:
    """One lane's backend connection; ``connected`` once it is open."""

    backend: Any
    connected: bool = False


def esp_error(error: Exception) -> ChannelError:
    """Translate an anymail failure by what it says about the message.

    No connection: transient. A request that may have left without an answer: unknown. An HTTP
    error reply: 429/5xx and 401/403 (credentials get fixed, then retried) transient, any other
    4xx permanent. Refused recipients and anything else anymail refuses before sending: permanent.
    """
    from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused

    status = getattr(error, "status_code", None)
    text = f"{type(error).__name__}: {str(error)[:500]}"
    if isinstance(error, AnymailRecipientsRefused):
        return PermanentChannelError(text, reason="esp_rejected")
    if status is None and isinstance(error, OSError):  # a requests exception inside anymail's
        if nothing_was_sent(error):
            return TransientChannelError(text, reason="esp_connect")
        return UnknownOutcomeError(text, reason="esp_no_reply")
    if status is not None:
        if status == 429 or status >= 500 or status in (401, 403):
            return TransientChannelError(text, reason=f"esp_http_{status}")
        if 400 <= status < 500:
            return PermanentChannelError(text, reason=f"esp_http_{status}")
        # A success status whose body anymail could not read: accepted, id unknown.
        return UnknownOutcomeError(text, reason="esp_bad_reply")
    if isinstance(error, AnymailAPIError):
        return UnknownOutcomeError(text, reason="esp_bad_reply")
    return PermanentChannelError(text, reason="esp_refused")


class EmailChannel(BaseChannel):
    # A batch keeps its lanes' connections for its whole length: larger batches pay the
    # connect/EHLO round trips and the claim's queries less often.
    max_batch_size = 500
    features = EMAIL

    def __init__(
        self,
        alias: str,
        *,
        backend: str | None = None,
        connection: dict[str, Any] | None = None,
        from_email: str | None = None,
        message_id_domain: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        self.backend = backend
        self.connection_options = dict(connection or {})
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        self.message_id_domain = message_id_domain or parseaddr(self.from_email)[1].rpartition("@")[2] or None
        envelope = parseaddr(self.from_email)[1]
        self._envelope_from = envelope if envelope and envelope.isascii() else None
        self._smtp = False
        self._connect_error: TransientChannelError | None = None
        self._lock = threading.Lock()

    def _backend(self):
        # fail_silently=False: a swallowed error would be recorded as "sent".
        return get_connection(backend=self.backend, fail_silently=False, **self.connection_options)

    def open(self) -> None:
        self._smtp = isinstance(self._backend(), SMTPBackend)
        self._connect_error = None

    def close(self) -> None:
        self._connect_error = None

    def open_lane(self) -> EmailLane:
        return EmailLane(self._backend())

    def close_lane(self, lane: EmailLane) -> None:
        if lane.connected:
            try:
                lane.backend.close()
            except (smtplib.SMTPException, OSError):
                # Every message already has its outcome; a failed QUIT changes none of them.
                pass

    def _connect(self, lane: EmailLane) -> None:
        """Connect a lane on the first message that needs it: a batch of invalid addresses never
        touches the server, and once one lane failed to connect the others do not try again
        for every message of this batch."""
        if lane.connected:
            return
        if self._connect_error is not None:
            raise self._connect_error
        try:
            lane.backend.open()
        except (smtplib.SMTPException, OSError) as error:
            # Whatever the reply, nothing was sent; a misconfigured server is fixed, then retried.
            with self._lock:
                self._connect_error = self._connect_error or TransientChannelError(
                    f"Could not open the mail connection: {error}", reason="smtp_connect"
                )
            raise self._connect_error from error
        lane.connected = True
        smtp = getattr(lane.backend, "connection", None)
        if smtp is not None and getattr(smtp, "sock", None) is not None:
            # Replies are small and each write waits for one: never hold a write for an ACK.
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _drop(self, lane: EmailLane) -> None:
        """Forget a connection that failed mid-transaction; the lane's next message reconnects."""
        self.close_lane(lane)
        lane.connected = False
        lane.backend = self._backend()

    def normalise_address(self, address: str) -> str:
        address = address.strip()
        try:
            validate_email(address)
        except ValidationError as error:
            raise InvalidAddressError(f"Not a valid email address: {address!r}.") from error
        return address

    def message_id(self, message: OutboundMessage) -> str:
        """``<key@domain>`` for a message with an idempotency key: the same on every attempt."""
        if message.idempotency_key:
            return f"<{message.idempotency_key}@{self.message_id_domain or 'signalbox'}>"
        return make_msgid(domain=self.message_id_domain)

    def build_payload(self, message: OutboundMessage) -> EmailPayload:
        headers = dict(message.headers)
        headers["Message-ID"] = self.message_id(message)
        unsubscribe_url = message.metadata.get("unsubscribe_url")
        if message.metadata.get("category_kind") == "marketing" and unsubscribe_url:
            # RFC 8058 one-click unsubscribe.
            headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if self._smtp and self._envelope_from is not None and message.address.isascii():
            # Django's SMTP backend would re-parse both addresses per message (validated already:
            # the sender once per batch, the recipient by ``normalise_address``) and serialise
            # through the standard library's generator; do both once, here, without building
            # an ``EmailMessage`` unless the message needs Django's path.
            raw = alternative_bytes(
                subject=message.subject, text=message.text, html=message.html or None, from_email=self.from_email,
                to=message.address, headers=headers,
            )
            if raw is not None:
                return EmailPayload(email=None, message_id=headers["Message-ID"].strip("<>"), raw=raw)
        email = EmailMultiAlternatives(
            subject=message.subject, body=message.text, from_email=self.from_email, to=[message.address], headers=headers,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        raw = None
        if self._smtp and self._envelope_from is not None and message.address.isascii():
            try:
                raw = email.message().as_bytes(linesep="\r\n")
            except BadHeaderError as error:
                raise PermanentChannelError(f"Header contains a newline: {error}", reason="bad_header") from error
        return EmailPayload(email=email, message_id=headers["Message-ID"].strip("<>"), raw=raw)

    def send_payload(self, payload: EmailPayload, message: OutboundMessage, lane: EmailLane) -> str:
        self._connect(lane)
        if payload.raw is not None:
            smtp = lane.backend.connection
            try:
                smtp_transaction(smtp, sender=self._envelope_from, recipient=message.address, raw=payload.raw)
            except UnknownOutcomeError:
                self._drop(lane)
                raise
            except smtplib.SMTPResponseException as error:
                if error.smtp_code == 421:  # the server is closing this session
                    self._drop(lane)
                raise smtp_error(error) from error
            except (smtplib.SMTPException, OSError) as error:
                if not isinstance(error, smtplib.SMTPRecipientsRefused):
                    self._drop(lane)
                raise smtp_error(error) from error
            return payload.message_id
        payload.email.connection = lane.backend
        try:
            sent = lane.backend.send_messages([payload.email])
        except BadHeaderError as error:
            raise PermanentChannelError(f"Header contains a newline: {error}", reason="bad_header") from error
        except (smtplib.SMTPException, OSError) as error:
            if _is_anymail(error):
                raise esp_error(error) from error
            if not isinstance(error, smtplib.SMTPRecipientsRefused):
                self._drop(lane)
            raise smtp_error(error) from error
        except Exception as error:
            if _is_anymail(error):
                raise esp_error(error) from error
            raise
        if not sent:
            raise TransientChannelError("The mail backend did not accept the message.", reason="not_accepted")
        status = getattr(payload.email, "anymail_status", None)
        esp_id = getattr(status, "message_id", None) if status is not None else None
        return str(esp_id) if isinstance(esp_id, str) and esp_id else payload.message_id


def _is_anymail(error: Exception) -> bool:
    return type(error).__module__.startswith("anymail.") or any(
        cls.__module__.startswith("anymail.") for cls in type(error).__mro__
    )
