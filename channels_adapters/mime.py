"""A fast serialiser for the one MIME shape Signalbox sends: text, optionally + HTML alternative.

The standard library's generator re-parses and re-folds every header of every message; for a
batch of identical-shaped mails that is most of the CPU time of a send. This writes the same
structure directly. It handles only what it can do exactly — plain-ASCII addresses and header
values (non-ASCII subjects are RFC 2047 encoded), no attachments — and returns ``None``
otherwise, so the caller falls back to Django's ``message().as_bytes()``.
"""

from __future__ import annotations

import quopri
import random
import re
import time
from email.header import Header
from email.utils import formatdate

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

MAX_LINE = 998
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
HEADER_LINE = 78
_boundaries = random.Random()


def _body_part(content: str, subtype: str) -> bytes:
    # SMTP forbids a bare CR or LF: every line ends in CRLF on the wire.
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if content.isascii() and all(len(line) <= MAX_LINE for line in content.splitlines()):
        encoding, body = "7bit", content.replace("\n", "\r\n").encode("ascii")
    else:
        encoding = "quoted-printable"
        body = quopri.encodestring(content.encode("utf-8")).replace(b"\n", b"\r\n")
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
    return head.encode("ascii") + body + (b"" if body.endswith(b"\r\n") else b"\r\n")


def _header(name: str, value: str) -> str | None:
    if "\n" in value or "\r" in value:
        return None  # let Django raise BadHeaderError
    if _CONTROL.search(value):
        return None  # control characters (tab, form feed...): the standard library's folding decides
    if not value.isascii():
        if name != "Subject":
            return None
        value = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    line = f"{name}: {value}"
    if len(line) > MAX_LINE:
        return None
    return line


def fast_alternative_bytes(email: EmailMultiAlternatives) -> bytes | None:
    """The wire bytes of ``email`` (CRLF line ends), or None when it needs Django's path."""
    if email.attachments or len(email.to) != 1 or email.cc or email.bcc or email.reply_to:
        return None
    alternatives = [(alt[0], alt[1]) for alt in getattr(email, "alternatives", [])]
    if any(mimetype != "text/html" for _, mimetype in alternatives) or len(alternatives) > 1:
        return None
    return alternative_bytes(
        subject=email.subject, text=email.body, html=alternatives[0][0] if alternatives else None,
        from_email=email.from_email, to=email.to[0], headers=email.extra_headers,
    )


_date = (0, "")  # (second, Date header value): one formatdate() a second, not one a message


def _date_now() -> str:
    global _date
    now = time.time()
    if int(now) != _date[0]:
        _date = (int(now), formatdate(now, localtime=settings.EMAIL_USE_LOCALTIME))
    return _date[1]


def alternative_bytes(*, subject: str, text: str, html: str | None, from_email: str, to: str, headers: dict) -> bytes | None:
    """The wire bytes of a text message, with ``html`` as its alternative when given, exactly as
    ``fast_alternative_bytes`` writes the same ``EmailMultiAlternatives``; None when it needs
    Django's path. ``headers`` (extra headers, ``Message-ID`` required) is not modified.

    For the pipeline's hot path: no ``EmailMessage`` object per message."""
    extra = dict(headers)
    fields = {
        "Subject": subject,
        "From": extra.pop("From", from_email),
        "To": extra.pop("To", to),
        "Date": extra.pop("Date") if "Date" in extra else _date_now(),
        "Message-ID": extra.pop("Message-ID"),
        **extra,
    }
    lines = []
    for name, value in fields.items():
        line = _header(name, str(value))
        if line is None:
            return None
        lines.append(line)
    lines.append("MIME-Version: 1.0")
    text_part = _body_part(text, "plain")
    if html is None:
        head, _, body = text_part.partition(b"\r\n\r\n")
        return ("\r\n".join(lines) + "\r\n").encode("ascii") + head + b"\r\n\r\n" + body
    # Unique, not secret: 128 bits from the process's PRNG (os.urandom is a syscall per message).
    boundary = f"=_signalbox_{_boundaries.getrandbits(128):032x}"
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    marker = f"--{boundary}\r\n".encode("ascii")
    return b"".join([
        ("\r\n".join(lines) + "\r\n\r\n").encode("ascii"),
        marker, text_part,
        marker, _body_part(html, "html"),
        f"--{boundary}--\r\n".encode("ascii"),
    ])
