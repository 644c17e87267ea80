"""``make prod`` (issue 11, point 2): ``python -m config.serve prod`` as an operator runs it.

Refusals need no service. The start/stop tests run the real stack (uvicorn workers, RQ workers,
the scheduler) on a throwaway PostgreSQL database and a Redis database, then stop it the ways an
operator or a process manager does and look for any process left behind.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.serve import START_WINDOW
from tests.conftest import ROOT, TEST_STATIC_ROOT as STATIC_ROOT
from tests.processes import alive, descendants, free_port, fresh_postgres_database

REDIS = os.environ.get("SIGNALBOX_LAUNCHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("static_root_alone")]


def launcher_env(**values: str) -> dict[str, str]:
    """A clean environment: only what the test gives (plus PATH), never the suite's settings."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STATIC_ROOT": str(STATIC_ROOT), **values}


def launch(env: dict[str, str], *, port: int = 0, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "config.serve", "prod", "--port", str(port or free_port())],
        cwd=ROOT, env=env, **popen,
    )


def refusal(env: dict[str, str]) -> str:
    process = launch(env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("signalbox: refusing to start: "), err
    return lines[0]


SECRET = {"SECRET_KEY": "launcher-tests-only-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"}


def test_refuses_without_a_secret_key():
    assert "SECRET_KEY is not set" in refusal(launcher_env(DATABASE_URL="postgres://x@h/db", REDIS_URL=REDIS))


def test_refuses_without_postgresql():
    assert "DATABASE_URL must point at PostgreSQL" in refusal(launcher_env(**SECRET, REDIS_URL=REDIS))
    line = refusal(launcher_env(**SECRET, DATABASE_URL="sqlite:///var/x.sqlite3", REDIS_URL=REDIS))
    assert "not sqlite" in line


def test_refuses_without_redis():
    assert "REDIS_URL must point at Redis" in refusal(launcher_env(**SECRET, DATABASE_URL="postgres://x@h/db"))


def test_refuses_a_worker_count_that_is_not_a_positive_number():
    env = launcher_env(**SECRET, DATABASE_URL="postgres://x@h/db", REDIS_URL=REDIS, RQ_WORKERS="two")
    assert "RQ_WORKERS must be a whole number" in refusal(env)


@pytest.fixture(scope="module")
def database():
    """A fresh PostgreSQL database for the module (the first start migrates it)."""
    with fresh_postgres_database("signalbox_launcher") as url:
        yield url


@pytest.fixture(scope="module")
def redis_url():
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=5).ping()
    except redis.exceptions.ConnectionError as error:
        pytest.skip(f"Redis is not reachable at {REDIS}: {error}")
    return REDIS


def wait_until_serving(process: subprocess.Popen, port: int, log: Path, *, expected_children: int) -> set[int]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-4000:]
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/accounts/login/")
            status = connection.getresponse().status
            connection.close()
            tree = descendants(process.pid)
            # 2 uvicorn workers + their master, 2 RQ workers, the scheduler (and helpers they fork).
            if status == 200 and len(tree) >= expected_children:
                return tree
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail("make prod did not serve within 240 s\n" + log.read_text()[-4000:])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "sigkill"])
def test_prod_serves_then_stops_with_no_process_left_behind(database, redis_url, tmp_path, signum):
    port = free_port()
    log = tmp_path / "prod.log"
    env = launcher_env(**SECRET, DATABASE_URL=database, REDIS_URL=redis_url, ALLOWED_HOSTS="127.0.0.1",
                       WEB_WORKERS="2", RQ_WORKERS="2")
    with log.open("w") as out:
        # Its own session, as in a terminal: the launcher leads the group a Ctrl-C reaches.
        process = launch(env, port=port, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            tree = wait_until_serving(process, port, log, expected_children=6)
            if signum == signal.SIGINT:
                os.killpg(process.pid, signum)  # a terminal's Ctrl-C goes to the foreground group
            else:
                os.kill(process.pid, signum)
            status = process.wait(timeout=60)
            deadline = time.monotonic() + 30  # after a SIGKILL the children stop on their own signal
            while time.monotonic() < deadline and any(alive(pid) for pid in tree):
                time.sleep(0.2)
        finally:
            if process.poll() is None:
                process.kill()
    left = {pid for pid in tree if alive(pid)}
    for pid in left:  # never leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"left behind: {left}\n{log.read_text()[-4000:]}"
    assert status == (-signal.SIGKILL if signum == signal.SIGKILL else 0), log.read_text()[-4000:]
    if signum != signal.SIGKILL:
        assert "signalbox: stopped." in log.read_text()


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_crashed_worker_is_restarted_and_what_it_forked_goes_with_it(database, redis_url, tmp_path):
    port = free_port()
    log = tmp_path / "prod.log"
    env = launcher_env(**SECRET, DATABASE_URL=database, REDIS_URL=redis_url, ALLOWED_HOSTS="127.0.0.1",
                       WEB_WORKERS="1", RQ_WORKERS="1")
    with log.open("w") as out:
        process = launch(env, port=port, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_serving(process, port, log, expected_children=4)
            worker = next(pid for pid in descendants(process.pid)
                          if "rqworker" in cmdline(pid) and pid in _children(process.pid))
            deadline = time.monotonic() + 60  # RQ forks its scheduler process once the worker is up
            while not descendants(worker) and time.monotonic() < deadline:
                time.sleep(0.2)
            forked = descendants(worker)
            assert forked, "the RQ worker forked no scheduler process"
            # A crash, not a failure to start: the launcher stops everything when a child dies
            # within START_WINDOW of starting (a busy machine reaches this point sooner than that).
            while _age(worker) < START_WINDOW + 1:
                time.sleep(0.2)
            os.kill(worker, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while "signalbox: restarted rq-worker-1" not in log.read_text() or any(alive(p) for p in forked):
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                time.sleep(0.2)
            tree = descendants(process.pid)
            os.kill(process.pid, signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
    time.sleep(1)
    assert not {pid for pid in tree | forked if alive(pid)}, log.read_text()[-4000:]


def _children(pid: int) -> set[int]:
    return {child for child in descendants(pid) if _ppid(child) == pid}


def _age(pid: int) -> float:
    """Seconds since ``pid`` started (from /proc: its start time in clock ticks after boot)."""
    started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - started / os.sysconf("SC_CLK_TCK")


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def test_prod_refuses_demo_passwords_in_the_database(database, redis_url):
    code = (
        "import django; django.setup()\n"
        "from django.contrib.auth import get_user_model\n"
        "from demo_shop.seeding.data import DEMO_PASSWORD\n"
        "get_user_model().objects.create_user('marketer', password=DEMO_PASSWORD)\n"
    )
    env = launcher_env(**SECRET, DATABASE_URL=database, REDIS_URL=redis_url, DEBUG="0",
                       DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    line = refusal(launcher_env(**SECRET, DATABASE_URL=database, REDIS_URL=redis_url))
    assert line.endswith("Demo logins still use the published demo password: marketer. [accounts.E001]")
