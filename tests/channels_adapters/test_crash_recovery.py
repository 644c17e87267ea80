"""A worker SIGKILLed again and again mid-send, on a busy machine: outcomes stay honest.

Real parts throughout: a ``db_worker`` OS process sends through the real adapter to a provider
fake on 127.0.0.1 (the aiosmtpd sink, a fake Postmark API driven by django-anymail, fake Twilio,
Aliyun and Tencent Cloud SMS APIs driven by their SDKs, a JSON chat webhook through Apprise, the
WeChat Official Account API through wechatpy, FCM HTTP v1 through pyfcm and google-auth, APNs over
HTTP/2 through aioapns). Each fake is a thread of the test process, so it outlives every worker it
serves and counts what it received across kills. Two processes
burn CPU beside it (``while 1: pass``) so the worker is descheduled at awkward moments. It is
killed with SIGKILL at random moments; the lease sweeper and the lost-task backstop settle what
it left behind, and a last worker finishes the send. Then, per channel:

* ``at_most_once``: the provider received each delivery at most once;
* every recipient the provider never received is ``unknown`` in the ledger (nothing is lost
  without being accounted for), nothing is left ``sent`` that the provider does not have;
* ``unknown`` ≤ the adapter's concurrency × kills, and each kill left at most ``concurrency``
  deliveries in flight;
* ``at_least_once`` on a channel that may re-send after a lost lease (email): nothing is missing,
  and every duplicate carries the same Message-ID;
* ``at_least_once`` on one that may not (``features.safe_to_resend_after_lost_lease`` is False:
  WeChat, mobile push): exactly as ``at_most_once``, because a second template message or push is
  a second message.

``SIGNALBOX_CRASH_SEED`` replays a run's kill timings (the seed is in the failure message).
"""

from __future__ import annotations

import email
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from channels_adapters.handler import channels
from channels_adapters.models import PushDevice
from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, RecipientProfile
from tests.conftest import ROOT, child_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 1000
KILLS = 5
CONCURRENCY = 6
BATCH = 100  # deliveries per send task: kills land in many batches
LEASE_SECONDS = 3
LATENCY = 0.01  # every provider answers 10 ms after it has the message
UNSETTLED = ("planned", "deferred", "sending")


@dataclass
class Provider:
    """One channel's configuration and what its provider received, as (recipient, identity)."""

    alias: str
    options: dict
    received: Callable[[], list[tuple[str, str]]]
    recipient_of: Callable[[Delivery], str] = lambda delivery: delivery.address
    chat_url: str = ""  # recipients' personal chat webhooks live under it
    wechat: bool = False  # recipients follow the Official Account: each profile holds an openid
    device_platform: str = ""  # recipients registered one app installation on this push platform


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def start_cpu_burners() -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(2)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def recover() -> None:
    """What ``signalbox_scheduler`` does each tick, without its grace period."""
    ledger.deliveries_sweep_expired_leases()
    ledger.deliveries_requeue_stale(grace=timedelta(0))


def wait_until(condition: Callable[[], bool], *, seconds: float) -> None:
    """Poll ``condition`` (a busy machine makes every step slow: no fixed sleeps), running the
    scheduler's recovery tick twice a second meanwhile."""
    deadline = time.monotonic() + seconds
    last_recovery = time.monotonic()
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
        if time.monotonic() - last_recovery > 0.5:
            recover()
            last_recovery = time.monotonic()


def openid(i: int) -> str:
    return f"oCrash{i:022d}"  # 28 characters, as a real openid


def device_token(platform: str, i: int) -> str:
    return f"{i:064x}" if platform == PushDevice.Platform.APNS else f"fcm-crash-{i}"


def make_recipients(n: int, *, chat_url: str = "", wechat: bool = False, device_platform: str = "") -> list[int]:
    User = get_user_model()
    password = make_password(None)
    User.objects.bulk_create(
        User(username=f"k{i}", email=f"k{i}@example.com", password=password) for i in range(n)
    )
    users = list(User.objects.filter(username__startswith="k").order_by("id").values_list("id", flat=True))
    RecipientProfile.objects.bulk_create(
        RecipientProfile(user_id=pk, phone=f"+1415555{i:04d}",
                         chat_ids={**({"apprise": f"{chat_url}/hook/{i}"} if chat_url else {}),
                                   **({"wechat": openid(i)} if wechat else {})})
        for i, pk in enumerate(users)
    )
    if device_platform:
        PushDevice.objects.bulk_create(
            PushDevice(user_id=pk, platform=device_platform, token=device_token(device_platform, i))
            for i, pk in enumerate(users)
        )
    return users


