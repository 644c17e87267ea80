"""Which triggers are active, cached in each process and reloaded when the trigger table changes.

Every change to a trigger moves ``TriggerState`` on (``trigger_state_bump``) in the same
transaction as the change. Before a receiver looks at its triggers it compares a small token with
the one its cached copy was loaded at, and reloads on a difference. That is what makes a trigger
enabled, edited or disabled in the admin take effect in every web and worker process on their
next save, with no restart and no cross-process messaging.

Where the token is read from (``SIGNALBOX_TRIGGER_VERSION_CHECK``):

``db``
    ``(version, changed_at)`` of the ``TriggerState`` row: one primary-key read per save. Exact
    under transactions: a connection sees its own uncommitted change and nobody else's.
``redis``
    A token in Redis (``REDIS_URL``), set to a fresh value after each change commits: one GET per
    save and no database round trip. If the key is missing (expired, Redis restarted) a token is
    derived from the database and written back; if Redis is unreachable the database is read.
    A thread that changed triggers in a transaction that has not ended yet checks the database,
    with a private copy, so it sees its own change and no other thread sees it before commit.
``auto`` (default)
    ``db``. Measured with ``bench/trigger_overhead.py`` on one machine (loopback services): a
    Redis GET costs about what the PostgreSQL read does (~0.07 vs ~0.1 ms idle, the same under
    load) and several times the SQLite read, so the exact, transactional database token wins.
    Choose ``redis`` to take the per-save read off a busy primary database.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import F, Field
from django.utils import timezone

from . import registry as reg
from .conditions import CompiledTrigger, TriggerConfigError, compile_trigger

logger = logging.getLogger(__name__)

REDIS_TOKEN_KEY = "signalbox:triggers:token"
# Tokens expire, after which each process re-derives one from the database and reloads once: a
# change whose token could not be published (Redis briefly down) is still picked up in time.
REDIS_TOKEN_TTL = 60
VERSION_SOURCES = ("auto", "db", "redis")


@dataclass(frozen=True)
class ActiveTriggers:
    """An immutable snapshot of the active triggers, as one process last loaded them."""

    db_token: Any = None
    redis_token: Any = None
    by_key: Mapping[tuple[str, str], tuple[CompiledTrigger, ...]] = field(default_factory=dict)
    # model label -> attname -> (field, values it must change to; None: any change)
    watched: Mapping[str, Mapping[str, tuple[Field | None, frozenset | None]]] = field(default_factory=dict)

    def for_signal(self, signal: str, model: str = "") -> tuple[CompiledTrigger, ...]:
        return self.by_key.get((signal, model), ())


_shared: ActiveTriggers | None = None
_local = threading.local()
_redis_client = None
_redis_failing = False


def version_source() -> str:
    """``db`` or ``redis``: where this process reads the trigger token (see the module docstring)."""
    source = getattr(settings, "SIGNALBOX_TRIGGER_VERSION_CHECK", "auto") or "auto"
    if source not in VERSION_SOURCES:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"SIGNALBOX_TRIGGER_VERSION_CHECK must be one of {', '.join(VERSION_SOURCES)}.")
    redis_url = getattr(settings, "REDIS_URL", "")
    if source == "auto":
        return "db"
    if source == "redis" and not redis_url:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SIGNALBOX_TRIGGER_VERSION_CHECK=redis needs REDIS_URL.")
    return source


def active_triggers() -> ActiveTriggers:
    """The active triggers, reloaded first if any process changed them since this one loaded."""
    global _shared
    if version_source() == "redis":
        if not _changed_here():
            snapshot = _via_redis()
            if snapshot is not None:
                return snapshot
        else:
            token = _db_token()
            mine = getattr(_local, "snapshot", None)
            if mine is None or mine.db_token != token:
                mine = _local.snapshot = _load(db_token=token)
            return mine
    token = _db_token()
    snapshot = _shared
    if snapshot is None or snapshot.db_token != token:
        snapshot = _shared = _load(db_token=token)
    return snapshot


def triggers_cache_clear() -> None:
    """Forget this process's copy (tests, or after restoring a database under a running process)."""
    global _shared
    _shared = None
    _local.__dict__.clear()


