"""A per-channel send-rate limit shared by every worker process on every machine.

Adapters declare ``max_per_second`` (``channels_adapters.base.BaseChannel``); the caller paces
sends with::

    ratelimit.acquire(channel=adapter.alias, count=len(batch), rate=adapter.max_per_second)

which blocks until ``count`` sends fit. Time is cut into fixed one-second windows keyed by
``(channel, int(now))``; each window holds ``capacity(rate)`` sends. A ``count`` larger than one
window's capacity is granted in chunks over several windows.

Two shared stores, chosen by ``settings.REDIS_URL``:

* Redis: ``INCRBY signalbox:rate:<channel>:<second>`` (``EXPIRE 5``) in one pipeline; any excess
  over the capacity is given back with ``DECRBY``.
* The database (SQLite or PostgreSQL without Redis): one ``RateWindow`` row per window, created
  with an insert-ignore and taken from with a conditional ``UPDATE ... SET used = used + k
  WHERE used + k <= capacity``, so the database, not Python, decides who gets the tokens.

Call ``acquire`` outside ``transaction.atomic()``: on the database store the taken tokens must be
committed at once, or other workers would wait on (PostgreSQL) or not see (SQLite) them.

Fixed windows allow a burst of up to twice the rate across a window boundary; a fractional rate
is rounded down to whole sends per second, and a rate below one still allows one send a second.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

from django.conf import settings
from django.db.models import F

KEY_PREFIX = "signalbox:rate"
KEY_TTL_SECONDS = 5
KEEP_WINDOWS_SECONDS = 60
_CLEANUP_EVERY_SECONDS = 60.0

_last_cleanup: float = float("-inf")


def capacity(rate: float) -> int:
    """Sends allowed in one one-second window for ``rate`` per second (at least one)."""
    return max(1, math.floor(rate))


def acquire(
    *,
    channel: str,
    count: int,
    rate: float | None,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Block until ``count`` sends on ``channel`` fit within ``rate`` per second everywhere.

    ``rate`` ``None`` or ``<= 0`` means no limit. ``now``/``sleep`` are injectable for tests.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if rate is None or rate <= 0 or count == 0:
        return
    cap = capacity(rate)
    take = _take_redis if settings.REDIS_URL else _take_db
    remaining = count
    while True:
        current = now()
        window = int(current)
        remaining -= take(channel, window, min(remaining, cap), cap)
        if remaining <= 0:
            return
        # This window is full: wait for the next one and try again for the rest.
        sleep(max(0.0, (window + 1) - current))


# --- Redis ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url)


def redis_key(channel: str, window: int) -> str:
    return f"{KEY_PREFIX}:{channel}:{window}"


def take(*, bucket: str, window: int, count: int, cap: int, ttl: int = KEY_TTL_SECONDS) -> int:
    """Take up to ``count`` of ``cap`` tokens from ``bucket``'s ``window`` now, without waiting;
    returns how many were granted (the REST API's per-key limit asks for one, and answers 429
    when it gets none).

    The caller names the window: ``int(now) // 60 * 60`` is a one-minute window named by its first
    second, which the database store's clean-up (windows older than a minute) leaves alone while it
    is current. ``ttl`` is how long Redis keeps the window (at least its length).
    """
    take_now = _take_redis if settings.REDIS_URL else _take_db
    return take_now(bucket, window, count, cap, ttl=ttl) if count > 0 else 0


def _take_redis(channel: str, window: int, want: int, cap: int, *, ttl: int = KEY_TTL_SECONDS) -> int:
    """Take up to ``want`` tokens from the window; return how many were granted."""
    client = _redis_client(settings.REDIS_URL)
    key = redis_key(channel, window)
    pipe = client.pipeline()
    pipe.incrby(key, want)
    pipe.expire(key, ttl)
    total, _ = pipe.execute()
    excess = min(want, max(0, int(total) - cap))
    if excess:
        client.decrby(key, excess)
    return want - excess


# --- Database -------------------------------------------------------------------------------
def _take_db(channel: str, window: int, want: int, cap: int, *, ttl: int = KEY_TTL_SECONDS) -> int:
    from ..models import RateWindow

    _maybe_cleanup(window)
    RateWindow.objects.bulk_create([RateWindow(channel=channel, window=window, used=0)], ignore_conflicts=True)
    rows = RateWindow.objects.filter(channel=channel, window=window)
    if rows.filter(used__lte=cap - want).update(used=F("used") + want):
        return want
    # Not all of it fits: grant what is left. The read only picks a size; the conditional UPDATE
    # still decides, and a lost race just means reading again.
    while True:
        used = rows.values_list("used", flat=True).first()
        left = cap - (used or 0)
        if left <= 0:
            return 0
        k = min(left, want)
        if rows.filter(used__lte=cap - k).update(used=F("used") + k):
            return k


def _maybe_cleanup(window: int) -> None:
    """Now and then (once a minute per process) delete windows older than a minute."""
    global _last_cleanup
    if window - _last_cleanup < _CLEANUP_EVERY_SECONDS:
        return
    from ..models import RateWindow

    _last_cleanup = window
    RateWindow.objects.filter(window__lt=window - KEEP_WINDOWS_SECONDS).delete()
