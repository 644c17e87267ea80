"""One SMTP transaction on an open ``smtplib`` connection, pipelined when the server allows.

``smtp_transaction`` sends one message to one recipient. With PIPELINING (RFC 2920) offered,
MAIL FROM, RCPT TO and DATA go out in one write and their three replies are read afterwards
(DATA may end a pipelined group; the message itself waits for its 354), so a message costs two
round trips; without it, four, as ``smtplib.sendmail`` does. A server discards a DATA section
that never got its final ".", so nothing is delivered before the last write; the reply to that
write is what accepts the message.
"""

from __future__ import annotations

import smtplib

from .errors import ChannelError, PermanentChannelError, TransientChannelError, UnknownOutcomeError


def smtp_error(error: smtplib.SMTPException | OSError) -> ChannelError:
    """Translate an SMTP failure: 4xx may be retried, 5xx never; no reply at all is transient.

    A dropped connection counts as "not accepted" (transient): SMTP only accepts a message with
    the reply to the final ".", which the client never saw (``smtp_transaction`` raises
    ``UnknownOutcomeError`` itself when the connection drops after that ".").
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


def _reset(smtp: smtplib.SMTP) -> None:
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError):
        pass  # the caller raises the refusal; a broken connection shows on the next command


def smtp_transaction(smtp: smtplib.SMTP, *, sender: str, recipient: str, raw: bytes) -> None:
    """Send ``raw`` (CRLF line ends, not yet dot-stuffed) from ``sender`` to ``recipient``.

    Both addresses are plain ASCII and already validated; they go out as they are, without
    smtplib's per-command parsing. Raises ``smtplib`` exceptions for refusals and
    ``UnknownOutcomeError`` when the final "." went out but its reply never came.
    """
    smtp.ehlo_or_helo_if_needed()
    mail_cmd, rcpt_cmd = f"MAIL FROM:<{sender}>\r\n", f"RCPT TO:<{recipient}>\r\n"
    if smtp.does_esmtp and smtp.has_extn("pipelining"):
        smtp.send(f"{mail_cmd}{rcpt_cmd}DATA\r\n")
        mail, rcpt, data = smtp.getreply(), smtp.getreply(), smtp.getreply()
        if data[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
            # The server took DATA although the envelope failed: end the empty message at once.
            smtp.send(b".\r\n")
            smtp.getreply()
    else:
        smtp.send(mail_cmd)
        mail = smtp.getreply()
        rcpt = data = (0, b"")
        if mail[0] == 250:
            smtp.send(rcpt_cmd)
            rcpt = smtp.getreply()
            if rcpt[0] in (250, 251):
                smtp.send("DATA\r\n")
                data = smtp.getreply()
    if mail[0] != 250:
        _reset(smtp)
        raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
    if rcpt[0] not in (250, 251):
        _reset(smtp)
        raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
    if data[0] != 354:
        _reset(smtp)
        raise smtplib.SMTPDataError(*data)
    body = smtplib._quote_periods(raw)  # the dot-stuffing smtplib.data() applies
    smtp.send(body + (b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"))
    try:
        code, reply = smtp.getreply()
    except (smtplib.SMTPException, OSError) as error:
        raise UnknownOutcomeError(
            f"The server received the whole message but its reply was lost: {error}", reason="smtp_no_reply"
        ) from error
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)
