"""Web push: the adapter against a local push service (``http_sink``), and the subscribe views."""

from __future__ import annotations

import base64
import json
import os

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.test import Client
from django.urls import reverse
from py_vapid import Vapid01

from tests.channels_adapters.helpers import send
from channels_adapters.base import OutboundMessage
from channels_adapters.errors import (
    ChannelConfigurationError,
    InvalidAddressError,
    PermanentChannelError,
    TransientChannelError,
)
from channels_adapters.handler import channels
from channels_adapters.models import WebPushSubscription

pytestmark = pytest.mark.django_db


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Browser:
    """A subscriber's key pair and auth secret, as a browser generates them."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.p256dh = b64url(point)
        self.auth_secret = os.urandom(16)
        self.auth = b64url(self.auth_secret)

    def decrypt(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm"))


@pytest.fixture(scope="module")
def vapid() -> Vapid01:
    key = Vapid01()
    key.generate_keys()
    return key


def vapid_pem(vapid: Vapid01) -> str:
    return vapid.private_pem().decode()


def vapid_raw(vapid: Vapid01) -> str:
    return b64url(vapid.private_key.private_numbers().private_value.to_bytes(32, "big"))


def vapid_public(vapid: Vapid01) -> str:
    return b64url(vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def verified_jwt_claims(token: str, vapid: Vapid01) -> dict:
    """The claims of an ES256 JWT, after checking it is signed by ``vapid``'s key."""
    header, claims, signature = token.split(".")
    raw = b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    vapid.public_key.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    return json.loads(b64url_decode(claims))


def push_channel(settings, vapid, **options):
    options = {"vapid_private_key": vapid_pem(vapid), "vapid_subject": "mailto:ops@signalbox.test", "ttl": 3600, "timeout": 5, **options}
    settings.NOTIFICATION_CHANNELS = {"webpush": {"BACKEND": "channels_adapters.webpush.WebPushChannel", "OPTIONS": options}}
    return channels["webpush"]


@pytest.fixture
def browser() -> Browser:
    return Browser()


@pytest.fixture
def subscription(django_user_model, http_sink, browser) -> WebPushSubscription:
    user = django_user_model.objects.create_user("ada", "ada@example.com", "pw")
    return WebPushSubscription.objects.create(
        user=user, endpoint=http_sink.url("/push/abc"), p256dh=browser.p256dh, auth=browser.auth
    )


def message(delivery_id: int, address: str, **kwargs) -> OutboundMessage:
    defaults = {"subject": "Order shipped", "text": "Your parcel is on its way", "url": "https://signalbox.test/o/7"}
    return OutboundMessage(delivery_id=delivery_id, address=address, **{**defaults, **kwargs})


# --- The adapter --------------------------------------------------------------------------


def test_a_batch_goes_over_concurrency_kept_alive_connections(settings, vapid, http_sink, browser, django_user_model):
    http_sink.status = 201
    http_sink.latency = 0.02  # every lane busy at once
    user = django_user_model.objects.create_user("ada", "ada@example.com", "pw")
    endpoints = [
        WebPushSubscription.objects.create(
            user=user, endpoint=http_sink.url(f"/push/{n}"), p256dh=browser.p256dh, auth=browser.auth
        ).endpoint
        for n in range(9)
    ]
    channel = push_channel(settings, vapid, allow_private=True, concurrency=3)

    results = send(channel, [message(n, endpoint) for n, endpoint in enumerate(endpoints)])

    assert all(result.ok for result in results), [r.error for r in results]
    assert sorted(request.path for request in http_sink.received) == sorted(f"/push/{n}" for n in range(9))
    assert len({request.peer for request in http_sink.received}) == 3
    # Subscriptions are touched by the calling thread, after each answer.
    assert WebPushSubscription.objects.filter(last_used_at__isnull=False).count() == 9


