"""Short-lived signed tokens a server mints for one of its users, for that user's app to call the
recipient-facing endpoints (``/api/v1/me/...``) without a session.

``sbr_<signed JSON>``: the user id, an expiry and the API key that minted it, signed with
``SECRET_KEY`` (Django's signing, HMAC-SHA256, salted for this use). Nothing is stored: a token
dies at its expiry, or earlier when the user is deactivated or made staff, the minting key is
revoked, or ``SECRET_KEY`` rotates.
"""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core import signing
from django.db.models import Exists

MARK = "sbr_"
SALT = "signalbox.api.recipient-token"
DEFAULT_TTL_SECONDS = 900
MAX_TTL_SECONDS = 3600


class TokenRefused(Exception):
    """Tampered, expired, malformed, or for a user who no longer may sign in."""


def recipient_token_mint(*, user, key=None, ttl_seconds: int = DEFAULT_TTL_SECONDS,
                         now: float | None = None) -> tuple[str, int]:
    """A token for ``user`` valid ``ttl_seconds`` (1..3600), and only while ``key`` (the API key
    that asked for it, if any) is not revoked; returns it and its expiry (Unix time)."""
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}.")
    expires = int(now if now is not None else time.time()) + ttl_seconds
    payload = {"u": user.pk, "e": expires, **({"k": key.pk} if key is not None else {})}
    return MARK + signing.dumps(payload, salt=SALT), expires


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
    if payload["e"] <= (now if now is not None else time.time()) or not isinstance(payload.get("k", 0), int):
        raise TokenRefused
    # Staff are refused as at minting (the API speaks for customers), in the same one query as the
    # minting key's revocation.
    users = get_user_model()._default_manager.filter(pk=payload["u"], is_active=True, is_staff=False,
                                                     is_superuser=False)
    if "k" in payload:
        from .models import ApiKey

        users = users.filter(Exists(ApiKey.objects.filter(pk=payload["k"], revoked_at__isnull=True)))
    user = users.first()
    if user is None:
        raise TokenRefused
    return user
