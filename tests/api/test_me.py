"""The recipient's own endpoints (/api/v1/me/...): session (CSRF for writes) or a minted token."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api.tokens import recipient_token_mint
from notifications.api import broadcast
from notifications.models import Notification
from tests.api.conftest import ApiClient
from tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(api, recipient) -> ApiClient:
    """The recipient's app, holding a token its server minted through the API."""
    response = api.post(f"/api/v1/recipients/{recipient.pk}/token", {"ttl_seconds": 600})
    assert response.status_code == 200, response.content
    assert response.json()["expires_at"] > time.time()
    return ApiClient(response.json()["token"])


def test_inbox_pages_by_keyset_and_new_items_do_not_shift_them(app, recipient, other_recipient):
    start = timezone.now() - timedelta(hours=1)
    for i in range(5):
        NotificationFactory(recipient=recipient, title=f"n{i}", created_at=start + timedelta(minutes=i))
    NotificationFactory(recipient=other_recipient, title="not yours")
    first = app.get("/api/v1/me/inbox?limit=2").json()
    assert [i["title"] for i in first["items"]] == ["n4", "n3"] and first["unread"] == 5
    NotificationFactory(recipient=recipient, title="newest")  # arrives between pages
    second = app.get(f"/api/v1/me/inbox?limit=2&cursor={first['next_cursor']}").json()
    third = app.get(f"/api/v1/me/inbox?limit=2&cursor={second['next_cursor']}").json()
    assert [i["title"] for i in second["items"]] == ["n2", "n1"]
    assert [i["title"] for i in third["items"]] == ["n0"] and third["next_cursor"] is None


def test_inbox_pages_pin_their_query_count(app, recipient, django_assert_max_num_queries):
    for i in range(30):
        NotificationFactory(recipient=recipient, title=f"n{i}")
    broadcast(title="All hands")
    # key-free: the token's user (1), the page (1), the counts (1); the audit is only for server keys.
    with django_assert_max_num_queries(3):
        assert len(app.get("/api/v1/me/inbox?limit=25").json()["items"]) == 25


def test_mark_read_one_and_all_and_the_unread_count(app, recipient):
    notes = [NotificationFactory(recipient=recipient) for _ in range(3)]
    made = broadcast(title="Maintenance")
    assert app.get("/api/v1/me/inbox/unread-count").json() == {"unread": 4}
    assert app.post(f"/api/v1/me/inbox/notification-{notes[0].pk}/read").json() == {"unread": 3}
    assert app.post(f"/api/v1/me/inbox/broadcast-{made.pk}/read").json() == {"unread": 2}
    assert app.post("/api/v1/me/inbox/read-all").json() == {"changed": 2}
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_someone_elses_item_is_404(app, other_recipient):
    theirs = NotificationFactory(recipient=other_recipient)
    assert app.post(f"/api/v1/me/inbox/notification-{theirs.pk}/read").status_code == 404
    assert app.post("/api/v1/me/inbox/whatever-1/read").status_code == 404
    assert Notification.objects.get().read_at is None


def test_preferences_of_the_token_user(app, recipient):
    from tests.factories import CategoryFactory

    CategoryFactory(key="news")
    response = app.call("PATCH", "/api/v1/me/preferences", {"channels": {"news": {"sms": False}}})
    assert response.status_code == 200
    assert next(c for c in app.get("/api/v1/me/preferences").json()["categories"]
                if c["key"] == "news")["channels"]["sms"] is False


def test_a_tampered_expired_or_foreign_token_is_401(recipient):
    token, _expires = recipient_token_mint(user=recipient, ttl_seconds=60)
    expired, _ = recipient_token_mint(user=recipient, ttl_seconds=60, now=time.time() - 120)
    body, _, signature = token.rpartition(":")
    tampered = body + ":" + ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (tampered, expired, token + "x", "sbr_garbage", "sbk_x_y"):
        response = ApiClient(bad).get("/api/v1/me/inbox")
        assert response.status_code == 401, bad
    assert ApiClient(token).get("/api/v1/me/inbox").status_code == 200
    recipient.is_active = False
    recipient.save()
    assert ApiClient(token).get("/api/v1/me/inbox").status_code == 401


def test_a_token_dies_with_the_key_that_minted_it_and_when_its_person_becomes_staff(make_key, recipient):
    from api.keys import api_key_revoke

    made = make_key(["recipients:read", "recipients:write"])
    mint = ApiClient(made.secret).post(f"/api/v1/recipients/{recipient.pk}/token", {"ttl_seconds": 600})
    token = mint.json()["token"]
    assert ApiClient(token).get("/api/v1/me/inbox").status_code == 200
    api_key_revoke(key=made.key)
    assert ApiClient(token).get("/api/v1/me/inbox").status_code == 401

    other = make_key(["recipients:read", "recipients:write"])
    token = ApiClient(other.secret).post(f"/api/v1/recipients/{recipient.pk}/token", {}).json()["token"]
    recipient.is_staff = True
    recipient.save()
    assert ApiClient(token).get("/api/v1/me/inbox").status_code == 401


def test_a_server_key_is_not_a_recipient(api):
    assert api.get("/api/v1/me/inbox").status_code == 401


def test_the_session_works_and_writes_need_the_csrf_token(recipient):
    client = Client(enforce_csrf_checks=True)
    client.force_login(recipient)
    NotificationFactory(recipient=recipient)
    assert client.get("/api/v1/me/inbox/unread-count").json() == {"unread": 1}
    refused = client.post("/api/v1/me/inbox/read-all")
    assert refused.status_code == 403 and refused.json()["type"] == "/api/problems/csrf"
    client.get("/notifications/")  # the inbox page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert client.post("/api/v1/me/inbox/read-all", headers={"X-CSRFToken": token}).json() == {"changed": 1}


def test_anonymous_is_401():
    assert Client().get("/api/v1/me/inbox").status_code == 401


@pytest.mark.parametrize("role", ["is_staff", "is_superuser"])
def test_a_server_key_cannot_mint_a_token_for_a_staff_account(api, recipient, role):
    # A /me/ token acts as its user: for a staff account it would be the key standing in for them.
    setattr(recipient, role, True)
    recipient.save(update_fields=[role])
    response = api.post(f"/api/v1/recipients/{recipient.pk}/token", {"ttl_seconds": 600})
    assert response.status_code == 403, response.content
    assert response.json()["type"] == "/api/problems/staff-account"
    assert "token" not in response.json()


def test_inbox_pages_keep_every_item_that_shares_a_timestamp_and_an_id(app, recipient):
    # A notification and a broadcast can have the same created time and the same id (two tables):
    # the cursor names which of them a page ended on, so the next page starts with the other one.
    from notifications.models import Broadcast

    at = timezone.now() - timedelta(hours=1)
    broadcast(title="b")
    shared = Broadcast.objects.get()
    Broadcast.objects.filter(pk=shared.pk).update(id=10_000, created_at=at)
    NotificationFactory(recipient=recipient, title="n", id=10_000, created_at=at)
    NotificationFactory(recipient=recipient, title="older", id=9_999, created_at=at)
    recipient.date_joined = at - timedelta(days=1)
    recipient.save(update_fields=["date_joined"])
    seen, cursor = [], None
    for _page in range(5):
        page = app.get("/api/v1/me/inbox?limit=1" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["notification-10000", "broadcast-10000", "notification-9999"]
