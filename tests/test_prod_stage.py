"""The production stage of CI (issue 11): ``make prod`` as an operator runs it, then a browser.

One stack for the module, started the way ``make prod`` starts it, on a PostgreSQL database and a
Redis database of its own (recreated and emptied first), with only the variables production needs
(``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``, ``ALLOWED_HOSTS``) plus what this harness
provides: an SMTP sink on loopback for outgoing mail (``EMAIL_HOST``/``EMAIL_PORT``) and the token
that opens ``/metrics``. The first staff login is made as README "Deploying" says
(``createsuperuser --noinput``). Then, in Chromium: the superuser adds recipients, an audience, a
template and a campaign (email + in-app), launches it and watches its progress reach 100 %, while a
recipient, signed in in another browser context, sees the notification arrive without reloading.
``/readyz`` is green, ``/metrics`` counts the emails sent, every admin page answers 200 with
``DEBUG=0``, static files are served hashed, compressed and cached for ever, and a Ctrl-C stops
every process with exit status 0.

Run with ``pytest -m prod tests/test_prod_stage.py`` (``.ci/run``'s production stage); the default
run deselects the ``prod`` marker (pytest.ini). The tests share the stack and run in file order:
the stop is last.

The launcher is started with the command ``make -n prod`` prints, after ``make install assets fonts``
(``make prod``'s prerequisites), rather than under ``make`` itself: GNU make answers a signal to
its process group with its own status (``Interrupt``, -2, for a Ctrl-C; 2 with "wait: No child
processes" for SIGTERM) whatever its child did, so only the launcher's own status says whether the
stop was clean.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.conftest import ROOT
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.processes import alive, descendants, empty_redis, free_port

# Every test under the one Chromium parameter, so that pytest keeps them in file order (it groups
# tests by a session-scoped parameter, which would otherwise move the browser tests first).
pytestmark = [pytest.mark.prod, pytest.mark.usefixtures("browser_name")]

DATABASE_URL = os.environ.get(
    "SIGNALBOX_PROD_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/signalbox_prod_ci"
)
REDIS_URL = os.environ.get("SIGNALBOX_PROD_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
SUPERUSER = "ops-root"
RECIPIENTS = ["prod-reader-1", "prod-reader-2", "prod-reader-3"]  # the first one watches the inbox
RECIPIENT_DOMAIN = "prod-stage.test"
START_TIMEOUT = 300  # seconds: a fresh database is migrated and static files may be compressed first
EMAILS_SENT = re.compile(r'^signalbox_deliveries\{channel="email",status="sent"\} (\d+(?:\.0)?)$', re.MULTILINE)
ADMIN_WALK_SKIP = ("/admin/logout/", "/admin/r/", "/admin/jsi18n/")


# --- The SMTP sink outgoing mail goes to ------------------------------------------------------

class MailSink:
    """A real SMTP server on loopback (aiosmtpd) that keeps the recipients of what it accepts."""

    def __init__(self) -> None:
        self.rcpt_tos: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.rcpt_tos.extend(envelope.rcpt_tos)
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def mail_sink():
    from aiosmtpd.controller import Controller

    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


# --- The stack -----------------------------------------------------------------------------------

@dataclass
class Stack:
    base_url: str
    process: subprocess.Popen
    log: Path
    env: dict[str, str]
    sink: MailSink
    superuser_password: str
    metrics_token: str
    journey: dict[str, object] = field(default_factory=dict)  # what the journey made, for later tests

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        host = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def wait_until(check, *, seconds: float, what, stack: Stack | None = None, every: float = 0.25):
    """Poll ``check`` until it returns something truthy (returned); fail saying ``what`` (a string, or
    a function giving one at the time) with the stack's log."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            pytest.fail(f"{said}: not within {seconds:.0f} s." + (f"\n{stack.logs()}" if stack else ""))
        time.sleep(every)


def fresh_database() -> None:
    psycopg = pytest.importorskip("psycopg")
    server, name = DATABASE_URL.rsplit("/", 1)
    try:
        admin = psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable at {server}: {error}")
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def make_prod_command(*, port: int, env: dict[str, str]) -> list[str]:
    """``make prod``'s prerequisites run for real; its own command as ``make -n`` prints it."""
    subprocess.run(["make", "-s", "install", "assets", "fonts"], cwd=ROOT, env=env, check=True, timeout=600)
    dry_run = subprocess.run(["make", "-n", "prod", "HOST=127.0.0.1", f"PORT={port}"], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True).stdout
    command = dry_run.strip().splitlines()[-1]
    assert "-m config.serve prod" in command, dry_run
    return shlex.split(command)