@pytest.mark.parametrize("key_form", [vapid_pem, vapid_raw])
def test_the_push_service_gets_an_encrypted_vapid_signed_post(settings, vapid, http_sink, subscription, browser, key_form):
    http_sink.status = 201
    http_sink.response_headers = {"Location": http_sink.url("/message/m-1")}
    channel = push_channel(settings, vapid, allow_private=True, vapid_private_key=key_form(vapid))

    [result] = send(channel, [message(1, subscription.endpoint)])

    assert result.ok, result.error
    assert result.provider_message_id == http_sink.url("/message/m-1")
    [request] = http_sink.received
    assert (request.method, request.path) == ("POST", "/push/abc")
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["ttl"] == "3600"
    scheme, _, params = headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert set(fields) == {"t", "k"}
    assert fields["k"] == vapid_public(vapid)
    claims = verified_jwt_claims(fields["t"], vapid)
    assert claims["aud"] == f"http://127.0.0.1:{http_sink.port}"
    assert claims["sub"] == "mailto:ops@signalbox.test"
    assert b"Order shipped" not in request.body
    assert browser.decrypt(request.body) == {
        "title": "Order shipped",
        "body": "Your parcel is on its way",
        "url": "https://signalbox.test/o/7",
    }
    subscription.refresh_from_db()
    assert subscription.last_used_at is not None


def test_without_a_location_header_the_provider_id_is_a_uuid(settings, vapid, http_sink, subscription):
    http_sink.status = 201
    channel = push_channel(settings, vapid, allow_private=True)
    [result] = send(channel, [message(1, subscription.endpoint)])
    assert result.ok and len(result.provider_message_id) == 32


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_deleted(settings, vapid, http_sink, subscription, status):
    http_sink.status = status
    channel = push_channel(settings, vapid, allow_private=True)

    [result] = send(channel, [message(1, subscription.endpoint)])

    assert isinstance(result.error, PermanentChannelError)
    assert result.error.reason == "webpush:gone"
    assert not WebPushSubscription.objects.filter(pk=subscription.pk).exists()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_overload_and_server_errors_are_transient(settings, vapid, http_sink, subscription, status):
    http_sink.status = status
    http_sink.response_headers = {"Retry-After": "30"}
    channel = push_channel(settings, vapid, allow_private=True)

    [result] = send(channel, [message(1, subscription.endpoint)])

    assert isinstance(result.error, TransientChannelError)
    assert result.error.retry_after == 30
    assert WebPushSubscription.objects.filter(pk=subscription.pk).exists()


@pytest.mark.parametrize("status", [400, 403, 413])
def test_other_client_errors_are_permanent_and_keep_the_subscription(settings, vapid, http_sink, subscription, status):
    http_sink.status = status
    channel = push_channel(settings, vapid, allow_private=True)
    [result] = send(channel, [message(1, subscription.endpoint)])
    assert type(result.error) is PermanentChannelError
    assert result.error.reason == f"webpush_{status}"
    assert WebPushSubscription.objects.filter(pk=subscription.pk).exists()


def test_a_redirect_is_not_followed(settings, vapid, http_sink, subscription):
    http_sink.status = 307
    http_sink.response_headers = {"Location": "http://169.254.169.254/latest/"}
    channel = push_channel(settings, vapid, allow_private=True)
    [result] = send(channel, [message(1, subscription.endpoint)])
    assert result.error.reason == "webpush:redirect"
    assert len(http_sink.received) == 1


def test_a_private_endpoint_is_refused_without_allow_private(settings, vapid, http_sink, subscription):
    channel = push_channel(settings, vapid)
    [result] = send(channel, [message(1, subscription.endpoint)])
    assert result.error.reason == "ssrf"
    assert http_sink.received == []


def test_an_unknown_endpoint_is_an_invalid_address(settings, vapid, http_sink, subscription):
    channel = push_channel(settings, vapid, allow_private=True)
    [result] = send(channel, [message(1, http_sink.url("/push/unknown"))])
    assert isinstance(result.error, InvalidAddressError)
    assert http_sink.received == []


