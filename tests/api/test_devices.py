"""/api/v1/me/devices: apps register their installation for mobile push, as their own user only."""

from __future__ import annotations

import pytest

from channels_adapters.models import PushDevice
from notifications.api import notify
from notifications.models import Delivery
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db

FCM_TOKEN = "dQw4w9WgXcQ:APA91bH-example_token-123"


def _app(api, user) -> ApiClient:
    response = api.post(f"/api/v1/recipients/{user.pk}/token", {"ttl_seconds": 600})
    assert response.status_code == 200, response.content
    return ApiClient(response.json()["token"])


def test_a_registered_device_makes_the_user_reachable_by_mobile_push(api, recipient):
    notify([recipient], title="Before", body="b", channels=["mobilepush"], idempotency_key="before")
    assert Delivery.objects.get(channel="mobilepush").status_reason == "suppressed:no_address"

    app = _app(api, recipient)
    response = app.post("/api/v1/me/devices", {"token": FCM_TOKEN, "platform": "fcm", "app_id": "shop.android"})
    assert response.status_code == 201, response.content
    assert response.json()["token"] == FCM_TOKEN and response.json()["last_used_at"] is None

    notify([recipient], title="After", body="a", channels=["mobilepush"], idempotency_key="after")
    after = Delivery.objects.filter(channel="mobilepush").latest("id")
    assert (after.status, after.status_reason) != ("suppressed", "suppressed:no_address")
    assert after.address == FCM_TOKEN  # planned to the token the app registered
    assert app.get("/api/v1/me/devices").json()["items"][0]["app_id"] == "shop.android"


def test_a_token_moves_to_whoever_registers_it_and_each_user_sees_and_removes_only_their_own(
    api, recipient, other_recipient
):
    ada, grace = _app(api, recipient), _app(api, other_recipient)
    assert ada.post("/api/v1/me/devices", {"token": FCM_TOKEN}).status_code == 201
    assert grace.post("/api/v1/me/devices", {"token": FCM_TOKEN, "platform": "fcm"}).status_code == 201
    assert PushDevice.objects.get(token=FCM_TOKEN).user == other_recipient  # the phone changed hands
    assert ada.get("/api/v1/me/devices").json() == {"items": []}

    assert ada.call("DELETE", f"/api/v1/me/devices/{FCM_TOKEN}").status_code == 404  # not Ada's any more
    assert grace.call("DELETE", f"/api/v1/me/devices/{FCM_TOKEN}").status_code == 204
    assert not PushDevice.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"token": "has a space"}, "token"),
    ({"token": "   "}, "token"),
    ({"token": "x" * 513}, "token"),
    ({"token": "abc", "platform": "blackberry"}, "platform"),
    ({"token": "abc", "owner": 1}, "owner"),
])
def test_bad_registrations_are_422_problems_and_store_nothing(api, recipient, body, field):
    response = _app(api, recipient).post("/api/v1/me/devices", body)
    assert response.status_code == 422, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert field in response.content.decode()
    assert not PushDevice.objects.exists()


def test_devices_need_the_user_not_a_server_key(api, make_key, recipient):
    assert ApiClient().post("/api/v1/me/devices", {"token": FCM_TOKEN}).status_code == 401
    assert api.post("/api/v1/me/devices", {"token": FCM_TOKEN}).status_code == 401  # a server key is no user
    assert not PushDevice.objects.exists()
