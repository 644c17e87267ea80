"""Email over Django's mail API: any ``EMAIL_BACKEND`` works, SMTP in production.

OPTIONS (all optional):

- ``backend``: dotted path of a Django mail backend; default ``settings.EMAIL_BACKEND``.
- ``connection``: keyword arguments for that backend, e.g. ``{"host": ..., "port": ...,
  "timeout": 10}``; unset values fall back to the ``EMAIL_*`` settings.
- ``from_email``: default ``settings.DEFAULT_FROM_EMAIL``.
- ``message_id_domain``: the right-hand side of Message-IDs; default the domain of
  ``from_email`` (avoids a slow reverse DNS lookup of the host name).

One connection is opened per batch (on its first valid message) and each message is sent with its own
``send_messages([msg])`` call, so a refused recipient fails only its own message.
"""

from __future__ import annotations

import smtplib
import socket
import uuid
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection, make_msgid
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.validators import validate_email

from .base import BaseChannel, OutboundMessage
from .mime import fast_alternative_bytes
from .errors import ChannelError, InvalidAddressError, PermanentChannelError, TransientChannelError, UnknownOutcomeError


class _Email(EmailMultiAlternatives):
    """Sets the MIME boundary up front.

    Without one, the standard library's generator invents a random boundary and compiles a
    regular expression per message to check the body does not contain it (about half a
    millisecond each). A random 128-bit boundary needs no such check.
    """

    def message(self, *args: Any, **kwargs: Any):
        msg = super().message(*args, **kwargs)
        if msg.is_multipart() and not msg.get_boundary():
            msg.set_boundary(f"=_signalbox_{uuid.uuid4().hex}")
        return msg


