"""The shared per-channel send-rate limit (``notifications.ledger.ratelimit``).

Every test runs on the database store; with REDIS_URL set (CI's live stage) each also runs on
Redis. Time is a fake clock: nothing here reads or asserts on the wall clock.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Sum

from notifications.ledger import ratelimit
from notifications.models import RateWindow

BACKENDS = ["db"] + (["redis"] if django_settings.REDIS_URL else [])

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


class FakeClock:
    """``now``/``sleep`` for ``acquire``: sleeping moves the clock on by exactly that long."""

    def __init__(self, start: float) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@pytest.fixture(params=BACKENDS)
def backend(request, settings):
    """The store under test: "db" (REDIS_URL cleared) or "redis"."""
    if request.param == "db":
        settings.REDIS_URL = ""
    return request.param


@pytest.fixture
def channel(backend):
    """A channel name of its own, so Redis keys from other runs never collide."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    if backend == "redis":
        client = ratelimit._redis_client(django_settings.REDIS_URL)
        keys = list(client.scan_iter(f"{ratelimit.KEY_PREFIX}:{name}:*"))
        if keys:
            client.delete(*keys)


def used(backend: str, channel: str, window: int) -> int:
    if backend == "redis":
        value = ratelimit._redis_client(django_settings.REDIS_URL).get(ratelimit.redis_key(channel, window))
        return int(value or 0)
    return RateWindow.objects.filter(channel=channel, window=window).aggregate(s=Sum("used"))["s"] or 0


def test_a_count_within_the_rate_returns_without_sleeping(backend, channel):
    clock = FakeClock(1000.25)

    ratelimit.acquire(channel=channel, count=7, rate=10, now=clock.now, sleep=clock.sleep)

    assert clock.sleeps == []
    assert used(backend, channel, 1000) == 7


def test_a_count_above_the_rate_spans_windows_sleeping_to_each_boundary(backend, channel):
    clock = FakeClock(1000.25)

    ratelimit.acquire(channel=channel, count=25, rate=10, now=clock.now, sleep=clock.sleep)

    assert clock.sleeps == [0.75, 1.0]  # to 1001.0, then to 1002.0
    assert clock.t == 1002.0
    assert [used(backend, channel, w) for w in (1000, 1001, 1002)] == [10, 10, 5]


def test_two_workers_share_one_budget(backend, channel):
    """Two workers with their own clocks, interleaved: the second gets what the first left."""
    a, b = FakeClock(1000.1), FakeClock(1000.2)

    ratelimit.acquire(channel=channel, count=8, rate=10, now=a.now, sleep=a.sleep)
    assert a.sleeps == []

    ratelimit.acquire(channel=channel, count=8, rate=10, now=b.now, sleep=b.sleep)
    assert b.sleeps == [pytest.approx(0.8)]  # 2 at once, 6 in the next window
    assert b.t == pytest.approx(1001.0)

    a.t = 1001.5
    ratelimit.acquire(channel=channel, count=5, rate=10, now=a.now, sleep=a.sleep)
    assert a.sleeps == [0.5]  # 4 left in 1001, 1 in 1002

    assert [used(backend, channel, w) for w in (1000, 1001, 1002)] == [10, 10, 1]


def test_other_channels_have_their_own_budget(backend, channel):
    clock = FakeClock(1000.0)
    ratelimit.acquire(channel=channel, count=10, rate=10, now=clock.now, sleep=clock.sleep)
    ratelimit.acquire(channel=f"{channel}-other", count=10, rate=10, now=clock.now, sleep=clock.sleep)

    assert clock.sleeps == []
    if backend == "redis":
        ratelimit._redis_client(django_settings.REDIS_URL).delete(ratelimit.redis_key(f"{channel}-other", 1000))


def test_concurrent_workers_never_exceed_the_rate_in_a_window(backend, channel):
    """4 threads (own connections) each take 5 in one window at rate 10: exactly 10 get in."""
    barrier = threading.Barrier(4)
    clocks = [FakeClock(1000.5) for _ in range(4)]
    errors: list[BaseException] = []

    def worker(clock: FakeClock) -> None:
        try:
            barrier.wait()
            ratelimit.acquire(channel=channel, count=5, rate=10, now=clock.now, sleep=clock.sleep)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in clocks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert not any(t.is_alive() for t in threads)
    assert used(backend, channel, 1000) == 10
    assert used(backend, channel, 1001) == 10
    waited = [c.sleeps for c in clocks if c.sleeps]
    assert waited == [[0.5], [0.5]]  # two got in at once, the other two waited for 1001


@pytest.mark.parametrize("rate", [None, 0, -1])
def test_no_rate_means_no_limit(backend, channel, rate):
    clock = FakeClock(1000.0)

    ratelimit.acquire(channel=channel, count=10_000, rate=rate, now=clock.now, sleep=clock.sleep)

    assert clock.sleeps == []
    assert used(backend, channel, 1000) == 0


def test_a_fractional_rate_rounds_down_but_allows_at_least_one(backend, channel):
    clock = FakeClock(1000.0)

    ratelimit.acquire(channel=channel, count=3, rate=0.5, now=clock.now, sleep=clock.sleep)

    assert clock.sleeps == [1.0, 1.0]
    assert ratelimit.capacity(2.9) == 2


def test_negative_count_is_a_caller_bug():
    with pytest.raises(ValueError):
        ratelimit.acquire(channel="sms", count=-1, rate=10)


def test_db_store_deletes_windows_older_than_a_minute(settings, monkeypatch):
    settings.REDIS_URL = ""
    monkeypatch.setattr(ratelimit, "_last_cleanup", float("-inf"))
    RateWindow.objects.create(channel="sms", window=900, used=3)
    RateWindow.objects.create(channel="sms", window=950, used=3)
    clock = FakeClock(1000.0)

    ratelimit.acquire(channel="sms", count=1, rate=10, now=clock.now, sleep=clock.sleep)

    assert sorted(RateWindow.objects.values_list("window", flat=True)) == [950, 1000]


def test_take_grants_what_is_left_of_the_cap_without_waiting(backend, channel):
    """``take`` (the REST API's per-key limit): a caller-named window, never a sleep."""
    assert ratelimit.take(bucket=channel, window=960, count=3, cap=5, ttl=65) == 3
    assert ratelimit.take(bucket=channel, window=960, count=3, cap=5, ttl=65) == 2
    assert ratelimit.take(bucket=channel, window=960, count=1, cap=5, ttl=65) == 0
    assert ratelimit.take(bucket=channel, window=1020, count=1, cap=5, ttl=65) == 1  # the next minute
    assert ratelimit.take(bucket=channel, window=1020, count=0, cap=5) == 0
    assert (used(backend, channel, 960), used(backend, channel, 1020)) == (5, 1)
    if backend == "redis":
        ttl = ratelimit._redis_client(django_settings.REDIS_URL).ttl(ratelimit.redis_key(channel, 960))
        assert 5 < ttl <= 65
