"""Standard Webhooks signatures (https://www.standardwebhooks.com/): our own small signer.

The signed content is ``"{webhook-id}.{webhook-timestamp}.{body}"``; the signature is
``v1,<base64 HMAC-SHA256>`` keyed with the secret's base64-decoded bytes (after ``whsec_``).
Several signatures are separated by spaces (during a secret rotation both keys sign).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def secret_new() -> str:
    """A fresh secret: ``whsec_`` + base64 of 24 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(*, secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` sent as ``webhook_id`` at ``timestamp`` (seconds)."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(*, secrets_: list[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret in ``secrets_``."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret=s, webhook_id=webhook_id, timestamp=timestamp, body=body) for s in secrets_
        ),
        "content-type": "application/json",
    }