def smtp_error(error: smtplib.SMTPException | OSError) -> ChannelError:
    """Translate an SMTP failure: 4xx may be retried, 5xx never; no reply at all is transient.

    A dropped connection counts as "not accepted" (transient): SMTP only accepts a message with
    the reply to the final ".", which the client never saw.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        # One recipient per message, so there is one refusal.
        code, reply = next(iter(error.recipients.values()))
    elif isinstance(error, smtplib.SMTPResponseException):
        code, reply = error.smtp_code, error.smtp_error
    else:
        return TransientChannelError(f"SMTP connection failed: {error}", reason="smtp_connection")
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    text = f"SMTP {code} {reply}"
    if 500 <= code < 600:
        return PermanentChannelError(text, reason=f"smtp_{code}")
    return TransientChannelError(text, reason=f"smtp_{code}")


# The most of a message's end sent after the hand-off mark, in one write (see ``_send_smtp``).
FINAL_WRITE = 8192


class EmailChannel(BaseChannel):
    max_batch_size = 100

    def _smtp_fast_path_ok(self, message: OutboundMessage) -> bool:
        """Django's SMTP backend with plain-ASCII addresses: hand the bytes to smtplib directly.

        Django's ``_send`` re-parses both addresses for every message (``sanitize_address``);
        ours were validated in ``normalise_address`` and the sender once per batch, so that
        work is skipped. Non-ASCII addresses (IDNA, SMTPUTF8) keep Django's full path.
        """
        return (
            isinstance(self._connection, SMTPBackend)
            and getattr(self._connection, "connection", None) is not None
            and message.address.isascii()
            and self._envelope_from is not None
        )

    def _send_smtp(self, payload: EmailMultiAlternatives, message: OutboundMessage) -> None:
        """One SMTP transaction in two phases around ``handoff``.

        MAIL, RCPT and DATA go first (and for a big message most of its body); the server
        discards a DATA section that never gets its final ".", so a crash before ``handoff``
        cannot deliver anything. ``handoff`` durably records "about to commit"; then the rest
        of the message and the final "." go out in one write. A crash after that leaves a
        delivery the recovery treats as sent, since the server has it. Only a crash inside that
        one write (microseconds; it lands in the kernel's socket buffer) could lose a message.
        """
        smtp = self._connection.connection
        if not getattr(smtp, "_signalbox_nodelay", False):
            # The final "." goes out as its own small write; without TCP_NODELAY, Nagle's
            # algorithm holds it for the server's delayed ACK (~40 ms a message).
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp._signalbox_nodelay = True
        raw = fast_alternative_bytes(payload) or payload.message().as_bytes(linesep="\r\n")
        smtp.ehlo_or_helo_if_needed()
        # Both addresses were validated already (the sender once per batch, the recipient by
        # ``normalise_address``) and are plain ASCII here: send them as they are, without
        # smtplib's per-command address parsing (``quoteaddr``).
        smtp.putcmd("mail", f"FROM:<{self._envelope_from}>")
        code, reply = smtp.getreply()
        if code != 250:
            smtp.rset()
            raise smtplib.SMTPSenderRefused(code, reply, self._envelope_from)
        smtp.putcmd("rcpt", f"TO:<{message.address}>")
        code, reply = smtp.getreply()
        if code not in (250, 251):
            smtp.rset()
            raise smtplib.SMTPRecipientsRefused({message.address: (code, reply)})
        code, reply = smtp.docmd("data")
        if code != 354:
            smtp.rset()
            raise smtplib.SMTPDataError(code, reply)
        body = smtplib._quote_periods(raw)  # the dot-stuffing smtplib.data() applies
        body = body if body.endswith(b"\r\n") else body + b"\r\n"
        # The end of the message goes out in one write with the final "." right after the mark.
        # A small message is that one write (the server reads it in one go); of a big one, all
        # but the last few kilobytes go first, so the step after the mark stays one short write.
        head, tail = (body[:-FINAL_WRITE], body[-FINAL_WRITE:]) if len(body) > 4 * FINAL_WRITE else (b"", body)
        if head:
            smtp.send(head)
        collect = None
        if self.handoff is not None:
            collect = self.handoff(message.delivery_id, payload.extra_headers["Message-ID"].strip("<>"))
        smtp.send(tail + b".\r\n")
        if collect is not None:
            collect()
        try:
            code, reply = smtp.getreply()
        except (smtplib.SMTPException, OSError) as error:
            raise UnknownOutcomeError(
                f"The server received the whole message but its reply was lost: {error}", reason="smtp_no_reply"
            ) from error
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

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
        self._connection = None
        self._connected = False
        self._connect_error: TransientChannelError | None = None
        envelope = parseaddr(self.from_email)[1]
        self._envelope_from = envelope if envelope and envelope.isascii() else None

    def open(self) -> None:
        # fail_silently=False: a swallowed SMTP error would be recorded as "sent".
        self._connection = get_connection(backend=self.backend, fail_silently=False, **self.connection_options)
        self._connected = False
        self._connect_error = None

    def _connect(self) -> None:
        """Connect on the first message that needs it: a batch of invalid addresses never
        touches the server, and a failed connect is not retried for every message."""
        if self._connect_error is not None:
            raise self._connect_error
        if self._connected:
            return
        try:
            self._connection.open()
        except (smtplib.SMTPException, OSError) as error:
            # Whatever the reply, nothing was sent; a misconfigured server is fixed, then retried.
            self._connect_error = TransientChannelError(
                f"Could not open the mail connection: {error}", reason="smtp_connect"
            )
            raise self._connect_error from error
        self._connected = True

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and self._connected:
            try:
                connection.close()
            except (smtplib.SMTPException, OSError):
                # Every message already has its result; a failed QUIT changes none of them.
                pass

    def normalise_address(self, address: str) -> str:
        address = address.strip()
        try:
            validate_email(address)
        except ValidationError as error:
            raise InvalidAddressError(f"Not a valid email address: {address!r}.") from error
        return address

    def build_payload(self, message: OutboundMessage) -> EmailMultiAlternatives:
        headers = dict(message.headers)
        headers["Message-ID"] = make_msgid(domain=self.message_id_domain)
        unsubscribe_url = message.metadata.get("unsubscribe_url")
        if message.metadata.get("category_kind") == "marketing" and unsubscribe_url:
            # RFC 8058 one-click unsubscribe.
            headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email = _Email(
            subject=message.subject,
            body=message.text,
            from_email=self.from_email,
            to=[message.address],
            headers=headers,
            connection=self._connection,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        return email

    def send_payload(self, payload: EmailMultiAlternatives, message: OutboundMessage) -> str:
        self._connect()
        try:
            if self._smtp_fast_path_ok(message):
                self._send_smtp(payload, message)
                return payload.extra_headers["Message-ID"].strip("<>")
            sent = self._connection.send_messages([payload])
        except BadHeaderError as error:
            raise PermanentChannelError(f"Header contains a newline: {error}", reason="bad_header") from error
        except UnknownOutcomeError:
            raise
        except (smtplib.SMTPException, OSError) as error:
            raise smtp_error(error) from error
        if not sent:
            raise TransientChannelError("The mail backend did not accept the message.", reason="not_accepted")
        return payload.extra_headers["Message-ID"].strip("<>")
