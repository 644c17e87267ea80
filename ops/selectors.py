"""Readiness: is this deployment able to do its work right now? (``/readyz``)"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection

from . import conf
from .models import Heartbeat


@dataclass(frozen=True)
class Check:
    """One thing /readyz looks at. ``age_seconds`` for heartbeats (None: never seen), ``latency_ms``
    for connections; ``error`` says why a check is not ok."""

    name: str
    ok: bool
    age_seconds: float | None = None
    max_age_seconds: float | None = None
    latency_ms: float | None = None
    error: str = ""

    def as_json(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "name" and value not in (None, "")}


@dataclass(frozen=True)
class Readiness:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def _database() -> Check:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return Check("database", ok=False, error=f"{type(error).__name__}: {error}"[:300])
    return Check("database", ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2))


@functools.cache
def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def _redis(url: str) -> Check:
    import redis

    started = time.perf_counter()
    try:
        _redis_client(url).ping()
    except redis.RedisError as error:
        return Check("redis", ok=False, error=f"{type(error).__name__}: {error}"[:300])
    return Check("redis", ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2))


def _heartbeat(name: str, beats: dict[str, datetime | None], *, now: datetime, max_age: timedelta,
               database_ok: bool) -> Check:
    limit = max_age.total_seconds()
    if not database_ok:
        return Check(name, ok=False, max_age_seconds=limit, error="the database is not reachable")
    beat_at = beats.get(name)
    if beat_at is None:
        return Check(name, ok=False, max_age_seconds=limit, error="no heartbeat yet")
    age = max(0.0, (now - beat_at).total_seconds())
    error = "" if age <= limit else f"last heartbeat {age:.0f} s ago"
    return Check(name, ok=age <= limit, age_seconds=round(age, 1), max_age_seconds=limit, error=error)


def readiness(*, now: datetime) -> Readiness:
    """The database, Redis (when configured), the worker and scheduler heartbeats against their thresholds.

    Each check is independent: a failing one never hides another's state. Heartbeats need the
    database; when it is down they are reported not ok for that reason.
    """
    limits = conf.heartbeats()
    checks = [_database()]
    redis_url = getattr(settings, "REDIS_URL", "")
    if redis_url:
        checks.append(_redis(redis_url))
    beats: dict[str, datetime | None] = {}
    if checks[0].ok:
        try:
            beats = dict(Heartbeat.objects.values_list("name", "beat_at"))
        except DatabaseError as error:  # e.g. not migrated yet
            checks[0] = Check("database", ok=False, error=f"{type(error).__name__}: {error}"[:300])
    database_ok = checks[0].ok
    checks.append(_heartbeat(Heartbeat.WORKER, beats, now=now, max_age=limits.worker_max_age, database_ok=database_ok))
    checks.append(
        _heartbeat(Heartbeat.SCHEDULER, beats, now=now, max_age=limits.scheduler_max_age, database_ok=database_ok)
    )
    return Readiness(checks=checks)
