"""``POST /push/subscribe/`` against hostile JSON: deep nesting within the 8 KB cap, NaN, NUL.

Each used to be a 500 (``RecursionError`` from ``json.loads``, or a database that refuses the
value); now each is a 400 with a JSON error and nothing is stored.
"""

from __future__ import annotations

import base64
import json

import pytest
from django.urls import reverse

from channels_adapters.models import WebPushSubscription

pytestmark = pytest.mark.django_db

SUBSCRIBE = reverse("push:subscribe")
P256DH = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode().rstrip("=")
AUTH = base64.urlsafe_b64encode(b"\x02" * 16).decode().rstrip("=")


def good_body(**extra) -> dict:
    return {"endpoint": "https://push.example/v1/abc", "keys": {"p256dh": P256DH, "auth": AUTH}, **extra}


def nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


HOSTILE = {
    "4,000 nested lists": "[" * 4000 + "]" * 4000,
    "8,000 unclosed brackets": "[" * 8000,
    "1,300 nested objects": nested_object(1300),
    "nesting inside a valid subscription": json.dumps(good_body())[:-1] + ', "x": ' + "[" * 3000 + "]" * 3000 + "}",
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_deeply_nested_json_is_a_400_not_a_500(recipient_client, body):
    assert len(body.encode()) <= 8 * 1024  # inside the body cap: only the nesting is hostile

    response = recipient_client.post(SUBSCRIBE, body, content_type="application/json")

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]
    assert not WebPushSubscription.objects.exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"endpoint": NaN}', "not valid JSON"),
        (json.dumps(good_body(endpoint="https://push.example/\u0000")), "cannot be stored"),
        ('{"endpoint": "https://push.example/\\ud800"}', "cannot be stored"),
        (b'{"endpoint": "\xff"}', "not valid JSON"),
    ],
    ids=["NaN", "NUL", "lone surrogate", "not UTF-8"],
)
def test_json_a_database_would_refuse_is_a_400(recipient_client, body, expected):
    response = recipient_client.post(SUBSCRIBE, body, content_type="application/json")

    assert response.status_code == 400
    assert expected in response.json()["error"]
    assert not WebPushSubscription.objects.exists()


def test_unsubscribe_answers_nested_json_with_a_400_too(recipient_client):
    response = recipient_client.post(reverse("push:unsubscribe"), "[" * 5000, content_type="application/json")
    assert response.status_code == 400


def test_a_good_subscription_still_works(recipient_client, recipient):
    response = recipient_client.post(SUBSCRIBE, json.dumps(good_body()), content_type="application/json")
    assert response.status_code == 201
    assert WebPushSubscription.objects.get().user == recipient
