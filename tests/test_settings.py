"""Settings come from the environment and are production-safe with DEBUG=0."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

PROD_ENV = {
    "PATH": "/usr/bin:/bin",
    "DEBUG": "0",
    "SECRET_KEY": "x7!k2p$Lq9@vR4mZ8#tW1nB6cY3hF5jD0sG-e_uA+oIwXyNbVzQr",
    "ALLOWED_HOSTS": "signalbox.example.com",
    "DJANGO_SETTINGS_MODULE": "config.settings",
}


def manage_py(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_check_deploy_is_clean_apart_from_tls_at_the_proxy(tmp_path):
    env = {**PROD_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}"}
    result = manage_py("check", "--deploy", "--fail-level", "ERROR", env=env)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    found = set(re.findall(r"\((\w+\.[WE]\d+)\)", output))
    # W004 (HSTS) and W008 (SSL redirect) belong to the TLS-terminating proxy in front of us.
    assert found <= {"security.W004", "security.W008"}, output


def test_production_without_secret_key_refuses_to_start(tmp_path):
    env = {k: v for k, v in PROD_ENV.items() if k != "SECRET_KEY"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'prod.sqlite3'}"
    result = manage_py("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_redis_url_switches_tasks_and_cache(tmp_path):
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.TASKS['default']['BACKEND'], s.CACHES['default']['BACKEND'], s.SIGNALBOX_LIVE_REDIS_URL]))"
    )
    base = {**PROD_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    embedded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, check=True)
    assert embedded.stdout.strip() == (
        '["django_tasks_db.DatabaseBackend", "django.core.cache.backends.locmem.LocMemCache", ""]'
    )
    scaled = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**base, "REDIS_URL": "redis://127.0.0.1:6379/3"},
        capture_output=True, text=True, check=True,
    )
    assert scaled.stdout.strip() == (
        '["django_tasks_rq.RQBackend", "django.core.cache.backends.redis.RedisCache", "redis://127.0.0.1:6379/3"]'
    )


def test_sqlite_runs_in_wal_with_immediate_transactions(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        assert connection.vendor == "postgresql"
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