def trigger_state_bump(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Move the trigger version on, inside the caller's transaction.

    Processes compare against it on their next check, so they reload only once the change is
    committed (a rolled-back change moves nothing). With the Redis check, a fresh token is
    published after commit.
    """
    from ..models import TriggerState

    now = timezone.now()
    with transaction.atomic(using=using):
        first = TriggerState.objects.using(using).order_by("pk").values_list("pk", flat=True).first()
        if first is None:
            state, created = TriggerState.objects.using(using).get_or_create(
                pk=1, defaults={"version": 1, "changed_at": now}
            )
            first = None if created else state.pk
        if first is not None:
            TriggerState.objects.using(using).filter(pk=first).update(version=F("version") + 1, changed_at=now)
        if getattr(settings, "REDIS_URL", ""):
            # Published whatever this process's own check is, so processes configured to read
            # Redis are told even by one that reads the database.
            _local.changed = True
            transaction.on_commit(_publish_token, using=using, robust=True)


def _publish_token() -> None:
    import redis

    _local.changed = False
    _local.__dict__.pop("snapshot", None)
    try:
        _redis().set(REDIS_TOKEN_KEY, uuid.uuid4().hex, ex=REDIS_TOKEN_TTL)
    except redis.RedisError:
        logger.warning(
            "Could not publish the trigger token to Redis; other processes see the change once the "
            "old token expires (at most %d s).", REDIS_TOKEN_TTL, exc_info=True,
        )


def _changed_here() -> bool:
    """Whether this thread changed triggers in a transaction that has not ended yet."""
    if not getattr(_local, "changed", False):
        return False
    if not connections[DEFAULT_DB_ALIAS].in_atomic_block:
        # The transaction ended without its on_commit (rolled back): nothing to publish.
        _local.changed = False
        _local.__dict__.pop("snapshot", None)
        return False
    return True


def _redis():
    global _redis_client
    url = settings.REDIS_URL
    if _redis_client is None or _redis_client[0] != url:
        import redis

        # Short timeouts: a stalled Redis must not hold up a save for long (we fall back to the DB).
        _redis_client = (url, redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5))
    return _redis_client[1]


def _via_redis() -> ActiveTriggers | None:
    """The shared snapshot checked against the Redis token; ``None`` if Redis cannot be read."""
    global _shared, _redis_failing
    import redis

    try:
        client = _redis()
        token = client.get(REDIS_TOKEN_KEY)
        if token is None:
            # Redis lost the key: derive one from the database. NX, so a token published by a
            # change that committed meanwhile is never overwritten by this older one.
            client.set(REDIS_TOKEN_KEY, f"db:{_db_token()}", nx=True, ex=REDIS_TOKEN_TTL)
            token = client.get(REDIS_TOKEN_KEY)
    except redis.RedisError:
        if not _redis_failing:
            logger.warning("Redis unreachable for the trigger token; checking the database instead.", exc_info=True)
            _redis_failing = True
        return None
    _redis_failing = False
    snapshot = _shared
    if snapshot is None or snapshot.redis_token != token:
        snapshot = _shared = _load(redis_token=token)
    return snapshot


_token_sql: str | None = None


def _db_token() -> tuple | None:
    global _token_sql
    connection = connections[DEFAULT_DB_ALIAS]
    if _token_sql is None:
        from ..models import TriggerState

        quote = connection.ops.quote_name
        _token_sql = (
            f"SELECT {quote('version')}, {quote('changed_at')} FROM {quote(TriggerState._meta.db_table)} "
            f"ORDER BY {quote('id')} LIMIT 1"
        )
    with connection.cursor() as cursor:
        cursor.execute(_token_sql)
        row = cursor.fetchone()
    return tuple(row) if row else None


def _load(*, db_token: Any = None, redis_token: Any = None) -> ActiveTriggers:
    """Read and compile the active triggers and the journeys' bindings (three queries: the triggers,
    live journeys' entries, bound versions' goals and exits; a fourth, the audiences' rules, when a
    live journey enters from an audience). One that cannot be evaluated is logged."""
    from ..models import SignalTrigger

    by_key: dict[tuple[str, str], list[CompiledTrigger]] = defaultdict(list)
    watched: dict[str, dict[str, tuple[Field | None, frozenset | None]]] = defaultdict(dict)
    rows = SignalTrigger.objects.filter(is_active=True).order_by("pk").values(
        "id", "signal", "model", "events", "changed_field", "changed_to", "conditions"
    )
    compiled_rows = []
    for row in rows:
        try:
            compiled_rows.append(compile_trigger(row))
        except TriggerConfigError as exc:
            logger.warning("Signal trigger %s is active but cannot be evaluated: %s", row["id"], exc)
    from ..journeys.entry import compiled_journey_bindings

    # Journeys bind the same way (their signal entries, goals and exit conditions): one cache,
    # one token, one cheap check per save.
    compiled_rows.extend(compiled_journey_bindings())
    for compiled in compiled_rows:
        by_key[(compiled.signal, compiled.model)].append(compiled)
        if compiled.signal == reg.MODEL_POST_SAVE and compiled.changed_attname:
            targets: frozenset | None = None if compiled.changed_any else frozenset([compiled.changed_to])
            known = watched[compiled.model].get(compiled.changed_attname)
            if known is not None:
                targets = None if known[1] is None or targets is None else known[1] | targets
            watched[compiled.model][compiled.changed_attname] = (compiled.changed_model_field, targets)
    return ActiveTriggers(
        db_token=db_token,
        redis_token=redis_token,
        by_key={key: tuple(value) for key, value in by_key.items()},
        watched={label: dict(value) for label, value in watched.items()},
    )