def run_crash_test(provider: Provider, *, policy: str, settings) -> None:
    seed = int(os.environ.get("SIGNALBOX_CRASH_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    channels_setting = {provider.alias: provider.options}
    settings.NOTIFICATION_CHANNELS = channels_setting
    env = child_env(
        DJANGO_SETTINGS_MODULE="tests.channels_adapters.crash_settings",
        SIGNALBOX_TEST_CHANNELS=json.dumps(channels_setting), SIGNALBOX_LEASE_SECONDS=str(LEASE_SECONDS),
        SIGNALBOX_RETRY_BASE_SECONDS="1", SIGNALBOX_RETRY_MAX_SECONDS="2", TASK_BACKEND="db",
        TASKS_LOG_LEVEL="WARNING",
    )
    category = Category.objects.create(
        key="receipts", name="Receipts", kind="transactional", user_can_opt_out=False, resend_policy=policy
    )
    users = make_recipients(RECIPIENTS, chat_url=provider.chat_url, wechat=provider.wechat,
                            device_platform=provider.device_platform)
    notify(users, title="Your receipt", body="Thanks.", html="<p>Thanks.</p>", channels=[provider.alias],
           category=category, idempotency_key="crash-test")

    burners = start_cpu_burners()
    workers: list[subprocess.Popen] = []
    kills_mid_send, in_flight_at_kill = 0, []
    try:
        for _ in range(KILLS):
            worker = start_worker(env)
            workers.append(worker)
            # Wait until this worker has messages on the wire (its own leased rows, not the
            # provider's count, which a request the last worker left half-way may still raise),
            # then a random moment later, the next moment it has messages on the wire again:
            # short enough that five workers do not send everything between them (a kill after
            # the work ran out proves nothing). Meanwhile the scheduler's tick goes on: what
            # earlier kills stranded comes back once its lease ends.
            on_the_wire = Delivery.objects.filter(
                status="sending", status_reason=ledger.IN_FLIGHT, lease_owner__contains=f":{worker.pid}:"
            )
            wait_until(on_the_wire.exists, seconds=90)
            time.sleep(rng.uniform(0.02, 0.3))
            wait_until(on_the_wire.exists, seconds=30)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            its_rows = Delivery.objects.filter(status="sending", lease_owner__contains=f":{worker.pid}:")
            kills_mid_send += its_rows.exists()
            in_flight_at_kill.append(its_rows.filter(status_reason=ledger.IN_FLIGHT).count())
            recover()
        workers.append(start_worker(env))
        deadline = time.monotonic() + 150
        while Delivery.objects.filter(status__in=UNSETTLED).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
            recover()
    finally:
        stop(burners)
        stop(workers)

    deliveries = {provider.recipient_of(d): d for d in Delivery.objects.all()}
    unknown_reasons = Counter(d.status_reason for d in deliveries.values() if d.status == "unknown")
    context = (f"seed={seed} kills mid-send={kills_mid_send} in flight at each kill={in_flight_at_kill} "
               f"unknown by reason={dict(unknown_reasons)}")
    statuses = Counter(d.status for d in deliveries.values())
    identities: dict[str, set[str]] = defaultdict(set)
    receipts: Counter = Counter()
    for recipient, identity in provider.received():
        receipts[recipient] += 1
        identities[recipient].add(identity)
    missing = set(deliveries) - set(receipts)

    assert len(deliveries) == RECIPIENTS, context
    assert set(statuses) <= {"sent", "unknown"}, (statuses, context)
    assert set(receipts) <= set(deliveries), context
    # Lost and unaccounted = 0: whatever the provider does not have is unknown, never sent.
    assert {deliveries[r].status for r in missing} <= {"unknown"}, context
    assert statuses["unknown"] <= CONCURRENCY * KILLS, (statuses, context)
    assert all(n <= CONCURRENCY for n in in_flight_at_kill), context
    assert kills_mid_send >= 3, context  # the kills really landed mid-batch
    assert sum(in_flight_at_kill) >= 1, context  # and some with messages on the wire
    resends = policy == "at_least_once" and channels.features(provider.alias).safe_to_resend_after_lost_lease
    if not resends:
        assert max(receipts.values()) == 1, ({r: n for r, n in receipts.items() if n > 1}, context)
    else:
        assert missing == set(), context
        assert statuses == {"sent": RECIPIENTS}, (statuses, context)
        duplicated = {r: identities[r] for r, n in receipts.items() if n > 1}
        assert all(len(ids) == 1 for ids in duplicated.values()), (duplicated, context)


def message_id(raw: bytes) -> str:
    return (email.message_from_bytes(raw)["Message-ID"] or "").strip()


@pytest.fixture
def smtp_provider(smtp_sink) -> Provider:
    smtp_sink.handler.data_delay = LATENCY
    smtp_sink.handler.pipelining = True
    return Provider(
        alias="email",
        options={"BACKEND": "channels_adapters.email.EmailChannel", "OPTIONS": {
            "backend": "django.core.mail.backends.smtp.EmailBackend",
            "connection": {"host": smtp_sink.host, "port": smtp_sink.port, "timeout": 10},
            "from_email": "Signalbox <noreply@signalbox.test>", "concurrency": CONCURRENCY, "max_batch_size": BATCH,
        }},
        received=lambda: [(m.rcpt_tos[0], message_id(m.content)) for m in list(smtp_sink.handler.received)],
    )


@pytest.fixture
def esp_provider() -> Provider:
    from tests.fake_esp import FakePostmarkServer

    server = FakePostmarkServer("postmark-test-token", latency=LATENCY)
    server.start()
    try:
        yield Provider(
            alias="email",
            options={"BACKEND": "channels_adapters.email.EmailChannel", "OPTIONS": {
                "backend": "anymail.backends.postmark.EmailBackend",
                "connection": {"server_token": "postmark-test-token", "api_url": server.api_url},
                "from_email": "Signalbox <noreply@signalbox.test>", "concurrency": CONCURRENCY,
                "max_batch_size": BATCH,
            }},
            received=lambda: [(m.to, m.message_id_header) for m in list(server.received)],
        )
    finally:
        server.stop()


@pytest.fixture
def sms_provider() -> Provider:
    from tests.fake_twilio import FakeTwilioServer

    server = FakeTwilioServer("AC" + "0123456789abcdef" * 2, "fake-twilio-auth-token", latency=LATENCY)
    server.start()
    try:
        yield Provider(
            alias="sms",
            options={"BACKEND": "channels_adapters.sms.SmsChannel", "OPTIONS": {
                "account_sid": server.account_sid, "auth_token": server.auth_token, "from_number": "+15005550006",
                "base_url": server.base_url, "status_callback": "", "max_per_second": None,
                "concurrency": CONCURRENCY, "max_batch_size": BATCH,
            }},
            received=lambda: [(r.to, r.sid) for r in list(server.requests) if r.outcome == "accepted"],
        )
    finally:
        server.stop()


@pytest.fixture
def aliyun_provider() -> Provider:
    from tests.fake_aliyun import FakeAliyunServer

    server = FakeAliyunServer("LTAI-crash-test", "crash-secret", latency=LATENCY)
    server.start()
    try:
        yield Provider(
            alias="sms",
            options={"BACKEND": "channels_adapters.aliyun_sms.AliyunSmsChannel", "OPTIONS": {
                "access_key_id": server.access_key_id, "access_key_secret": server.access_key_secret,
                "base_url": server.base_url, "sign_name": "Signalbox",
                "default_template": {"template_code": "SMS_1", "text_param": "content"}, "max_per_second": None,
                "concurrency": CONCURRENCY, "max_batch_size": BATCH,
            }},
            received=lambda: [(r.phone, r.biz_id) for r in list(server.requests) if r.outcome == "accepted"],
            recipient_of=lambda delivery: delivery.address.lstrip("+"),
        )
    finally:
        server.stop()


@pytest.fixture
def tencent_provider() -> Provider:
    from tests.fake_tencent import FakeTencentServer

    server = FakeTencentServer("AKID-crash-test", "crash-secret", latency=LATENCY)
    server.start()
    try:
        yield Provider(
            alias="sms",
            options={"BACKEND": "channels_adapters.tencent_sms.TencentSmsChannel", "OPTIONS": {
                "secret_id": server.secret_id, "secret_key": server.secret_key, "sms_sdk_app_id": "1400000001",
                "base_url": server.base_url, "sign_name": "Signalbox",
                "default_template": {"template_code": "1", "text_param": "content"}, "max_per_second": None,
                "concurrency": CONCURRENCY, "max_batch_size": BATCH,
            }},
            received=lambda: [(r.phone, r.serial_no) for r in list(server.requests) if r.outcome == "accepted"],
        )
    finally:
        server.stop()


@pytest.fixture
def chat_provider(http_sink) -> Provider:
    http_sink.latency = LATENCY
    base = f"json://{http_sink.host}:{http_sink.port}"
    return Provider(
        alias="chat",
        options={"BACKEND": "channels_adapters.chat.ChatChannel", "OPTIONS": {
            "allow_private": True, "max_per_second": None, "concurrency": CONCURRENCY, "max_batch_size": BATCH,
        }},
        chat_url=base,
        received=lambda: [(r.path, "") for r in list(http_sink.received)],
        recipient_of=lambda delivery: urlsplit(delivery.address.replace("json://", "http://", 1)).path,
    )


@pytest.fixture
def wechat_provider() -> Provider:
    from tests.fake_wechat import FakeWeChatServer

    server = FakeWeChatServer("wx0123456789abcdef", "crash-wechat-secret", latency=LATENCY)
    server.start()
    try:
        yield Provider(
            alias="wechat",
            options={"BACKEND": "channels_adapters.wechat.WeChatChannel", "OPTIONS": {
                "app_id": server.app_id, "app_secret": server.app_secret, "base_url": server.base_url,
                "default_template": {"template_code": "tmpl-notice", "text_param": "first"}, "max_per_second": None,
                "concurrency": CONCURRENCY, "max_batch_size": BATCH,
            }},
            wechat=True,
            received=lambda: [(r.touser, str(r.msgid)) for r in list(server.requests) if r.outcome == "accepted"],
        )
    finally:
        server.stop()


@pytest.fixture
def fcm_provider() -> Provider:
    from tests.fake_fcm import FakeFcmServer

    server = FakeFcmServer(latency=LATENCY)
    server.start()
    try:
        yield Provider(
            alias="mobilepush",
            options={"BACKEND": "channels_adapters.mobilepush.MobilePushChannel", "OPTIONS": {
                "service_account": server.service_account_info(), "base_url": server.base_url,
                "concurrency": CONCURRENCY, "max_batch_size": BATCH,
            }},
            device_platform=PushDevice.Platform.FCM,
            received=lambda: [(r.token, r.name) for r in list(server.requests) if r.outcome == "accepted"],
        )
    finally:
        server.stop()


@pytest.fixture
def apns_provider() -> Provider:
    from tests.fake_apns import FakeApnsServer

    server = FakeApnsServer(latency=LATENCY)
    server.start()
    try:
        yield Provider(
            alias="mobilepush",
            options={"BACKEND": "channels_adapters.apns.ApnsChannel", "OPTIONS": {
                "key": server.provider_key_pem, "key_id": server.key_id, "team_id": server.team_id,
                "topic": "com.example.shop", "endpoint": f"127.0.0.1:{server.port}", "ca_file": server.ca_file,
                "concurrency": CONCURRENCY, "max_batch_size": BATCH,
            }},
            device_platform=PushDevice.Platform.APNS,
            received=lambda: [(r.token, r.apns_id) for r in list(server.requests) if r.outcome == "accepted"],
        )
    finally:
        server.stop()


@pytest.mark.parametrize("policy", ["at_most_once", "at_least_once"])
def test_smtp_worker_killed_mid_send(smtp_provider, policy, settings):
    run_crash_test(smtp_provider, policy=policy, settings=settings)


@pytest.mark.parametrize("policy", ["at_most_once", "at_least_once"])
def test_esp_worker_killed_mid_send(esp_provider, policy, settings):
    run_crash_test(esp_provider, policy=policy, settings=settings)


def test_twilio_worker_killed_mid_send(sms_provider, settings):
    run_crash_test(sms_provider, policy="at_most_once", settings=settings)


def test_aliyun_sms_worker_killed_mid_send(aliyun_provider, settings):
    run_crash_test(aliyun_provider, policy="at_most_once", settings=settings)


def test_tencent_sms_worker_killed_mid_send(tencent_provider, settings):
    run_crash_test(tencent_provider, policy="at_most_once", settings=settings)


def test_chat_webhook_worker_killed_mid_send(chat_provider, settings):
    run_crash_test(chat_provider, policy="at_most_once", settings=settings)


# A second template message or push is a second message: at_least_once behaves as at_most_once.
@pytest.mark.parametrize("policy", ["at_most_once", "at_least_once"])
def test_wechat_worker_killed_mid_send(wechat_provider, policy, settings):
    run_crash_test(wechat_provider, policy=policy, settings=settings)


@pytest.mark.parametrize("policy", ["at_most_once", "at_least_once"])
def test_fcm_worker_killed_mid_send(fcm_provider, policy, settings):
    run_crash_test(fcm_provider, policy=policy, settings=settings)


@pytest.mark.parametrize("policy", ["at_most_once", "at_least_once"])
def test_apns_worker_killed_mid_send(apns_provider, policy, settings):
    run_crash_test(apns_provider, policy=policy, settings=settings)
