"""Mobile push as a ledger channel of its own (``mobilepush``), end to end through the real SDKs
(pyfcm + google-auth against the local FCM fake, aioapns against the local APNs fake): planning
finds each recipient's newest registered device because the adapter says so (``address_source =
"push_device"``), every outcome is recorded honestly, an uninstalled app's token is removed, the
devices reached are stamped as used (one UPDATE per batch), and an opt-out is honoured."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_adapters.checks import channels_configuration_check
from channels_adapters.devices import device_register
from channels_adapters.errors import ChannelConfigurationError
from channels_adapters.handler import channels
from channels_adapters.models import PushDevice
from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, Preference
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fcm(settings, fake_fcm):
    settings.NOTIFICATION_CHANNELS = {
        "mobilepush": {"BACKEND": "channels_adapters.mobilepush.MobilePushChannel", "OPTIONS": {
            "service_account": fake_fcm.service_account_info(), "base_url": fake_fcm.base_url, "timeout": 0.5}},
        "email": {"BACKEND": "channels_adapters.locmem.LocmemChannel", "OPTIONS": {}},
    }
    return fake_fcm


@pytest.fixture
def apns(settings, fake_apns):
    settings.NOTIFICATION_CHANNELS = {"mobilepush": {"BACKEND": "channels_adapters.apns.ApnsChannel", "OPTIONS": {
        "key": fake_apns.provider_key_pem, "key_id": fake_apns.key_id, "team_id": fake_apns.team_id,
        "topic": "com.example.shop", "endpoint": f"127.0.0.1:{fake_apns.port}", "ca_file": fake_apns.ca_file,
        "timeout": 0.5,
    }}}
    return fake_apns


@pytest.fixture
def orders(db):
    return Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)


def send_all_due() -> None:
    ids = list(Delivery.objects.due(timezone.now()).order_by("id").values_list("id", flat=True))
    if ids:
        ledger.deliveries_send(delivery_ids=ids)


def outcomes() -> dict[int, tuple[str, str]]:
    return {d.recipient_id: (d.status, d.status_reason) for d in Delivery.objects.all()}


def test_the_newest_device_gets_the_push_and_an_uninstalled_one_is_forgotten(fcm, orders):
    ada, bob, cy = UserFactory(), UserFactory(), UserFactory()
    device_register(user=ada, token="ada-old-phone")
    device_register(user=ada, token="ada-new-phone")
    device_register(user=bob, token="bob-uninstalled")
    fcm.unregistered.add("bob-uninstalled")

    notify([ada, bob, cy], title="Order shipped", body="On its way.", channels=["mobilepush"], category="orders",
           idempotency_key="push-1")
    send_all_due()

    assert [r.token for r in fcm.messages] == ["ada-new-phone"]
    assert fcm.messages[0].message["notification"] == {"title": "Order shipped", "body": "On its way."}
    status = outcomes()
    assert status[ada.pk][0] == "sent"
    assert status[bob.pk] == ("failed", "fcm:UNREGISTERED")
    assert status[cy.pk] == ("suppressed", "suppressed:no_address")  # no device: unreachable, with a reason
    assert set(PushDevice.objects.values_list("token", flat=True)) == {"ada-old-phone", "ada-new-phone"}
    used = dict(PushDevice.objects.values_list("token", "last_used_at"))
    assert used["ada-new-phone"] is not None and used["ada-old-phone"] is None


def test_fcm_success_permanent_transient_and_timeout_each_get_their_honest_outcome(fcm, orders):
    people = {kind: UserFactory() for kind in ("ok", "invalid", "quota", "slow")}
    for kind, user in people.items():
        device_register(user=user, token=f"{kind}-token")
    fcm.invalid.add("invalid-token")
    fcm.quota.add("quota-token")
    fcm.slow.add("slow-token")

    notify(list(people.values()), title="Order shipped", body="On its way.", channels=["mobilepush"],
           category="orders", idempotency_key="push")
    send_all_due()

    status = outcomes()
    assert status[people["ok"].pk][0] == "sent"
    assert status[people["invalid"].pk] == ("failed", "fcm:INVALID_ARGUMENT")
    assert status[people["quota"].pk][0] == "deferred"  # 429: retried later
    assert status[people["slow"].pk][0] == "unknown"  # it may have arrived: never re-sent blind
    assert PushDevice.objects.filter(token="invalid-token").exists()  # a bad request, not a gone app
    assert PushDevice.objects.get(token="ok-token").last_used_at is not None
    assert PushDevice.objects.filter(last_used_at__isnull=False).count() == 1


def test_the_devices_a_batch_reached_are_stamped_in_one_update(fcm, orders):
    people = [UserFactory() for _ in range(5)]
    for n, user in enumerate(people):
        device_register(user=user, token=f"phone-{n}")
    notify(people, title="Hi", body="Hello.", channels=["mobilepush"], category="orders", idempotency_key="hi")

    with CaptureQueriesContext(connection) as queries:
        send_all_due()

    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    stamps = [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "pushdevice" in q["sql"]]
    assert len(stamps) == 1
    assert len(set(PushDevice.objects.values_list("last_used_at", flat=True))) == 1  # one moment, all five


def test_apns_success_gone_transient_and_timeout_through_the_ledger(apns, orders):
    people = {kind: UserFactory() for kind in ("ok", "gone", "throttled", "slow")}
    tokens = {kind: f"{n:02x}" * 32 for n, kind in enumerate(people, start=1)}
    for kind, user in people.items():
        device_register(user=user, token=tokens[kind], platform=PushDevice.Platform.APNS)
    apns.unregistered.add(tokens["gone"])
    apns.throttled.add(tokens["throttled"])
    apns.slow.add(tokens["slow"])

    notify(list(people.values()), title="Order shipped", body="On its way.", url="https://shop.example.com/o/17",
           channels=["mobilepush"], category="orders", idempotency_key="apns")
    send_all_due()

    status = outcomes()
    assert status[people["ok"].pk][0] == "sent"
    assert status[people["gone"].pk] == ("failed", "apns:Unregistered")
    assert status[people["throttled"].pk] == ("deferred", "apns:TooManyRequests")
    assert status[people["slow"].pk][0] == "unknown"
    [delivered] = [m for m in apns.messages if m.token == tokens["ok"]]
    assert delivered.payload["aps"]["alert"] == {"title": "Order shipped", "body": "On its way."}
    assert not PushDevice.objects.filter(token=tokens["gone"]).exists()
    assert PushDevice.objects.get(token=tokens["ok"]).last_used_at is not None


def test_an_opt_out_of_mobile_push_is_honoured_and_leaves_email_alone(fcm):
    keen, opted_out = UserFactory(), UserFactory()
    device_register(user=keen, token="keen-phone")
    device_register(user=opted_out, token="quiet-phone")
    deals = Category.objects.create(key="deals", name="Deals", kind="marketing")
    Preference.objects.create(user=opted_out, category=deals, channel="mobilepush", enabled=False)

    notify([keen, opted_out], title="Sale", body="20% off.", channels=["mobilepush", "email"], category="deals",
           idempotency_key="sale")
    send_all_due()

    assert [r.token for r in fcm.messages] == ["keen-phone"]
    assert Delivery.objects.get(recipient=opted_out, channel="mobilepush").status_reason == "suppressed:opted_out"
    assert Delivery.objects.get(recipient=opted_out, channel="email").status == "sent"


@pytest.mark.parametrize("timeout", [0, -1, "soon"])
def test_a_push_timeout_that_cannot_wait_is_refused_when_configured(settings, fake_fcm, fake_apns, timeout):
    settings.NOTIFICATION_CHANNELS = {
        "mobilepush": {"BACKEND": "channels_adapters.mobilepush.MobilePushChannel", "OPTIONS": {
            "service_account": fake_fcm.service_account_info(), "timeout": timeout}},
        "ios": {"BACKEND": "channels_adapters.apns.ApnsChannel", "OPTIONS": {
            "key": fake_apns.provider_key_pem, "key_id": fake_apns.key_id, "team_id": fake_apns.team_id,
            "topic": "com.example.shop", "timeout": timeout}},
    }
    for alias in ("mobilepush", "ios"):
        with pytest.raises(ChannelConfigurationError, match="timeout must be a positive number of seconds"):
            channels[alias]
    errors = channels_configuration_check()
    assert [(e.id, "timeout" in e.msg) for e in errors] == [("signalbox.E202", True)] * 2
    assert {e.hint for e in errors} == {"Fix NOTIFICATION_CHANNELS['mobilepush']['OPTIONS'].",
                                        "Fix NOTIFICATION_CHANNELS['ios']['OPTIONS']."}
