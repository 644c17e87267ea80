"""Fixtures for the REST API: keys with chosen scopes, and a client that sends them."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from api.keys import api_key_create
from api.models import Scope

ALL_SCOPES = list(Scope.values)


class ApiClient:
    """The test client with ``Authorization: Bearer <secret>`` and JSON bodies."""

    def __init__(self, secret: str | None = None, client: Client | None = None) -> None:
        self.client = client or Client()
        self.secret = secret

    def _headers(self, headers: dict | None) -> dict:
        out = dict(headers or {})
        if self.secret:
            out.setdefault("Authorization", f"Bearer {self.secret}")
        return out

    def call(self, method: str, path: str, body=None, *, headers: dict | None = None, raw: bytes | str | None = None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"headers": self._headers(headers)}
        if data is not None:
            kwargs.update(data=data, content_type="application/json")
        return getattr(self.client, method.lower())(path, **kwargs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)


@pytest.fixture
def make_key(db):
    def make(scopes=ALL_SCOPES, *, rate_limit_per_minute=600, name="Test server"):
        return api_key_create(name=name, scopes=list(scopes), rate_limit_per_minute=rate_limit_per_minute)
    return make


@pytest.fixture
def api(make_key) -> ApiClient:
    """A client holding a key with every scope."""
    return ApiClient(make_key().secret)


@pytest.fixture(autouse=True)
def system_category(db):
    """notify()'s default category when neither the call nor the template names one."""
    from tests.factories import CategoryFactory

    return CategoryFactory(key="system", name="System", kind="system", user_can_opt_out=False)
