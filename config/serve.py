"""Start Signalbox's processes as one unit: ``make run`` and ``make prod`` both go through here.

    python -m config.serve run  [--host H] [--port P]   # trying it: SQLite, DB tasks, demo data
    python -m config.serve prod [--host H] [--port P]   # production profile on this machine

``run`` migrates, seeds the demo data (which prints the logins), collects the static files, then
serves one uvicorn process beside a task worker (``db_worker``, or one RQ worker when the settings
choose RQ) and the scheduler.

``prod`` forces ``DEBUG=0`` and refuses to start, with one line on stderr and exit status 2, when
``SECRET_KEY``, ``DATABASE_URL`` (PostgreSQL) or ``REDIS_URL`` is missing, when ``WEB_WORKERS`` or
``RQ_WORKERS`` is not a positive number, or when ``manage.py check --deploy --fail-level ERROR``
fails (a demo login keeping its published password: ``accounts.E001``). Then it migrates, collects
the static files and starts ``WEB_WORKERS`` uvicorn workers (default 2, one listening socket),
``RQ_WORKERS`` RQ workers (default 2) and the scheduler.

Both profiles read ``.env`` as the settings do (real environment variables win), so the children
see exactly the configuration this launcher checked.

Invariants:
- Nothing is served before every set-up step succeeded; a failed step stops here with its status.
- Every process started here is stopped here: SIGINT (Ctrl-C) or SIGTERM sends SIGTERM to each
  child's process group (uvicorn's workers included), SIGKILL after ``STOP_GRACE`` seconds, and
  this process exits only once every child is reaped. Children run in their own process groups so
  that a terminal's Ctrl-C reaches them once, through here, not twice; each asks the kernel for
  SIGTERM should this launcher die without stopping them (``PR_SET_PDEATHSIG``), so none is
  orphaned even by a SIGKILL.
- A child that exits by itself takes its process group with it (SIGTERM to what it forked, e.g.
  RQ's scheduler process after a worker was SIGKILLed). If it exits within ``START_WINDOW``
  seconds of starting (a port in use, a bad setting), everything stops: it would only fail again.
  Later it is restarted after a back-off (1 s, doubling to 30 s while it keeps dying), and the
  restart is printed.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
START_WINDOW = 10.0  # seconds: dying sooner is a failure to start, not a crash
STOP_GRACE = 20.0  # seconds between SIGTERM and SIGKILL (uvicorn closes connections within 10)
RESTART_MAX_DELAY = 30.0
RQ_WORKER_ARGS = [
    "rqworker", "default", "--with-scheduler", "--job-class", "django_tasks_rq.Job",
    "--worker-class", "config.rq.Worker",
]
POSTGRES_SCHEMES = ("postgres://", "postgresql://", "pgsql://", "postgis://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Refusal(Exception):
    """A reason not to start, said in one line."""


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_delay: float = 1.0
    restart_at: float | None = None
    exits: list[int] = field(default_factory=list)


def manage(*args: str) -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), *args]


def uvicorn(*, host: str, port: int, workers: int) -> list[str]:
    """uvicorn with reload off (its default), no lifespan (Django has none) and a bounded shutdown:
    live inbox streams last up to a minute, a stop does not wait for them."""
    return [
        sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port),
        "--workers", str(workers), "--lifespan", "off", "--timeout-graceful-shutdown", "5",
    ]


def site_url_for(*, host: str, port: int) -> str:
    """The address links in messages use when ``SITE_URL`` is not set: where ``make run`` serves.
    A wildcard bind is reached on loopback from this machine."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


def positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "") or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise Refusal(f"{name} must be a whole number of at least 1, not {raw!r}.")
    return int(raw)


def task_backend() -> str:
    """The settings' rule (config/settings.py), read from the same environment."""
    return os.environ.get("TASK_BACKEND") or ("rq" if os.environ.get("REDIS_URL") else "db")


def prod_environment() -> None:
    """Refuse, in one line, a production start that lacks what production needs."""
    os.environ["DEBUG"] = "0"
    if not os.environ.get("SECRET_KEY"):
        raise Refusal("SECRET_KEY is not set: production signs sessions and links with it (set a long random value).")
    database = os.environ.get("DATABASE_URL", "")
    if not database.startswith(POSTGRES_SCHEMES):
        raise Refusal("DATABASE_URL must point at PostgreSQL (postgres://user:password@host:5432/name) for make prod"
                      + (f", not {database.split(':', 1)[0]}." if database else "; it is not set."))
    if not os.environ.get("REDIS_URL", "").startswith(REDIS_SCHEMES):
        raise Refusal("REDIS_URL must point at Redis (redis://host:6379/0) for make prod: tasks, cache and the "
                      "live inbox use it" + ("." if os.environ.get("REDIS_URL") else "; it is not set."))
    if task_backend() != "rq":
        raise Refusal(f"make prod runs RQ workers: TASK_BACKEND must be rq (or unset), not {task_backend()!r}.")


def deploy_check() -> None:
    """``manage.py check --deploy --fail-level ERROR``, its first error as the one-line reason."""
    result = subprocess.run(manage("check", "--deploy", "--fail-level", "ERROR"), capture_output=True, text=True)
    if result.returncode == 0:
        return
    output = result.stderr + result.stdout
    errors = re.findall(r"^\S*: \((\w+\.E\d+)\) (.+)$", output, flags=re.MULTILINE)
    if errors:
        check_id, message = errors[0]
        more = f" (and {len(errors) - 1} more error(s): manage.py check --deploy)" if len(errors) > 1 else ""
        raise Refusal(f"{message} [{check_id}]{more}")
    last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
    raise Refusal(f"manage.py check --deploy failed: {last[0]}")


