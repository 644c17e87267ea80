"""Short-lived signed tokens a server mints for one of its users, for that user's app to call the
recipient-facing endpoints (``/api/v1/me/...``) without a session.

``sbr_<signed JSON>``: the user id and an expiry, signed with ``SECRET_KEY`` (Django's signing,
HMAC-SHA256, salted for this use). Nothing is stored: a token dies at its expiry, or earlier when
the user is deactivated or ``SECRET_KEY`` rotates.
"""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core import signing

MARK = "sbr_"
SALT = "signalbox.api.recipient-token"
DEFAULT_TTL_SECONDS = 900
MAX_TTL_SECONDS = 3600


class TokenRefused(Exception):
    """Tampered, expired, malformed, or for a user who no longer may sign in."""


def recipient_token_mint(*, user, ttl_seconds: int = DEFAULT_TTL_SECONDS, now: float | None = None) -> tuple[str, int]:
    """A token for ``user`` valid ``ttl_seconds`` (1..3600); returns it and its expiry (Unix time)."""
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}.")
    expires = int(now if now is not None else time.time()) + ttl_seconds
    return MARK + signing.dumps({"u": user.pk, "e": expires}, salt=SALT), expires


def recipient_token_user(token: str, *, now: float | None = None):
    """The active user ``token`` speaks for, or ``TokenRefused``."""
    if not token.startswith(MARK) or len(token) > 500:
        raise TokenRefused
    try:
        payload = signing.loads(token[len(MARK):], salt=SALT)
    except signing.BadSignature as exc:
        raise TokenRefused from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("u"), int) or not isinstance(payload.get("e"), int):
        raise TokenRefused
    if payload["e"] <= (now if now is not None else time.time()):
        raise TokenRefused
    user = get_user_model()._default_manager.filter(pk=payload["u"], is_active=True).first()
    if user is None:
        raise TokenRefused
    return user
