"""Server keys: made, checked, revoked, rate-limited. The admin and the API call only these.

A key reads ``sbk_<prefix>_<secret>``. The prefix (public, unique) finds the row in one indexed
lookup; the SHA-256 of the whole key is compared in constant time. Only the hash is stored, so
the key is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.ledger import ratelimit
from notifications.services import audit_record

from .models import ApiKey, Scope

KEY_MARK = "sbk"
# last_used_at is written at most once a minute per key: a busy key costs no UPDATE per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)
RATE_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class MadeKey:
    key: ApiKey
    secret: str  # the whole key, shown once


class KeyRefused(Exception):
    """No such key, a malformed one, or a revoked one: 401, the same answer for each."""


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Rate limit reached; retry after {retry_after} s.")
        self.retry_after = retry_after


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, name: str, scopes: list[str], rate_limit_per_minute: int = 600, actor=None) -> MadeKey:
    """A new key with ``scopes`` (values of ``Scope``; an unknown one is a ``ValueError``). Audited."""
    unknown = set(scopes) - set(Scope.values)
    if unknown:
        raise ValueError(f"Unknown scope(s): {', '.join(sorted(unknown))}.")
    prefix = secrets.token_hex(6)
    secret = f"{KEY_MARK}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name, prefix=prefix, secret_hash=_hash(secret), scopes=sorted(set(scopes)),
            rate_limit_per_minute=rate_limit_per_minute, created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit_record(actor=actor, action="apikey.create", target=key,
                     changes={"scopes": key.scopes, "rate_limit_per_minute": rate_limit_per_minute})
    return MadeKey(key=key, secret=secret)


def api_key_revoke(*, key: ApiKey, actor=None) -> bool:
    """Revoke ``key`` (it answers 401 from now on); False if it already was. Audited."""
    with transaction.atomic():
        changed = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if changed:
            audit_record(actor=actor, action="apikey.revoke", target=key)
    return bool(changed)


def api_key_authenticate(secret: str) -> ApiKey:
    """The active key ``secret`` names, or ``KeyRefused``."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_MARK or not parts[1] or len(secret) > 200:
        raise KeyRefused
    key = ApiKey.objects.filter(prefix=parts[1]).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(secret)) or key.revoked_at is not None:
        raise KeyRefused
    return key


def api_key_touch(*, key: ApiKey, now=None) -> None:
    """Note that ``key`` was used: only when the recorded time is older than a minute, and with a
    conditional UPDATE, so concurrent calls write it once."""
    now = now or timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    key.last_used_at = now


def api_key_throttle(*, key: ApiKey, now: float | None = None) -> None:
    """Count one call against ``key``'s limit (fixed one-minute windows shared by every process,
    ``notifications.ledger.ratelimit``); over it, ``RateLimited`` with the seconds to wait."""
    current = time.time() if now is None else now
    window = int(current) // RATE_WINDOW_SECONDS * RATE_WINDOW_SECONDS
    granted = ratelimit.take(bucket=f"api:{key.prefix}", window=window, count=1,
                             cap=max(1, key.rate_limit_per_minute), ttl=RATE_WINDOW_SECONDS + 5)
    if not granted:
        raise RateLimited(retry_after=max(1, window + RATE_WINDOW_SECONDS - int(current)))


def api_key_refusal_record(*, key: ApiKey, method: str, path: str, now=None) -> None:
    """Audit a call refused for ``key``'s rate limit, cheaply: one ``api.rate_limited`` entry per
    key per minute, whose ``count`` each later refusal in that minute raises with one UPDATE
    (an INSERT only for the minute's first). A key hammering past its limit thus adds one row a
    minute, not one a call. Two first refusals racing may make two rows for one minute; each
    refusal still adds exactly one to one of them, so the counts add up."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from django.db.models.expressions import RawSQL

    from notifications.models import AuditEntry

    now = now or timezone.now()
    start = now.replace(second=now.second - now.second % RATE_WINDOW_SECONDS, microsecond=0)
    if connection.vendor == "postgresql":
        bump = RawSQL("jsonb_set(changes, '{count}', to_jsonb(COALESCE((changes->>'count')::int, 0) + 1))", [])
    else:
        bump = RawSQL("json_set(changes, '$.count', COALESCE(json_extract(changes, '$.count'), 0) + 1)", [])
    rows = AuditEntry.objects.filter(
        action="api.rate_limited", created_at__gte=start, created_at__lt=start + timedelta(seconds=RATE_WINDOW_SECONDS),
        target_type=ContentType.objects.get_for_model(ApiKey), target_id=str(key.pk),
    )
    if not rows.update(changes=bump):
        audit_record(actor=f"API key {key}", action="api.rate_limited", target=key,
                     changes={"status": 429, "count": 1, "minute": start.isoformat(), "method": method,
                              "path": path[:200]})
