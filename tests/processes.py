"""Real child processes for tests (web servers, task workers) that are always stopped."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import ROOT, child_env


# The PostgreSQL server the tests that need a database of their own (not the test database) use.
PG_SERVER = os.environ.get("CI_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on ``PG_SERVER`` (its URL), dropped afterwards; skips
    (a failure under CI) when the server is not reachable."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable at {PG_SERVER}: {error}")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def empty_redis(url: str) -> None:
    """Flush the Redis database at ``url`` (one a test owns); skips (a failure under CI) when
    Redis is not reachable."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).flushdb()
    except redis.exceptions.ConnectionError as error:
        pytest.skip(f"Redis is not reachable at {url}: {error}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Child processes that are always stopped, whatever the test did."""

    def __init__(self, tmp_path) -> None:
        self.tmp_path = tmp_path
        self.running: list[tuple[str, subprocess.Popen]] = []
        self.files: list = []

    def start(self, name: str, *argv: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``python *argv`` against the test database; ``env`` adds variables (settings)."""
        log = (self.tmp_path / f"{name}.log").open("w")
        self.files.append(log)
        process = subprocess.Popen(
            [sys.executable, *argv], cwd=ROOT, env=child_env(**(env or {})), stdout=log, stderr=subprocess.STDOUT
        )
        self.running.append((name, process))
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{(self.tmp_path / f'{name}.log').read_text()[-3000:]}" for name, _ in self.running
        )

    def stop(self) -> None:
        for _name, process in self.running:
            if process.poll() is None:
                process.terminate()
        for _name, process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for log in self.files:
            log.close()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc), at any depth."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# The worker production runs (README "Growing past one machine").
RQ_WORKER_ARGS = ("--with-scheduler", "--job-class", "django_tasks_rq.Job", "--worker-class", "config.rq.Worker")


def start_worker(processes: Processes, *, name: str = "worker", env: dict[str, str] | None = None) -> subprocess.Popen:
    backend = settings.TASKS["default"]["BACKEND"]
    if backend == "django_tasks_rq.RQBackend":
        return processes.start(name, "manage.py", "rqworker", "default", *RQ_WORKER_ARGS, env=env)
    elif backend == "django_tasks_db.DatabaseBackend":
        return processes.start(
            name, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.05", env=env
        )
    else:
        pytest.fail(f"No worker for {backend}")


def wait_for(check, *, seconds: float, what: str, processes: Processes) -> float:
    """Poll ``check`` until it is true; the time it took. Fails with the children's logs."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.02)
    pytest.fail(f"{what}: not within {seconds} s.\n{processes.logs()}")


def worker_run_until_idle() -> None:
    """Run the configured backend's worker as a separate process until the queue is empty."""
    from tests.conftest import manage

    backend = settings.TASKS["default"]["BACKEND"]
    if backend == "django_tasks_rq.RQBackend":
        manage("rqworker", "default", "--burst", *RQ_WORKER_ARGS)
    elif backend == "django_tasks_db.DatabaseBackend":
        manage("db_worker", "--batch", "--no-reload", "--no-startup-delay")
    else:
        pytest.fail(f"No worker for {backend}")


def enqueued_task_ids(task_path_suffix: str) -> set[str]:
    """Ids of the tasks enqueued on the configured backend whose path ends with ``task_path_suffix``:
    waiting, scheduled for later, or taken by a worker since (the DB backend keeps a row per task
    whatever became of it; on RQ the started, finished and failed registries hold the taken ones).
    Works on the DB and the RQ backend, so a test of what child processes enqueued counts the
    same thing on both, even when some worker took the task meanwhile."""
    backend = settings.TASKS["default"]["BACKEND"]
    if backend == "django_tasks_rq.RQBackend":
        import django_rq
        from rq.job import Job

        queue = django_rq.get_queue("default")
        ids = [*queue.job_ids, *queue.scheduled_job_registry.get_job_ids(),
               *queue.started_job_registry.get_job_ids(), *queue.finished_job_registry.get_job_ids(),
               *queue.failed_job_registry.get_job_ids()]
        jobs = Job.fetch_many(ids, connection=queue.connection)
        return {job.id for job in jobs if job is not None and job.func_name.endswith(task_path_suffix)}
    elif backend == "django_tasks_db.DatabaseBackend":
        from django_tasks_db.models import DBTaskResult

        return {str(pk) for pk in DBTaskResult.objects.filter(task_path__endswith=task_path_suffix)
                .values_list("id", flat=True)}
    else:
        pytest.fail(f"No queue to read for {backend}")