def test_an_unreachable_push_service_is_transient(settings, vapid, subscription, unused_port):
    subscription.endpoint = f"http://127.0.0.1:{unused_port}/push/abc"
    subscription.save()
    channel = push_channel(settings, vapid, allow_private=True)
    [result] = send(channel, [message(1, subscription.endpoint)])
    assert isinstance(result.error, TransientChannelError)


def test_unusable_subscription_keys_are_permanent(settings, vapid, http_sink, subscription):
    subscription.p256dh = b64url(b"\x04" + b"\x01" * 64)  # not a point on the curve
    subscription.save()
    channel = push_channel(settings, vapid, allow_private=True)
    [result] = send(channel, [message(1, subscription.endpoint)])
    assert result.error.reason == "webpush:bad_keys"
    assert http_sink.received == []


def test_an_oversized_payload_is_refused_before_sending(settings, vapid, http_sink, subscription):
    channel = push_channel(settings, vapid, allow_private=True)
    [result] = send(channel, [message(1, subscription.endpoint, text="x" * 5000)])
    assert result.error.reason == "webpush:too_large"
    assert http_sink.received == []


@pytest.mark.parametrize(
    "options",
    [{"vapid_private_key": ""}, {"vapid_private_key": "not-a-key"}, {"vapid_subject": "ops@signalbox.test"}, {"unknown": 1},
     {"timeout": 0}, {"timeout": "soon"}],
)
def test_bad_options_are_configuration_errors(settings, vapid, options):
    with pytest.raises(ChannelConfigurationError):
        push_channel(settings, vapid, **options)


# --- The subscribe / unsubscribe views ------------------------------------------------------


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", "ada@example.com", "pw")


@pytest.fixture
def ada_client(ada) -> Client:
    client = Client()
    client.force_login(ada)
    return client


def subscription_json(browser: Browser, endpoint: str = "https://push.example/v1/abc") -> dict:
    return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": browser.p256dh, "auth": browser.auth}}


def post_json(client: Client, name: str, data, **extra):
    body = data if isinstance(data, (str, bytes)) else json.dumps(data)
    return client.post(reverse(f"push:{name}"), body, content_type="application/json", **extra)


def test_subscribe_stores_the_subscription_for_the_caller(ada_client, ada, browser):
    response = post_json(ada_client, "subscribe", subscription_json(browser), HTTP_USER_AGENT="Firefox/130")

    assert response.status_code == 201
    assert response.json()["created"] is True
    row = WebPushSubscription.objects.get()
    assert (row.user, row.endpoint, row.p256dh, row.auth, row.user_agent) == (
        ada, "https://push.example/v1/abc", browser.p256dh, browser.auth, "Firefox/130"
    )


def test_subscribing_again_updates_the_same_row(ada_client, browser, django_user_model):
    post_json(ada_client, "subscribe", subscription_json(browser))
    other_browser_keys = Browser()
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw")
    bob_client = Client()
    bob_client.force_login(bob)

    response = post_json(bob_client, "subscribe", subscription_json(other_browser_keys))

    assert response.status_code == 201
    assert response.json()["created"] is False
    row = WebPushSubscription.objects.get()
    assert (row.user, row.p256dh) == (bob, other_browser_keys.p256dh)