def step(what: str, argv: list[str], *, quiet: bool = True) -> None:
    """Run a set-up step; its output is shown only when it fails (or always, when not quiet)."""
    print(f"signalbox: {what}", flush=True)
    result = subprocess.run(argv, capture_output=quiet, text=True)
    if result.returncode != 0:
        if quiet:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"signalbox: {what} failed (exit status {result.returncode}).")


def children_for(profile: str, *, host: str, port: int) -> list[Child]:
    if profile == "prod":
        web_workers, rq_workers = positive_int("WEB_WORKERS", 2), positive_int("RQ_WORKERS", 2)
        workers = [Child(f"rq-worker-{n}", manage(*RQ_WORKER_ARGS)) for n in range(1, rq_workers + 1)]
    else:
        web_workers = 1
        backend = task_backend()
        workers = (
            [Child("rq-worker", manage(*RQ_WORKER_ARGS))] if backend == "rq"
            else [Child("db-worker", manage("db_worker", "--no-reload"))] if backend == "db"
            else []  # immediate: tasks run where they are enqueued
        )
    return [
        Child("web", uvicorn(host=host, port=port, workers=web_workers)),
        *workers,
        Child("scheduler", manage("signalbox_scheduler")),
    ]


def _own_group_and_die_with_parent() -> None:  # runs in the child, between fork and exec
    os.setpgid(0, 0)
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(child: Child) -> None:
    child.process = subprocess.Popen(
        child.argv, cwd=BASE_DIR, stdin=subprocess.DEVNULL, preexec_fn=_own_group_and_die_with_parent
    )
    child.started_at = time.monotonic()
    child.restart_at = None


def signal_group(child: Child, signum: int) -> None:
    """Signal the child's whole process group (uvicorn's workers too), whether or not its leader lives."""
    if child.process is not None:
        try:
            os.killpg(child.process.pid, signum)
        except ProcessLookupError:
            pass


def stop_all(children: list[Child]) -> None:
    for child in children:
        if child.process is not None and child.process.poll() is None:
            signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"signalbox: {child.name} did not stop within {STOP_GRACE:.0f} s: killing it", flush=True)
            signal_group(child, signal.SIGKILL)
            child.process.wait()
        # A uvicorn worker may outlive its master by a moment: reap the group's stragglers too.
        signal_group(child, signal.SIGKILL)


def supervise(children: list[Child]) -> int:
    """Run the children until a stop signal (exit 0) or a failure to start (exit 1)."""
    stop_requested: list[int] = []

    def request_stop(signum, _frame) -> None:
        stop_requested.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for child in children:
        start(child)
    print("signalbox: started " + ", ".join(f"{c.name} (pid {c.process.pid})" for c in children)
          + ". Ctrl-C stops them all.", flush=True)
    status = 0
    while not stop_requested:
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    start(child)
                    print(f"signalbox: restarted {child.name} (pid {child.process.pid})", flush=True)
                continue
            code = child.process.poll()
            if code is None:
                continue
            child.exits.append(code)
            # What it forked (RQ's scheduler process, uvicorn's workers) is still in its group: stop it too.
            signal_group(child, signal.SIGTERM)
            if now - child.started_at < START_WINDOW:
                print(f"signalbox: {child.name} exited with status {code} right after starting: stopping everything.",
                      file=sys.stderr, flush=True)
                status = 1
                break
            if now - child.started_at > 60:
                child.restart_delay = 1.0
            print(f"signalbox: {child.name} exited with status {code}; restarting it in {child.restart_delay:.0f} s.",
                  file=sys.stderr, flush=True)
            child.restart_at = now + child.restart_delay
            child.restart_delay = min(child.restart_delay * 2, RESTART_MAX_DELAY)
        if status:
            break
        time.sleep(0.2)
    # Further signals while stopping change nothing: the stop below is already the clean one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("signalbox: stopping " + ", ".join(c.name for c in children), flush=True)
    stop_all(children)
    print("signalbox: stopped.", flush=True)
    return status


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", choices=["run", "prod"])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)
    os.chdir(BASE_DIR)
    # During set-up, Ctrl-C and SIGTERM interrupt the step running (subprocess.run kills it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.profile == "prod":
            os.environ["DEBUG"] = "0"  # before .env: a development .env cannot turn DEBUG back on
        import environ

        environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
        if args.profile == "prod":
            prod_environment()
            deploy_check()
        else:
            # Links in captured emails and the printed logins follow --host/--port (make run
            # PORT=8101), unless SITE_URL is set (environment or .env). Children inherit it.
            os.environ.setdefault("SITE_URL", site_url_for(host=args.host, port=args.port))
        children = children_for(args.profile, host=args.host, port=args.port)
    except Refusal as refusal:
        print(f"signalbox: refusing to start: {refusal}", file=sys.stderr)
        return 2
    try:
        step("applying migrations", manage("migrate", "--noinput"))
        if args.profile == "run":
            step("loading demo data", manage("seed_demo"), quiet=False)  # prints the logins
        step("collecting static files", manage("collectstatic", "--noinput", "--verbosity", "0"))
    except KeyboardInterrupt:  # Ctrl-C during set-up: the step got it too and stopped; nothing runs yet
        print("signalbox: interrupted during set-up; nothing was started.", file=sys.stderr)
        return 130
    print(f"signalbox: serving {site_url_for(host=args.host, port=args.port)}/", flush=True)
    return supervise(children)


if __name__ == "__main__":
    sys.exit(main())
