"""The analytics page in Chromium at 1M deliveries: interactive in <= 1 s (issue 11).

Seeds ``--deliveries`` over the last ``--days`` days with one SQL statement (a recursive CTE,
``INSERT ... SELECT``; no ORM save), their receipts with a second, builds the daily rollups
(``rollup_build_s``), collects the static files and starts the production server (uvicorn as
``config/serve.py`` starts it, ``DEBUG=0``, WhiteNoise). A Marketer signs in once in Chromium
(``/usr/bin/chromium``, Playwright, no ``playwright install``); then ``/admin/analytics/`` (the last
30 days) is loaded ``--loads`` times cold (a new browser context each time: empty cache, as a first
visit) and ``--loads`` times warm (the same context, after two loads that let Chromium cache the
assets and their compiled code), alternating with the baseline: the same page loading the full
plotly.js bundle as it used to, a deferred script in the head (the server rewrites the HTML for a
browser with the baseline cookie: ``bench/_plotly_full.py``).

Figures, medians over the loads, times from the start of the navigation:

- ``analytics_interactive_ms``: a task queued at ``DOMContentLoaded`` has run, so every script of
  the page has run, htmx and Alpine have bound the filters, presets and links, and a click would
  be handled now (cold; ``..._warm_ms`` warm).
- ``charts_drawn_ms``: every chart has drawn (``data-rendered`` on all of them).
- ``input_delay_max_ms``: the longest main-thread task after the page became interactive and
  before its charts were drawn (what a click could wait for meanwhile); ``layout_shift``: the
  cumulative layout shift (the chart placeholders keep their height).
- ``js_bytes`` / ``plotly_bytes``: JavaScript transferred on a first visit (compressed, as sent).
- ``server_ms``: the page's full answer over plain HTTP (urllib, the signed-in session, no browser
  beside it), the median of ``2 × --loads`` requests; ``ttfb_ms``: its time to first byte in
  Chromium during the cold loads (the server then shares the cores with a starting renderer).
- ``baseline_*`` and ``ratio_*`` (baseline / new): the same with the full bundle.
- ``console_errors`` / ``csp_violations``: seen during all the loads (both should be 0).
- ``load_avg``: the machine's 1-minute load average before and after the loads (other work shares
  its cores; every figure above grows with it).

The data is kept in ``var/bench_page_load.sqlite3`` (without ``DATABASE_URL``) and reused while
its size matches and it was generated today; the static files in ``var/bench_staticfiles``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE = ROOT / "var" / "bench.sqlite3"
OWN_SQLITE = ROOT / "var" / "bench_page_load.sqlite3"
STATIC_ROOT = ROOT / "var" / "bench_staticfiles"
CHROMIUM = Path(os.environ.get("SIGNALBOX_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
MARKER = "bench-page-load"  # Category key whose description records what was generated
PREFIX = "bench-page:"
CAMPAIGNS = 40
USERNAME = "bench-page-marketer"
PASSWORD = "bench-page-load-password-1"

# Recorded in the page before any of its scripts runs.
PROBE = """
(() => {
  const bench = window.__bench = { longTasks: [], shift: 0, violations: 0 };
  new PerformanceObserver((list) => list.getEntries().forEach((e) => bench.longTasks.push([e.startTime, e.duration])))
    .observe({ type: "longtask", buffered: true });
  new PerformanceObserver((list) => list.getEntries().forEach((e) => { if (!e.hadRecentInput) bench.shift += e.value; }))
    .observe({ type: "layout-shift", buffered: true });
  document.addEventListener("securitypolicyviolation", () => { bench.violations += 1; });
  document.addEventListener("DOMContentLoaded", () => setTimeout(() => { bench.interactive = performance.now(); }, 0));
  const charts = new MutationObserver(() => {
    const all = document.querySelectorAll("[data-plotly]");
    if (all.length && [...all].every((el) => el.getAttribute("data-rendered") === "true")) {
      bench.drawn = performance.now();
      charts.disconnect();
    }
  });
  charts.observe(document, { subtree: true, attributes: true, attributeFilter: ["data-rendered"] });
})();
"""

READ = """
() => {
  const bench = window.__bench;
  const nav = performance.getEntriesByType("navigation")[0];
  const scripts = performance.getEntriesByType("resource").filter((e) => e.name.split("?")[0].endsWith(".js"));
  const after = bench.longTasks.filter(([start]) => start >= bench.interactive && start < bench.drawn);
  return {
    dcl: nav.domContentLoadedEventEnd, responseEnd: nav.responseEnd, longTasks: bench.longTasks,
    interactive: bench.interactive, drawn: bench.drawn, shift: bench.shift, violations: bench.violations,
    server: nav.responseStart - nav.requestStart,
    inputDelay: Math.max(0, ...after.map(([, duration]) => duration)),
    jsBytes: scripts.reduce((sum, e) => sum + e.transferSize, 0),
    plotlyBytes: scripts.filter((e) => e.name.includes("/plotly/")).reduce((sum, e) => sum + e.transferSize, 0),
  };
}
"""


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench analytics_page_load")
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--loads", type=int, default=5, help="cold and warm loads per page (medians are reported)")
    parser.add_argument("--regenerate", action="store_true", help="seed the data even if it is there")
    opts = parser.parse_args(argv)
    if not CHROMIUM.exists():
        raise SystemExit(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")

    _use_own_sqlite()
    from django.db import connection

    from dashboard.analytics import analytics_rollup_refresh
    from dashboard.models import AnalyticsRollupState
    from notifications.models import Delivery, DeliveryEvent

    seed_s = _ensure_data(opts)
    start = time.perf_counter()
    AnalyticsRollupState.objects.all().delete()
    analytics_rollup_refresh(since=None)  # through yesterday, as the scheduler leaves them; today is live
    rollup_build_s = time.perf_counter() - start
    _ensure_marketer()
    deliveries = Delivery.objects.filter(idempotency_key__startswith=PREFIX).count()
    receipts = DeliveryEvent.objects.filter(source="bench-page").count()
    vendor = connection.vendor
    connection.close()

    env = _server_env()
    _collectstatic(env)
    full_plotly = "/static/" + json.loads((STATIC_ROOT / "staticfiles.json").read_text())["paths"]["plotly/plotly.min.js"]
    port = _free_port()
    load_before = os.getloadavg()[0]
    server = _start_server(env, port)
    try:
        new, baseline, problems, session = _measure(f"http://127.0.0.1:{port}", full_plotly=full_plotly, loads=opts.loads)
        server_ms = _server_time(f"http://127.0.0.1:{port}/admin/analytics/", session=session, calls=max(5, 2 * opts.loads))
    finally:
        server.terminate()
        server.wait(timeout=30)

    def ratio(name: str) -> float:
        return round(baseline[name] / new[name], 2) if new[name] else 0.0

    return {
        "analytics_interactive_ms": new["interactive"],
        "analytics_interactive_warm_ms": new["interactive_warm"],
        "charts_drawn_ms": new["drawn"],
        "charts_drawn_warm_ms": new["drawn_warm"],
        "input_delay_max_ms": new["input_delay"],
        "layout_shift": new["shift"],
        "js_bytes": new["js_bytes"],
        "plotly_bytes": new["plotly_bytes"],
        "server_ms": server_ms,
        "ttfb_ms": new["server"],
        "baseline_interactive_ms": baseline["interactive"],
        "baseline_interactive_warm_ms": baseline["interactive_warm"],
        "baseline_charts_drawn_ms": baseline["drawn"],
        "baseline_js_bytes": baseline["js_bytes"],
        "ratio_interactive": ratio("interactive"),
        "ratio_interactive_warm": ratio("interactive_warm"),
        "ratio_charts_drawn": ratio("drawn"),
        "console_errors": problems["console_errors"],
        "csp_violations": problems["csp_violations"],
        "deliveries": deliveries,
        "receipts": receipts,
        # Other work on the machine's cores during the loads (1-minute averages, before and after).
        "load_avg": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "rollup_build_s": round(rollup_build_s, 1),
        "seed_s": seed_s,
        "loads": opts.loads,
        "database": vendor,
        "target_ms": 1000,
    }


# --- The browser ------------------------------------------------------------------------------


def _measure(base: str, *, full_plotly: str, loads: int) -> tuple[dict, dict, dict, str]:
    from playwright.sync_api import sync_playwright

    page_url = f"{base}/admin/analytics/"
    samples = {"new": {"cold": [], "warm": []}, "baseline": {"cold": [], "warm": []}}
    problems = {"console_errors": 0, "csp_violations": 0}

    def load(page, baseline: bool) -> dict:
        page.goto(page_url)
        page.wait_for_function("window.__bench && window.__bench.interactive && window.__bench.drawn", timeout=120_000)
        page.wait_for_timeout(50)  # let a last long task be reported
        figures = page.evaluate(READ)
        assert (full_plotly in page.content()) == baseline, "the baseline page loads the full bundle, the new one not"
        problems["csp_violations"] += figures["violations"]
        return figures

    def context(browser, state, baseline: bool):
        ctx = browser.new_context(storage_state=state, viewport={"width": 1280, "height": 800})
        ctx.add_init_script(PROBE)
        if baseline:
            ctx.add_cookies([{"name": "bench_baseline", "value": "1", "url": base}])
        page = ctx.new_page()
        page.on("console", lambda message: problems.__setitem__(
            "console_errors", problems["console_errors"] + (message.type == "error")))
        page.on("pageerror", lambda _error: problems.__setitem__("console_errors", problems["console_errors"] + 1))
        return ctx, page

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            state = _sign_in(browser, base)
            for _ in range(loads):  # first visits, alternating
                for variant in ("new", "baseline"):
                    ctx, page = context(browser, state, variant == "baseline")
                    samples[variant]["cold"].append(load(page, variant == "baseline"))
                    ctx.close()
            contexts = {variant: context(browser, state, variant == "baseline") for variant in ("new", "baseline")}
            for variant, (_ctx, page) in contexts.items():
                for _ in range(2):  # cache the assets, then their compiled code
                    load(page, variant == "baseline")
            for _ in range(loads):
                for variant, (_ctx, page) in contexts.items():
                    samples[variant]["warm"].append(load(page, variant == "baseline"))
            for ctx, _page in contexts.values():
                ctx.close()
        finally:
            browser.close()
    if os.environ.get("BENCH_VERBOSE"):
        print(json.dumps(samples), file=sys.stderr)
    session = next(cookie["value"] for cookie in state["cookies"] if cookie["name"] == "sessionid")
    return _summary(samples["new"]), _summary(samples["baseline"]), problems, session


def _server_time(url: str, *, session: str, calls: int) -> float:
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={session}"})
    samples = []
    for n in range(calls + 1):
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200 and b'data-testid="analytics-page"' in response.read()
        if n:  # the first one warms the connection pool and caches
            samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 1)


def _summary(samples: dict) -> dict:
    def median(key: str, which: str = "cold", digits: int = 0) -> float:
        value = statistics.median(sample[key] for sample in samples[which])
        return round(value, digits) if digits else round(value)

    return {
        "interactive": median("interactive"), "interactive_warm": median("interactive", "warm"),
        "drawn": median("drawn"), "drawn_warm": median("drawn", "warm"), "input_delay": median("inputDelay"),
        "shift": median("shift", digits=3), "js_bytes": median("jsBytes"), "plotly_bytes": median("plotlyBytes"),
        "server": median("server", digits=1),
    }


def _sign_in(browser, base: str) -> dict:
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.locator("input[name=username]").fill(USERNAME)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/admin/")
    state = ctx.storage_state()
    ctx.close()
    return state


# --- The server -------------------------------------------------------------------------------


def _server_env() -> dict[str, str]:
    from django.db import connection

    if connection.vendor == "sqlite":
        database = f"sqlite:///{connection.settings_dict['NAME']}"
    else:
        database = os.environ["DATABASE_URL"]
    return {
        **os.environ, "DJANGO_SETTINGS_MODULE": "bench._plotly_full", "DEBUG": "0", "DATABASE_URL": database,
        "STATIC_ROOT": str(STATIC_ROOT), "ALLOWED_HOSTS": "127.0.0.1", "TASK_BACKEND": "immediate",
        "SECRET_KEY": "bench-page-load-only-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH",
        # Plain HTTP on the loopback: the session cookie must not be Secure-only.
        "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0", "PYTHONPATH": str(ROOT),
    }


def _collectstatic(env: dict[str, str]) -> None:
    """As ``make run``/``make prod`` do; kept in ``var/``, so later runs only re-hash."""
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                   cwd=ROOT, env=env, check=True, timeout=900)


def _start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    from config.serve import uvicorn

    log = open(ROOT / "var" / "bench_page_load_server.log", "w")  # noqa: SIM115 - lives as long as the server
    server = subprocess.Popen(uvicorn(host="127.0.0.1", port=port, workers=1), cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5):
                return server
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"the server did not start: see {log.name}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- Data -------------------------------------------------------------------------------------


def _use_own_sqlite() -> None:
    """Without a ``DATABASE_URL`` of the caller's, keep this data in its own SQLite file."""
    if os.environ.get("DATABASE_URL") != f"sqlite:///{DEFAULT_SQLITE}":
        return
    from django.core.management import call_command
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = str(OWN_SQLITE)
    call_command("migrate", verbosity=0, interactive=False)


