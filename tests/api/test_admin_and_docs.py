"""Keys in the admin (superusers only, shown once, revoked), and the schema and docs pages."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.roles import roles_ensure
from api.models import ApiKey
from notifications.models import AuditEntry
from tests.api.conftest import ApiClient
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_a_superuser_makes_a_key_sees_it_once_and_it_works(root):
    response = root.post("/admin/api/apikey/add/", {"name": "Shop backend", "scopes": ["notify", "campaigns:read"],
                                                    "rate_limit_per_minute": "120"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    secret = re.search(r"sbk_[0-9a-f]{12}_[A-Za-z0-9_\-]+", page)[0]
    key = ApiKey.objects.get()
    assert (key.name, key.scopes, key.rate_limit_per_minute) == ("Shop backend", ["campaigns:read", "notify"], 120)
    assert secret not in key.secret_hash
    assert ApiClient(secret).get("/api/v1/campaigns").status_code == 200
    # Shown once: the list and the key's own page never show it again.
    assert secret not in root.get("/admin/api/apikey/").content.decode()
    assert secret not in root.get(f"/admin/api/apikey/{key.pk}/change/").content.decode()
    assert AuditEntry.objects.filter(action="apikey.create", actor_repr="root").exists()


def test_revoking_in_the_admin_makes_the_key_401(root):
    from api.keys import api_key_create

    made = api_key_create(name="old", scopes=["campaigns:read"])
    root.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [made.key.pk]})
    assert ApiKey.objects.get().revoked_at is not None
    assert ApiClient(made.secret).get("/api/v1/campaigns").status_code == 401
    assert AuditEntry.objects.filter(action="apikey.revoke").count() == 1


@pytest.mark.parametrize("group", ["Marketers", "Operators", "Managers"])
def test_staff_roles_cannot_see_or_make_keys(client, group):
    roles_ensure()
    user = UserFactory(username=f"staff-{group}", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    assert client.get("/admin/api/apikey/").status_code == 403
    assert client.post("/admin/api/apikey/add/", {"name": "x", "scopes": ["notify"],
                                                  "rate_limit_per_minute": "1"}).status_code == 403
    assert not ApiKey.objects.exists()


def test_the_schema_is_openapi_3_and_lists_every_endpoint(client):
    schema = client.get("/api/schema/").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/notifications" in schema["paths"] and "/api/v1/me/inbox" in schema["paths"]
    errors = schema["paths"]["/api/v1/notifications"]["post"]["responses"]["422"]["content"]
    assert list(errors) == ["application/problem+json"]


def test_the_docs_load_only_local_files_under_the_strict_policy(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    assert "cdn" not in page.lower()
    policy = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy and "unsafe" not in policy
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert "<script>" not in page  # no inline script: the settings travel as JSON data


def test_the_sidebar_shows_api_keys_to_superusers_only(root, client):
    assert b"/admin/api/apikey/" in root.get("/admin/").content
    roles_ensure()
    manager = UserFactory(username="manager", is_staff=True)
    manager.groups.add(Group.objects.get(name="Managers"))
    client.force_login(manager)
    assert b"/admin/api/apikey/" not in client.get("/admin/").content


def test_the_schemas_channel_names_are_the_ledgers_channels():
    # api.schemas spells the channels out for the OpenAPI enum: a channel added to the ledger
    # must be added there too, or the API would refuse it.
    from typing import get_args

    from api.schemas import ChannelName
    from notifications.models import Channel

    assert set(get_args(ChannelName)) == set(Channel.values)
