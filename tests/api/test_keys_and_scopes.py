"""Server keys: every endpoint refuses a key without its scope (403), a revoked or wrong key (401),
and counts calls against the key's limit (429 with Retry-After)."""

from __future__ import annotations

import pytest

from api.keys import KeyRefused, api_key_authenticate, api_key_revoke
from api.models import ApiKey, Scope
from notifications.models import AuditEntry
from tests.api.conftest import ALL_SCOPES, ApiClient

pytestmark = pytest.mark.django_db

# (method, path, scope, body): one call per server endpoint; a tuple of scopes where it needs each.
SERVER_CALLS = [
    ("POST", "/api/v1/notifications", Scope.NOTIFY, {"recipients": [{"id": 1}], "title": "Hi"}),
    ("POST", "/api/v1/broadcasts", Scope.NOTIFY, {"title": "Hi"}),
    ("POST", "/api/v1/journeys/welcome/enter", Scope.NOTIFY, {"recipients": [{"id": 1}]}),
    ("PUT", "/api/v1/recipients", Scope.RECIPIENTS_WRITE, {"email": "new@example.com"}),
    ("POST", "/api/v1/recipients/bulk", Scope.RECIPIENTS_WRITE, {"recipients": [{"email": "new@example.com"}]}),
    # A /me/ token reads and changes the person's inbox and preferences: both recipient scopes.
    ("POST", "/api/v1/recipients/1/token", (Scope.RECIPIENTS_READ, Scope.RECIPIENTS_WRITE), {}),
    ("GET", "/api/v1/recipients/1/preferences", Scope.RECIPIENTS_READ, None),
    ("PATCH", "/api/v1/recipients/1/preferences", Scope.RECIPIENTS_WRITE, {}),
    ("GET", "/api/v1/suppressions", Scope.RECIPIENTS_READ, None),
    ("POST", "/api/v1/suppressions", Scope.RECIPIENTS_WRITE, {"channel": "email", "address": "a@example.com"}),
    ("DELETE", "/api/v1/suppressions/1", Scope.RECIPIENTS_WRITE, None),
    ("GET", "/api/v1/deliveries/1", Scope.EVENTS_READ, None),
    ("GET", "/api/v1/campaigns", Scope.CAMPAIGNS_READ, None),
    ("GET", "/api/v1/campaigns/1", Scope.CAMPAIGNS_READ, None),
]


def _scopes(scope) -> list[str]:
    return list(scope) if isinstance(scope, tuple) else [scope]


def test_the_table_covers_every_server_operation_in_the_schema():
    from api.urls import api

    schema = api.get_openapi_schema()
    server_ops = {
        (method.upper(), path.replace("{recipient_id}", "1").replace("{suppression_id}", "1")
         .replace("{delivery_id}", "1").replace("{campaign_id}", "1").replace("{journey_key}", "welcome"))
        for path, ops in schema["paths"].items() for method, op in ops.items()
        if not path.startswith("/api/v1/me/") and path.startswith("/api/v1/")
    }
    assert server_ops == {(method, path) for method, path, _scope, _body in SERVER_CALLS}


@pytest.mark.parametrize(("method", "path", "scope", "body"), SERVER_CALLS, ids=[f"{m} {p}" for m, p, *_ in SERVER_CALLS])
def test_a_key_without_the_scope_gets_403_and_nothing_happens(make_key, method, path, scope, body):
    for needed in _scopes(scope):
        others = [s for s in ALL_SCOPES if s != needed]
        response = ApiClient(make_key(others).secret).call(method, path, body)
        assert response.status_code == 403, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["type"] == "/api/problems/scope" and needed in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "scope", "body"), SERVER_CALLS, ids=[f"{m} {p}" for m, p, *_ in SERVER_CALLS])
def test_a_revoked_wrong_or_missing_key_gets_401(make_key, method, path, scope, body):
    made = make_key(_scopes(scope))
    api_key_revoke(key=made.key)
    for secret in (made.secret, made.secret[:-2] + "xx", "sbk_nope_nope", "", None):
        response = ApiClient(secret).call(method, path, body)
        assert response.status_code == 401, (secret, response.content)
        assert response["WWW-Authenticate"] == "Bearer"
        assert response.json()["status"] == 401


@pytest.mark.parametrize(("method", "path", "scope", "body"), SERVER_CALLS, ids=[f"{m} {p}" for m, p, *_ in SERVER_CALLS])
def test_a_key_with_the_scope_is_let_through(make_key, method, path, scope, body):
    response = ApiClient(make_key(_scopes(scope)).secret).call(method, path, body)
    assert response.status_code not in (401, 403, 500), response.content


def test_only_a_hash_is_stored_and_the_key_checks_out(make_key):
    made = make_key(["notify"])
    row = ApiKey.objects.get()
    assert made.secret.startswith(f"sbk_{row.prefix}_")
    assert made.secret not in str(list(ApiKey.objects.values()))
    assert api_key_authenticate(made.secret) == row
    with pytest.raises(KeyRefused):
        api_key_authenticate(made.secret + "x")


def test_last_used_is_written_once_a_minute_not_on_every_call(api):
    api.get("/api/v1/campaigns")
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    api.get("/api/v1/campaigns")
    assert ApiKey.objects.get().last_used_at == first
    assert AuditEntry.objects.filter(action="api.call").count() == 2


def test_over_the_limit_is_429_with_retry_after(make_key):
    client = ApiClient(make_key(["campaigns:read"], rate_limit_per_minute=3).secret)
    answers = [client.get("/api/v1/campaigns") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    assert answers[-1].json()["type"] == "/api/problems/rate-limit"
    # Another key has its own window.
    assert ApiClient(make_key(["campaigns:read"]).secret).get("/api/v1/campaigns").status_code == 200


def test_refusals_over_the_limit_are_audited_as_one_counted_entry_per_minute(make_key):
    # A key hammering past its limit must not add an audit row per refused call; each is counted.
    client = ApiClient(make_key(["campaigns:read"], rate_limit_per_minute=1).secret)
    statuses = [client.get("/api/v1/campaigns").status_code for _ in range(6)]
    refused = statuses.count(429)
    assert refused >= 4  # 5, unless a minute began during the loop
    assert AuditEntry.objects.filter(action="api.call").count() == statuses.count(200)
    entries = AuditEntry.objects.filter(action="api.rate_limited")
    assert 1 <= entries.count() <= 2 and sum(e.changes["count"] for e in entries) == refused
    assert entries.first().changes["path"] == "/api/v1/campaigns"