def _ensure_marketer() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import Group

    from accounts.roles import roles_ensure

    roles_ensure()
    user, _ = get_user_model().objects.get_or_create(username=USERNAME, defaults={"email": "bench-page@staff.example"})
    user.is_staff = True
    # The server runs the production settings, whose hashers do not include the test settings' MD5.
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save()
    user.groups.add(Group.objects.get(name="Marketers"))


def _ensure_data(opts) -> float | None:
    """Seed unless what is there matches; returns the seconds spent, or None."""
    from django.db import connection

    from dashboard.analytics.figures import site_today
    from notifications.models import Category, Delivery

    wanted = {"deliveries": opts.deliveries, "days": opts.days, "generated_on": site_today().isoformat()}
    marker = Category.objects.filter(key=MARKER).first()
    if (
        marker and not opts.regenerate and json.loads(marker.description or "{}") == wanted
        and Delivery.objects.filter(idempotency_key__startswith=PREFIX).count() == opts.deliveries
    ):
        return None
    start = time.perf_counter()
    _wipe()
    _seed(deliveries=opts.deliveries, days=opts.days, now=datetime.now(UTC).replace(microsecond=0))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    Category.objects.update_or_create(key=MARKER, defaults={"name": "Bench marker", "description": json.dumps(wanted)})
    return round(time.perf_counter() - start, 1)


