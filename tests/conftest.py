"""Suite-wide fixtures: users by role, the environment for child processes, service checks.

``SIGNALBOX_REQUIRE_SERVICES=1`` (set by ``.ci/run`` under ``CI=true``) turns every skip into a
failure: in CI a missing database, Redis or browser must fail the run, never hide behind a skip.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.factories import PASSWORD, RecipientProfileFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
# collectstatic's output for tests/test_serving.py and tests/test_prod_launcher.py, kept between runs
# (var/ is not committed): later runs only re-hash, compression is skipped.
TEST_STATIC_ROOT = ROOT / "var" / "test_staticfiles"

pytest_plugins = ["tests.require_services"]

# Property tests judge results, never time: on a loaded 2-core machine one example can take longer
# than hypothesis's default 200 ms deadline, which then fails a correct test as "DeadlineExceeded".
hypothesis_settings.register_profile(
    "signalbox", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("signalbox")


def pytest_collection_modifyitems(config, items):
    """The production stage (marker ``prod``) runs only when the marker expression names it
    (``-m prod``, as ``.ci/run`` does): never in ``make test`` or another stage, whatever their ``-m``.

    schemathesis names each API operation's test (``test_with_a_valid_key[POST /api/v1/…]``) but
    gives them all the function's node id; pytest-xdist (``-n 2``) schedules by node id and would
    run one operation of each test. Each gets its name as its node id (pytest keeps it in ``_id``,
    a ``NodeId``; the assertion catches a pytest that keeps it elsewhere)."""
    for item in items:
        base, _, last = item.nodeid.rpartition("::")
        if base and last != item.name:
            item._id = type(item._id).parse(f"{base}::{item.name}")
            assert item.nodeid.endswith(item.name), item.nodeid
    if "prod" in (config.option.markexpr or ""):
        return
    stage = [item for item in items if item.get_closest_marker("prod")]
    if stage:
        config.hook.pytest_deselected(items=stage)
        items[:] = [item for item in items if not item.get_closest_marker("prod")]


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in English: a request in another language leaves it active in the thread
    (LocaleMiddleware does not switch back), and services called directly would speak it."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _no_webhook_endpoints_cached():
    """Each test starts with an empty table of webhook routes (no endpoint exists yet in a fresh
    test), so query-count pins measure the steady state, not whichever test filled the cache first.
    Endpoints made through ``notifications.webhooks.services`` forget it again."""
    from django.core.cache import cache

    from notifications.webhooks.events import ROUTES_KEY

    cache.set(ROUTES_KEY, {}, None)
    yield


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def recipient(db):
    """A recipient with a profile; log in with ``password``."""
    return RecipientProfileFactory(user=UserFactory(username="ada", first_name="Ada", last_name="Lovelace")).user


@pytest.fixture
def other_recipient(db):
    return RecipientProfileFactory(user=UserFactory(username="grace", first_name="Grace", last_name="Hopper")).user


@pytest.fixture
def recipient_client(client, recipient):
    client.force_login(recipient)
    return client


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child process (worker, "another process") that uses the test database."""
    settings_dict = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", "PYTHONPATH": str(ROOT)}
    if connection.vendor == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{settings_dict['NAME']}"
    else:
        user = settings_dict.get("USER") or ""
        pw = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
        auth = f"{user}{pw}@" if user else ""
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        env["DATABASE_URL"] = f"postgres://{auth}{host}{port}/{settings_dict['NAME']}"
    env.update(extra)
    return env


def _run(argv: list[str], *, timeout: float, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=ROOT, env=child_env(**extra_env), capture_output=True, text=True, timeout=timeout, check=True
    )


def run_python(code: str, *, timeout: float = 60, **extra_env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python process with Django set up against the test database."""
    return _run([sys.executable, "-c", "import django; django.setup()\n" + code], timeout=timeout, extra_env=extra_env)


def manage(*args: str, timeout: float = 120, **extra_env: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "manage.py", *args], timeout=timeout, extra_env=extra_env)


@pytest.fixture(scope="session", autouse=True)
def _fresh_redis_for_tests():
    """CI points REDIS_URL at a database of its own and asks for it empty: no stale jobs."""
    from django.conf import settings

    if settings.REDIS_URL and os.environ.get("SIGNALBOX_TEST_FLUSH_REDIS") == "1":
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield


@pytest.fixture(scope="module")
def static_root_alone():
    """``TEST_STATIC_ROOT`` to this module alone until it ends (an exclusive flock): under
    ``pytest -n 2`` the other process may be collecting into it or serving from it."""
    lock = TEST_STATIC_ROOT.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield TEST_STATIC_ROOT


@pytest.fixture
def processes(tmp_path):
    """Start child processes with ``processes.start(name, *argv)``; all are stopped afterwards."""
    from tests.processes import Processes

    running = Processes(tmp_path)
    yield running
    running.stop()
