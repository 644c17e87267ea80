"""Settings come from the environment and are production-safe with DEBUG=0."""

from __future__ import annotations

import json
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


def test_prepared_statements_are_off_behind_a_pooler_unless_asked_for(tmp_path):
    code = "import django; django.setup(); from django.conf import settings as s; print(s.SIGNALBOX_PREPARED_STATEMENTS)"

    def prepared(url: str, **extra: str) -> str:
        env = {**PROD_ENV, "DATABASE_URL": url, **extra}
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    direct = "postgres://signalbox@127.0.0.1:5432/signalbox"
    pooled = "postgres://signalbox@127.0.0.1:6432/signalbox?disable_server_side_cursors=true"
    assert prepared(direct) == "True"
    assert prepared(pooled) == "False"  # Django's setting for a transaction-mode pooler
    assert prepared(pooled, DATABASE_PREPARED_STATEMENTS="1") == "True"  # PgBouncer >= 1.21 keeps them
    assert prepared(direct, DATABASE_PREPARED_STATEMENTS="0") == "False"


def test_sqlite_runs_in_wal_with_immediate_transactions(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        assert connection.vendor == "postgresql"
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


CHANNELS_CODE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({a: [c['BACKEND'], c['OPTIONS']] for a, c in s.NOTIFICATION_CHANNELS.items()}))"
)


def channels_under(env: dict[str, str], tmp_path) -> dict:
    base = {**PROD_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    result = subprocess.run([sys.executable, "-c", CHANNELS_CODE], cwd=ROOT, env={**base, **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sms_provider_and_options_come_from_the_environment_once_its_credential_is_set(tmp_path):
    capture = "channels_adapters.capture.CaptureChannel"
    options = {"sign_name": "Signalbox", "default_template": {"template_code": "SMS_2", "text_param": "content"}}
    chosen = {"SIGNALBOX_SMS_PROVIDER": "aliyun", "SIGNALBOX_SMS_OPTIONS": json.dumps(options)}

    # Chosen but without its credential: captured (a Twilio SID does not count for Aliyun).
    assert channels_under({**chosen, "TWILIO_ACCOUNT_SID": "AC1"}, tmp_path)["sms"] == [capture, {}]
    live = channels_under({**chosen, "ALIYUN_ACCESS_KEY_ID": "LTAI-1"}, tmp_path)["sms"]
    assert live == ["channels_adapters.aliyun_sms.AliyunSmsChannel", options]
    tencent = channels_under({"SIGNALBOX_SMS_PROVIDER": "tencent", "TENCENTCLOUD_SECRET_ID": "AKID1"}, tmp_path)
    assert tencent["sms"] == ["channels_adapters.tencent_sms.TencentSmsChannel", {}]
    # The default provider is Twilio; SIGNALBOX_CAPTURE=1 captures even with a credential.
    assert channels_under({"TWILIO_ACCOUNT_SID": "AC1"}, tmp_path)["sms"][0] == "channels_adapters.sms.SmsChannel"
    assert channels_under({**chosen, "ALIYUN_ACCESS_KEY_ID": "LTAI-1", "SIGNALBOX_CAPTURE": "1"}, tmp_path)["sms"] == [
        capture, {}]


def test_an_unknown_sms_provider_stops_start_up_with_the_choices(tmp_path):
    env = {**PROD_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "SIGNALBOX_SMS_PROVIDER": "nexmo"}
    result = manage_py("check", env=env)
    assert result.returncode != 0
    assert "SIGNALBOX_SMS_PROVIDER must be one of twilio, aliyun, tencent, not 'nexmo'" in result.stderr


def test_wechat_and_mobile_push_are_captured_until_their_provider_is_configured(tmp_path):
    capture = "channels_adapters.capture.CaptureChannel"
    bare = channels_under({}, tmp_path)
    assert bare["wechat"] == bare["mobilepush"] == [capture, {}]
    wechat_options = {"default_template": {"template_code": "tmpl-notice", "text_param": "first"}}
    live = channels_under({"WECHAT_APP_ID": "wx1", "WECHAT_APP_SECRET": "s",
                           "SIGNALBOX_WECHAT_OPTIONS": json.dumps(wechat_options), "APNS_KEY": "/etc/apns.p8"}, tmp_path)
    assert live["wechat"] == ["channels_adapters.wechat.WeChatChannel", wechat_options]
    assert live["mobilepush"][0] == "channels_adapters.apns.ApnsChannel"
    fcm = channels_under({"FCM_SERVICE_ACCOUNT_FILE": "/etc/fcm.json", "APNS_KEY": "/etc/apns.p8"}, tmp_path)
    assert fcm["mobilepush"][0] == "channels_adapters.mobilepush.MobilePushChannel"
