"""Serving (issue 11, point 1): uvicorn + WhiteNoise with compressed, hashed, far-future-cached assets.

The HTTP tests start the production settings (``DEBUG=0``, ``config.settings``, not the test
settings) in a real uvicorn process and read what goes over the wire.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time

import pytest

from config.storage import StaticStorage
from tests.conftest import ROOT, TEST_STATIC_ROOT as STATIC_ROOT, child_env
from tests.processes import free_port

PLOTLY = "plotly/plotly-basic.min.js"

pytestmark = pytest.mark.usefixtures("static_root_alone")


def prod_env(**extra: str) -> dict[str, str]:
    return child_env(
        DJANGO_SETTINGS_MODULE="config.settings", DEBUG="0", STATIC_ROOT=str(STATIC_ROOT),
        SECRET_KEY="serving-tests-only-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH",
        ALLOWED_HOSTS="127.0.0.1", **extra,
    )


def get(port: int, path: str, *, encoding: str | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers={"Accept-Encoding": encoding} if encoding else {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def start_uvicorn(processes, port: int, env: dict[str, str]) -> None:
    log = (processes.tmp_path / "uvicorn.log").open("w")
    processes.files.append(log)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--lifespan", "off"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    processes.running.append(("uvicorn", process))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            get(port, "/accounts/login/")
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"uvicorn did not answer within 60 s\n{processes.logs()}")


@pytest.fixture(scope="module")
def collected():
    """``collectstatic`` as ``make run``/``make prod`` run it, into a kept directory."""
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT, env=prod_env(DATABASE_URL="sqlite:///:memory:"), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return json.loads((STATIC_ROOT / "staticfiles.json").read_text())["paths"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_production_serves_assets_hashed_compressed_and_cached_for_ever(collected, processes):
    port = free_port()
    start_uvicorn(processes, port, prod_env())

    status, _, body = get(port, "/accounts/login/")
    assert status == 200
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', body.decode())
    assert assets
    for url in assets:
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", url), f"{url} is not a hashed name"
        status, headers, _ = get(port, url, encoding="br, gzip")
        assert status == 200, url
        assert headers["cache-control"] == "max-age=315360000, public, immutable", url
        assert headers.get("content-encoding") == "br", url

    plotly = f"/static/{collected[PLOTLY]}"
    sizes = {}
    for accepted in ("br, gzip", "gzip", None):
        status, headers, body = get(port, plotly, encoding=accepted)
        assert status == 200
        sizes[headers.get("content-encoding", "identity")] = len(body)
    print("plotly-basic.min.js bytes on the wire:", sizes)
    assert sizes["identity"] > 1_000_000  # plotly.js's basic bundle, from node_modules
    assert sizes["br"] < 400_000 and sizes["gzip"] < 500_000

    # A plain (unhashed) name is still served, but only briefly cached: its content may change.
    status, headers, _ = get(port, f"/static/{PLOTLY}", encoding="br")
    assert status == 200 and headers["cache-control"] == "max-age=60, public"


def test_a_file_missing_from_the_manifest_is_served_under_its_plain_name(tmp_path, settings):
    settings.DEBUG = False
    (tmp_path / "staticfiles.json").write_text(json.dumps(
        {"version": "1.1", "paths": {"signalbox/app.css": "signalbox/app.0123456789ab.css"}, "hash": "x"}
    ))
    storage = StaticStorage(location=tmp_path, base_url="/static/")
    assert storage.url("signalbox/app.css") == "/static/signalbox/app.0123456789ab.css"
    assert storage.url("signalbox/new.js") == "/static/signalbox/new.js"  # never the ValueError Django raises

    never_collected = StaticStorage(location=tmp_path / "empty", base_url="/static/")
    assert never_collected.url("signalbox/app.css") == "/static/signalbox/app.css"


def test_with_debug_0_no_page_fails_when_collectstatic_never_ran(client, settings, tmp_path):
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "config.storage.StaticStorage"}}
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert 'href="/static/signalbox/app.css"' in response.content.decode()


def test_hashed_names_are_used_in_debug_too_once_collected(tmp_path, settings):
    """``make run`` (DEBUG=1) serves what production serves: hashed, compressed, cached for ever."""
    settings.DEBUG = True
    (tmp_path / "staticfiles.json").write_text(json.dumps(
        {"version": "1.1", "paths": {"signalbox/app.css": "signalbox/app.0123456789ab.css"}, "hash": "x"}
    ))
    assert StaticStorage(location=tmp_path, base_url="/static/").url("signalbox/app.css").endswith(".0123456789ab.css")


def threads_of(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_live_inbox_streams_hold_no_thread_under_uvicorn(processes, recipient, client):
    """Forty open SSE streams in one uvicorn process: its thread count stays put, pages still answer."""
    import socket

    from notifications.inbox.services import InboxMessage, notifications_create

    client.force_login(recipient)  # a database session the server process reads too
    session = client.cookies["sessionid"].value
    port = free_port()
    env = {"SIGNALBOX_LIVE_STREAM_SECONDS": "30", "SIGNALBOX_LIVE_POLL_SECONDS": "0.5"}
    server = processes.start(
        "web", "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--lifespan", "off", env=env
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            get(port, "/healthz")
            break
        except OSError:
            assert time.monotonic() < deadline, processes.logs()
            time.sleep(0.1)
    get(port, "/notifications/stream/")  # warm up: imports and the first thread pools
    before = threads_of(server.pid)
    streams = []
    for _ in range(40):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(f"GET /notifications/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={session}\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())
        streams.append(sock)
    try:
        for sock in streams:
            head = sock.recv(4096).decode("latin-1")
            assert head.startswith("HTTP/1.1 200") and "text/event-stream" in head, head[:300]
        time.sleep(2)  # every stream has polled a few times
        during = threads_of(server.pid)
        started = time.monotonic()
        status, _, _ = get(port, "/accounts/login/")
        page_seconds = time.monotonic() - started
        # And they work: a notification created elsewhere reaches every open stream.
        notifications_create(recipient_ids=[recipient.pk], message=InboxMessage(title="Elsewhere"))
        for sock in streams:
            received, deadline = b"", time.monotonic() + 15
            while b'"unread": 1' not in received:
                assert time.monotonic() < deadline, received[-500:]
                received += sock.recv(4096)
    finally:
        for sock in streams:
            sock.close()
    print(f"uvicorn threads: {before} before, {during} with 40 open streams; a page took {page_seconds:.2f} s")
    assert status == 200
    assert during <= before + 4, f"{during} threads with 40 streams open (from {before})"
