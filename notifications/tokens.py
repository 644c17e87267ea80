"""Signed, tamper-proof tokens for links that arrive without a session (mail, SMS).

Each purpose has its own salt, so a token minted for one purpose (an open pixel) is rejected
by every other (unsubscribe). Tokens carry only an integer id, base64-encoded and signed with
HMAC-SHA256 under ``SECRET_KEY`` (``SECRET_KEY_FALLBACKS`` keeps old mail working after a
rotation).

* unsubscribe / open / click: no expiry. Mail is read years after it was sent, and the link
  only ever acts on the one delivery (or stored link) it names.
* preferences: expires after ``PREFERENCES_MAX_AGE``, because it opens a page that changes a
  person's choices for every category, not just one message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.core import signing

PREFERENCES_MAX_AGE = timedelta(days=90)

_UNSUBSCRIBE = "signalbox.unsubscribe"
_PREFERENCES = "signalbox.preferences"
_OPEN = "signalbox.open"
_CLICK = "signalbox.click"


class BadToken(ValueError):
    """The token was tampered with, has expired, or was made for another purpose."""


@lru_cache(maxsize=16)
def _signing_hmac(salt: str, secret: str) -> hmac.HMAC:
    # Django's salted_hmac derives the HMAC key from the salt and the secret; derive it once, and
    # key the HMAC once: each token then costs a copy of it (the key's pads already absorbed).
    key = hashlib.sha256(f"{salt}signer{secret}".encode()).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


def _signature(value: str, *, salt: str) -> str:
    mac = _signing_hmac(salt, settings.SECRET_KEY).copy()
    mac.update(value.encode())
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def _payload(value: int) -> str:
    # sign_object's JSON of an int is its digits; base64 without padding.
    return base64.urlsafe_b64encode(str(int(value)).encode()).rstrip(b"=").decode()


def _sign(value: int, *, salt: str) -> str:
    """``Signer(salt=salt).sign_object(value, compress=False)``, without its per-call set-up.

    Every sent email carries at least two tokens (open pixel, unsubscribe), so signing is on the
    send path. The output is byte for byte Django's (a test holds this), so ``_unsign`` and
    ``SECRET_KEY_FALLBACKS`` keep working unchanged.
    """
    payload = _payload(value)
    return f"{payload}:{_signature(payload, salt=salt)}"


def _sign_timestamped(value: int, *, salt: str) -> str:
    """``TimestampSigner(salt=salt).sign_object(value, compress=False)`` the same way: byte for
    byte Django's at the same second (``value:timestamp:signature``)."""
    signed = f"{_payload(value)}:{_timestamp(int(time.time()))}"
    return f"{signed}:{_signature(signed, salt=salt)}"


@lru_cache(maxsize=4)
def _timestamp(seconds: int) -> str:
    return signing.b62_encode(seconds)


def _unsign(token: str, *, salt: str) -> int:
    try:
        value = signing.Signer(salt=salt).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadToken("Invalid token.") from exc
    return _as_id(value)


def _as_id(value: object) -> int:
    # bool is an int subclass; a signed ``true`` is not an id.
    if type(value) is not int or value <= 0:
        raise BadToken("Invalid token.")
    return value


def unsubscribe_token(delivery_id: int) -> str:
    return _sign(delivery_id, salt=_UNSUBSCRIBE)


def read_unsubscribe_token(token: str) -> int:
    """The delivery id in an unsubscribe token, or ``BadToken``."""
    return _unsign(token, salt=_UNSUBSCRIBE)


def open_token(delivery_id: int) -> str:
    return _sign(delivery_id, salt=_OPEN)


def read_open_token(token: str) -> int:
    """The delivery id in an open-pixel token, or ``BadToken``."""
    return _unsign(token, salt=_OPEN)


def click_token(link_id: int) -> str:
    return _sign(link_id, salt=_CLICK)


def read_click_token(token: str) -> int:
    """The ``TrackedLink`` id in a click token, or ``BadToken``."""
    return _unsign(token, salt=_CLICK)


def preferences_token(user_id: int) -> str:
    return _sign_timestamped(user_id, salt=_PREFERENCES)


def read_preferences_token(token: str, *, max_age: timedelta = PREFERENCES_MAX_AGE) -> int:
    """The user id in a preference-centre token no older than ``max_age``, or ``BadToken``."""
    try:
        value = signing.TimestampSigner(salt=_PREFERENCES).unsign_object(token, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError, UnicodeDecodeError) as exc:
        # SignatureExpired is a BadSignature.
        raise BadToken("Invalid or expired token.") from exc
    return _as_id(value)