def bad_bodies(browser: Browser):
    good = subscription_json(browser)
    return [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"keys": good["keys"]}, '"endpoint"'),
        ({**good, "endpoint": 5}, '"endpoint"'),
        ({**good, "endpoint": "http://push.example/v1/abc"}, "https://"),
        ({**good, "endpoint": "javascript:alert(1)"}, "https://"),
        ({**good, "endpoint": "https://push.example/" + "a" * 1000}, "longer than"),
        ({"endpoint": good["endpoint"]}, '"keys"'),
        ({**good, "keys": {"auth": browser.auth}}, '"keys.p256dh"'),
        ({**good, "keys": {"p256dh": browser.p256dh}}, '"keys.auth"'),
        ({**good, "keys": {"p256dh": "@@@", "auth": browser.auth}}, '"keys.p256dh"'),
        ({**good, "keys": {"p256dh": b64url(b"\x04" * 10), "auth": browser.auth}}, '"keys.p256dh"'),
        ({**good, "keys": {"p256dh": browser.p256dh, "auth": b64url(b"short")}}, '"keys.auth"'),
    ]


@pytest.mark.parametrize("case", range(13))
def test_a_malformed_subscription_is_a_400_with_a_clear_error(ada_client, browser, case):
    body, expected = bad_bodies(browser)[case]

    response = post_json(ada_client, "subscribe", body)

    assert response.status_code == 400
    assert expected in response.json()["error"]
    assert not WebPushSubscription.objects.exists()


def test_an_http_endpoint_is_accepted_in_debug(ada_client, browser, settings):
    settings.DEBUG = True
    response = post_json(ada_client, "subscribe", subscription_json(browser, "http://127.0.0.1:9/push/x"))
    assert response.status_code == 201


def test_a_body_over_8_kb_is_413(ada_client, browser):
    body = {**subscription_json(browser), "padding": "x" * 8200}
    response = post_json(ada_client, "subscribe", body)
    assert response.status_code == 413
    assert not WebPushSubscription.objects.exists()


def test_get_is_405(ada_client):
    assert ada_client.get(reverse("push:subscribe")).status_code == 405
    assert ada_client.get(reverse("push:unsubscribe")).status_code == 405


def test_anonymous_callers_are_sent_to_the_login_page(client, browser):
    response = post_json(client, "subscribe", subscription_json(browser))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert not WebPushSubscription.objects.exists()


def test_csrf_is_enforced(ada, browser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ada)
    assert post_json(client, "subscribe", subscription_json(browser)).status_code == 403
    assert post_json(client, "unsubscribe", {"endpoint": "https://push.example/v1/abc"}).status_code == 403
    assert not WebPushSubscription.objects.exists()


def test_csrf_token_in_the_header_is_accepted(ada, browser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ada)
    client.get(reverse("notifications:inbox"))
    token = client.cookies["csrftoken"].value
    response = post_json(client, "subscribe", subscription_json(browser), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


def test_unsubscribe_deletes_the_callers_subscription(ada_client, browser):
    post_json(ada_client, "subscribe", subscription_json(browser))

    response = post_json(ada_client, "unsubscribe", {"endpoint": "https://push.example/v1/abc"})

    assert response.status_code == 204
    assert not WebPushSubscription.objects.exists()


def test_unsubscribing_another_users_endpoint_is_404_and_keeps_it(ada_client, browser, django_user_model):
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw")
    WebPushSubscription.objects.create(user=bob, endpoint="https://push.example/v1/bob", p256dh=browser.p256dh, auth=browser.auth)

    response = post_json(ada_client, "unsubscribe", {"endpoint": "https://push.example/v1/bob"})

    assert response.status_code == 404
    assert WebPushSubscription.objects.filter(user=bob).exists()


@pytest.mark.parametrize("body", ["nope", {"endpoint": ""}, {}])
def test_unsubscribe_with_a_malformed_body_is_400(ada_client, body):
    assert post_json(ada_client, "unsubscribe", body).status_code == 400


def test_the_admin_lists_subscriptions_read_only(admin_client, subscription):
    response = admin_client.get(reverse("admin:channels_adapters_webpushsubscription_changelist"))
    assert response.status_code == 200
    assert b"127.0.0.1" in response.content
    assert b"/push/abc" not in response.content  # the capability URL is not shown in the list
    assert admin_client.get(reverse("admin:channels_adapters_webpushsubscription_add")).status_code == 403