def serving(stack: Stack) -> bool:
    assert stack.process.poll() is None, f"make prod exited with status {stack.process.returncode}\n{stack.logs()}"
    try:
        return stack.get("/accounts/login/")[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def stack(mail_sink, tmp_path_factory):
    fresh_database()
    empty_redis(REDIS_URL)
    sink, smtp_port = mail_sink
    port = free_port()
    metrics_token = secrets.token_urlsafe(24)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "SIGNALBOX_METRICS_TOKEN": metrics_token,
    }
    log = tmp_path_factory.mktemp("prod") / "make-prod.log"
    argv = make_prod_command(port=port, env=env)
    with log.open("w") as out:
        # Its own session, as in a terminal: the launcher leads the process group a Ctrl-C reaches.
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    running = Stack(base_url=f"http://127.0.0.1:{port}", process=process, log=log, env=env, sink=sink,
                    superuser_password=secrets.token_urlsafe(18), metrics_token=metrics_token)
    try:
        wait_until(lambda: serving(running), seconds=START_TIMEOUT, what="make prod serving", stack=running)
        # The first staff login of a production install (README "Deploying").
        subprocess.run(
            [*argv[:1], "manage.py", "createsuperuser", "--noinput", "--username", SUPERUSER,
             "--email", f"{SUPERUSER}@{RECIPIENT_DOMAIN}"],
            cwd=ROOT, env={**env, "DJANGO_SUPERUSER_PASSWORD": running.superuser_password},
            check=True, capture_output=True, timeout=120,
        )
        yield running
    finally:  # whatever the tests did (the last one stops it), leave nothing running
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        for pid in in_session(process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if process.poll() is None:
            process.wait(timeout=10)


def in_session(sid: int) -> set[int]:
    """Live processes of session ``sid``: everything the launcher started stays in its session."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


# --- Chromium ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium`")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="module", autouse=True)
def patient_expectations():
    """Two uvicorn workers, two RQ workers, PostgreSQL and Chromium share two busy cores here: a
    page may take longer than Playwright's 5 s to show what it will show."""
    expect.set_options(timeout=20_000)
    yield
    expect.set_options(timeout=5_000)


def browser_context(browser: Browser, stack: Stack) -> BrowserContext:
    context = browser.new_context(base_url=stack.base_url)
    context.set_default_timeout(60_000)
    return context


@pytest.fixture(scope="module")
def staff(browser: Browser, stack: Stack):
    """The superuser's browser context, signed in."""
    context = browser_context(browser, stack)
    page = context.new_page()
    page.goto("/admin/login/?next=/admin/")
    page.locator("input[name=username]").fill(SUPERUSER)
    page.locator("input[name=password]").fill(stack.superuser_password)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{stack.base_url}/admin/")
    yield context
    context.close()


def add_recipient(page: Page, username: str, password: str) -> None:
    page.goto("/admin/auth/user/add/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password1]").fill(password)
    page.locator("input[name=password2]").fill(password)
    page.locator("button[name=_continue]").click()
    expect(page).to_have_url(re.compile(r"/admin/auth/user/\d+/change/"))
    page.locator("input[name=email]").fill(f"{username}@{RECIPIENT_DOMAIN}")
    page.locator("input[name=first_name]").fill(f"Reader {username.rsplit('-', 1)[1]}")
    page.locator("button[name=_save]").click()
    expect(page).to_have_url(re.compile(r"/admin/auth/user/(\?.*)?$"))


def test_staff_launch_a_campaign_and_a_recipient_inbox_updates_live(browser: Browser, stack: Stack, staff):
    page = staff.new_page()
    password = secrets.token_urlsafe(12)
    for username in RECIPIENTS:
        add_recipient(page, username, password)

    page.goto("/admin/notifications/category/add/")
    page.locator("input[name=key]").fill("product-news")
    page.locator("input[name=name]").fill("Product news")
    page.locator("button[name=_save]").click()
    expect(page.locator("body")).to_contain_text("Product news")

    page.goto("/admin/notifications/audience/add/")
    page.locator("input[name=name]").fill("Production readers")
    page.get_by_role("button", name="Edit as JSON").click()
    rules = {"all": [{"field": "user.email", "op": "endswith", "value": f"@{RECIPIENT_DOMAIN}"},
                     {"field": "user.username", "op": "startswith", "value": "prod-reader-"}]}
    page.locator("textarea[name=rules]").fill(json.dumps(rules))
    expect(page.get_by_test_id("audience-count")).to_have_attribute("data-count", str(len(RECIPIENTS)))
    page.locator("button[name=_save]").click()
    expect(page.locator("body")).to_contain_text("Production readers")

    page.goto("/admin/notifications/messagetemplate/add/")
    page.locator("input[name=key]").fill("prod-news")
    page.locator("input[name=name]").fill("Production news")
    page.locator("input[name=inapp_title]").fill("News for {{ recipient.first_name }}")
    page.locator("textarea[name=inapp_body]").fill("From {{ campaign.name }}")
    page.locator("input[name=email_subject]").fill("News for {{ recipient.first_name }}")
    page.locator("textarea[name=email_body]").fill("Hello **{{ recipient.first_name }}**")
    page.locator("button[name=_save]").click()
    expect(page.locator("body")).to_contain_text("Production news")

    page.goto("/admin/notifications/campaign/add/")
    page.locator("input[name=name]").fill("Production launch")
    page.locator("select[name=audience]").select_option(label="Production readers")
    page.locator("select[name=template]").select_option(label="Production news")
    page.locator("select[name=category]").select_option(label="Product news")
    page.locator("select[name=channel_1]").select_option(label="Email")
    page.locator("select[name=channel_2]").select_option(label="In-app")
    page.locator("button[name=_continue]").click()
    expect(page).to_have_url(re.compile(r"/campaign/\d+/change/"))

    # The first recipient signs in elsewhere and keeps the inbox open, its live stream connected.
    reader_context = browser_context(browser, stack)
    try:
        inbox = reader_context.new_page()
        inbox.goto("/notifications/")
        inbox.get_by_label("Username").fill(RECIPIENTS[0])
        inbox.get_by_label("Password").fill(password)
        inbox.get_by_role("button", name="Log in").click()
        expect(inbox).to_have_url(f"{stack.base_url}/notifications/")
        badge = inbox.get_by_test_id("unread-badge")
        expect(badge).to_have_text("0")
        inbox.wait_for_function(
            "() => document.body['htmx-internal-data'] && document.body['htmx-internal-data'].sseEventSource"
            " && document.body['htmx-internal-data'].sseEventSource.readyState === 1", timeout=30_000,
        )
        inbox_loaded = inbox.evaluate("performance.timeOrigin")

        page.locator("[data-action=launch]").click()
        expect(page.locator("body")).to_contain_text("Launched.")
        loaded = page.evaluate("performance.timeOrigin")
        expect(page.get_by_test_id("run-percent")).to_have_text("100%", timeout=120_000)
        expect(page.get_by_test_id("campaign-status")).to_have_text("Completed", timeout=60_000)
        assert page.evaluate("performance.timeOrigin") == loaded  # watched live, never reloaded

        expect(badge).to_have_text("1", timeout=30_000)
        expect(inbox.get_by_test_id("notification").first).to_contain_text("News for Reader 1")
        assert inbox.evaluate("performance.timeOrigin") == inbox_loaded
    finally:
        reader_context.close()

    addresses = sorted(f"{username}@{RECIPIENT_DOMAIN}" for username in RECIPIENTS)
    wait_until(lambda: sorted(stack.sink.rcpt_tos) == addresses, seconds=60, stack=stack,
               what=f"one email each to {addresses} (got {stack.sink.rcpt_tos})")
    stack.journey["emails_sent"] = len(addresses)


def test_readyz_is_green(stack: Stack):
    def ready():
        status, _, body = stack.get("/readyz")
        return (status, json.loads(body)) if status == 200 else None

    # The worker check turns green once a worker ran the heartbeat task the scheduler enqueues.
    status, report = wait_until(ready, seconds=120, every=1, what="/readyz answering 200", stack=stack)
    assert report["status"] == "ok"
    assert set(report["checks"]) == {"database", "redis", "worker", "scheduler"}
    assert all(check["ok"] for check in report["checks"].values()), report


def test_metrics_count_the_emails_sent(stack: Stack):
    """The contract of ``/metrics`` (issue 11): Prometheus text behind the bearer token, with
    ``signalbox_deliveries{channel="email",status="sent"} N`` among its lines."""
    sent = stack.journey.get("emails_sent")
    assert sent, "the campaign journey above did not finish sending"
    last = {}

    def counted() -> bool:
        status, _, body = stack.get("/metrics", headers={"Authorization": f"Bearer {stack.metrics_token}"})
        last["text"] = text = body.decode(errors="replace")
        assert status == 200, f"/metrics answered {status}: {text[:500]}"
        match = EMAILS_SENT.search(text)
        return bool(match) and float(match.group(1)) == sent

    # The figure is the scheduler's latest count (it counts periodically): wait for one after the sends.
    wait_until(counted, seconds=180, every=2, stack=stack,
               what=lambda: f"/metrics counting {sent} emails sent\n{last.get('text', '')[:3000]}")


def admin_links(html: str) -> set[str]:
    links = set()
    for href in re.findall(r'href="(/admin/[^"#]*)"', html):
        href = href.replace("&amp;", "&")
        if not href.startswith(ADMIN_WALK_SKIP) and "/delete/" not in href:
            links.add(href)
    return links


def admin_pages(context: BrowserContext) -> set[str]:
    """The sidebar's and app indexes' links, every model's changelist and add form, and the first
    change page listed in each changelist."""
    from django.contrib import admin
    from django.urls import reverse

    from accounts.url_policy import NEVER_ADDED

    def html(path: str) -> str:
        return context.request.get(path, max_redirects=0).text()

    pages = admin_links(html("/admin/"))
    for app_index in sorted(p for p in pages if re.fullmatch(r"/admin/\w+/", p)):
        pages |= admin_links(html(app_index))
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        pages.add(changelist)
        if f"{opts.app_label}.{opts.model_name}" not in NEVER_ADDED:
            pages.add(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        first = re.search(rf'href="({re.escape(changelist)}[^"/?]+/change/)', html(changelist))
        if first:
            pages.add(first.group(1))
    return pages


def test_every_admin_page_answers_200_with_debug_off(stack: Stack, staff):
    pages = admin_pages(staff)
    assert len(pages) > 40, sorted(pages)
    failures = []
    for path in sorted(pages):
        # An add form may lead on to its wizard (imports): followed, it must end on a page, not a login.
        response = staff.request.get(path, timeout=60_000)
        landed = urlsplit(response.url).path
        if response.status != 200 or "Server Error" in response.text() or "/login/" in landed:
            failures.append(f"{response.status} {path} -> {landed}")
    assert not failures, "\n".join(failures) + f"\n{stack.logs()}"
    # DEBUG=0 indeed: an unknown URL is the plain 404 page, not Django's debug page.
    missing = staff.request.get("/admin/no-such-page/", max_redirects=0)
    assert missing.status == 404 and "URLconf" not in missing.text()


def test_static_assets_are_hashed_compressed_and_cached_for_ever(stack: Stack):
    assets = set()
    for page in ("/accounts/login/", "/admin/login/"):
        status, _, body = stack.get(page)
        assert status == 200, page
        assets |= set(re.findall(r'(?:src|href)="(/static/[^"]+)"', body.decode()))
    assert len(assets) >= 3, assets
    for url in assets:
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", url), f"{url} is not a hashed name"
        for accepted, encoding in (("br, gzip", "br"), ("gzip", "gzip")):
            status, headers, _ = stack.get(url, headers={"Accept-Encoding": accepted})
            assert status == 200, url
            assert headers.get("content-encoding") == encoding, (url, accepted, headers)
            assert headers["cache-control"] == "max-age=315360000, public, immutable", url


def test_ctrl_c_stops_every_process_with_status_0(stack: Stack):
    launcher = stack.process
    tree = descendants(launcher.pid)
    # Two uvicorn workers and their master, two RQ workers (each with RQ's scheduler) and ours.
    assert len(tree) >= 6, tree
    os.killpg(launcher.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the foreground group
    status = launcher.wait(timeout=90)
    assert status == 0, stack.logs()
    assert "signalbox: stopped." in stack.logs()
    # Nothing left: not one of the processes seen running, nor anything else in the launcher's session
    # (a process that had slipped out of the tree, re-parented to init, would still be in it).
    wait_until(lambda: not in_session(launcher.pid) and not any(alive(pid) for pid in tree), seconds=30,
               what=f"every process of make prod gone (left: {in_session(launcher.pid)})", stack=stack)