def _wipe() -> None:
    from django.db import connection, transaction

    from notifications.models import Campaign, CampaignRun, Delivery, DeliveryEvent

    delivery, event = Delivery._meta.db_table, DeliveryEvent._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {event} WHERE delivery_id IN (SELECT id FROM {delivery} WHERE idempotency_key LIKE %s)",
                       [f"{PREFIX}%"])
        cursor.execute(f"DELETE FROM {delivery} WHERE idempotency_key LIKE %s", [f"{PREFIX}%"])
    CampaignRun.objects.filter(campaign__name__startswith="Bench page ").delete()
    Campaign.objects.filter(name__startswith="Bench page ").delete()


def _seed(*, deliveries: int, days: int, now: datetime) -> None:
    """``deliveries`` ledger rows, evenly over ``days`` up to three hours ago, in one statement.

    Row ``i`` is created at ``first + i * span / deliveries`` (ids grow with time, as in a live
    ledger); its channel follows ``i % 20`` (45 % email, 30 % in-app, 15 % SMS, web push, chat),
    its outcome a spread of ``i`` over 0..999 (suppressed, failed, bounced, sent, delivered,
    opened or read, clicked); 48 % belong to one of the campaign runs, in blocks of time.
    """
    from django.db import connection, transaction

    from notifications.models import Audience, Campaign, CampaignRun, Category, Delivery, DeliveryEvent, MessageTemplate

    categories = [
        Category.objects.get_or_create(key=f"bench-page-{key}", defaults={"name": key.replace("-", " ").title()})[0].pk
        for key in ("newsletter", "promotions", "order-updates", "security", "product-news")
    ]
    audience, _ = Audience.objects.get_or_create(name="Bench page audience")
    template, _ = MessageTemplate.objects.get_or_create(key="bench-page", defaults={"name": "Bench", "email_subject": "Hi"})
    span = int(timedelta(days=days).total_seconds()) - 3 * 3600
    first = now - timedelta(days=days)
    runs = []
    for k in range(CAMPAIGNS):
        started = first + timedelta(seconds=span * k // CAMPAIGNS)
        campaign = Campaign.objects.create(
            name=f"Bench page campaign {k + 1}", audience=audience, template=template, category_id=categories[k % 2],
            channels=["email"], status=Campaign.Status.COMPLETED, created_at=started,
        )
        runs.append(CampaignRun.objects.create(
            campaign=campaign, occurrence=started, started_at=started, status=CampaignRun.Status.COMPLETED,
            finished_at=started + timedelta(hours=1),
        ).pk)

    vendor = connection.vendor

    def at(seconds: str) -> str:
        """The SQL for ``first`` + ``seconds`` (an integer expression), stored as Django stores it."""
        if vendor == "sqlite":
            return f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', %(first)s, '+' || ({seconds}) || ' seconds')"
        return f"(%(first)s::timestamptz + ({seconds}) * interval '1 second')"

    def when(condition: str, seconds: str) -> str:
        return f"CASE WHEN {condition} THEN {at(f'secs + {seconds}')} END"

    run_of = " ".join(f"WHEN {k} THEN {pk}" for k, pk in enumerate(runs))
    category_of = " ".join(f"WHEN {k} THEN {pk}" for k, pk in enumerate(categories))
    first_sql = first.replace(tzinfo=None).isoformat(" ") if vendor == "sqlite" else first
    empty_json = "'{}'" if vendor == "sqlite" else "CAST('{}' AS jsonb)"
    sent = "status NOT IN ('suppressed', 'failed')"
    delivered = "status IN ('delivered', 'opened', 'read', 'clicked')"
    columns = {
        "idempotency_key": f"'{PREFIX}' || CAST(i AS VARCHAR(20))",
        "recipient_id": "NULL",
        "channel": "channel",
        "category_id": f"CASE (i / 7) % 5 {category_of} END",
        "address": "'bench' || CAST(i % 20000 AS VARCHAR(20)) || '@example.com'",
        "status": "status",
        "status_reason": "CASE status WHEN 'suppressed' THEN 'suppressed:opted_out' WHEN 'failed' THEN 'timeout' "
                         "WHEN 'bounced' THEN 'hard_bounce:550' ELSE '' END",
        "content": empty_json,
        "run_id": f"CASE WHEN i % 100 < 48 THEN CASE (i * {CAMPAIGNS} / %(n)s) {run_of} END END",
        "trigger_id": "NULL",
        "webhook_endpoint_id": "NULL",
        "provider_message_id": "''",
        "attempts": f"CASE WHEN {sent} THEN 1 ELSE 0 END",
        "next_attempt_at": "NULL",
        "lease_owner": "''",
        "lease_expires_at": "NULL",
        "last_error": "CASE WHEN status IN ('failed', 'bounced') THEN 'timeout' ELSE '' END",
        "created_at": at("secs"),
        "sent_at": when(sent, "5"),
        "delivered_at": when(delivered, "35"),
        "opened_at": when("status IN ('opened', 'clicked') AND channel = 'email'", "600 + h * 7"),
        "read_at": when("status IN ('read', 'clicked') AND channel = 'inapp'", "600 + h * 7"),
        "clicked_at": when("status = 'clicked'", "1200 + h * 7"),
        "failed_at": when("status = 'failed'", "5"),
    }
    names = [field.column for field in Delivery._meta.concrete_fields if not field.primary_key]
    missing = set(names) - set(columns)
    assert not missing, f"the seed does not fill {sorted(missing)}: add them to columns"
    outcome = """
        CASE
          WHEN h < 20 THEN 'suppressed'
          WHEN h < 35 THEN 'failed'
          WHEN h < 90 AND channel = 'email' THEN 'bounced'
          WHEN h < 200 THEN 'sent'
          WHEN h < 560 OR channel NOT IN ('email', 'inapp') THEN 'delivered'
          WHEN h < 860 THEN CASE channel WHEN 'inapp' THEN 'read' ELSE 'opened' END
          ELSE 'clicked'
        END"""
    statement = f"""
        WITH RECURSIVE n(i) AS (SELECT CAST(0 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i + 1 < %(n)s),
        spread AS (
          SELECT i, (i * 7919) % 1000 AS h, i * %(span)s / %(n)s AS secs,
                 CASE WHEN i % 20 < 9 THEN 'email' WHEN i % 20 < 15 THEN 'inapp' WHEN i % 20 < 18 THEN 'sms'
                      WHEN i % 20 = 18 THEN 'webpush' ELSE 'chat' END AS channel
          FROM n
        ),
        planned AS (SELECT spread.*, {outcome} AS status FROM spread)
        INSERT INTO {Delivery._meta.db_table} ({", ".join(names)})
        SELECT {", ".join(columns[name] for name in names)} FROM planned
    """
    statement = statement.replace(" % ", " %% ")  # modulo, beside the %(name)s parameters
    params = {"n": deliveries, "span": span, "first": first_sql}
    delivery, event = Delivery._meta.db_table, DeliveryEvent._meta.db_table
    # One receipt per outcome a provider or the tracker reports (the human opens feed the heatmap).
    receipts = " UNION ALL ".join(
        f"SELECT id, '{kind}', 'bench-page', NULL, {column}, {empty_json}, 1 FROM {delivery} "
        f"WHERE idempotency_key LIKE %(prefix)s AND {column} IS NOT NULL"
        for kind, column in [("sent", "sent_at"), ("delivered", "delivered_at"), ("opened", "opened_at"),
                             ("read", "read_at"), ("clicked", "clicked_at"), ("failed", "failed_at")]
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        cursor.execute(
            f"INSERT INTO {event} (delivery_id, kind, source, provider_event_id, occurred_at, data, hits) {receipts}",
            {"prefix": f"{PREFIX}%"},
        )
