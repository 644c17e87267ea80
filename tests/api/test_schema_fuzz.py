"""schemathesis over the OpenAPI schema: every operation, with a valid key (or recipient token)
and without one; no 5xx, and every answer (status, content type, body) as the schema says.

Kept short (a handful of examples per operation) so the whole file runs in well under a minute;
the examples are generated, so a run with more (``SIGNALBOX_FUZZ_EXAMPLES``) explores further.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings

from api.keys import api_key_create
from api.models import Scope
from api.tokens import recipient_token_mint
from api.urls import api
from tests.factories import CategoryFactory, RecipientProfileFactory, UserFactory

EXAMPLES = int(os.environ.get("SIGNALBOX_FUZZ_EXAMPLES", "8"))
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


# The schema /api/schema/ serves, called through Django's WSGI handler in this process.
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(api.get_openapi_schema(path_prefix="/api/"))))
schema.app = WSGIHandler()


@pytest.fixture(autouse=True)
def _wsgi_in_the_test_transaction(settings):
    """As Django's own test client does: requests do not close the database connection (the
    test's transaction), and the WSGI client's host is allowed."""
    settings.ALLOWED_HOSTS = ["*"]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(db):
    CategoryFactory(key="system", kind="system", user_can_opt_out=False)
    person = RecipientProfileFactory(user=UserFactory(username="fuzz")).user
    key = api_key_create(name="fuzz", scopes=list(Scope.values), rate_limit_per_minute=100_000).secret
    token, _expires = recipient_token_mint(user=person, ttl_seconds=3600)
    return {"key": key, "token": token}


def _auth(case, credentials) -> dict:
    secret = credentials["token"] if case.path.startswith("/api/v1/me/") else credentials["key"]
    return {"Authorization": f"Bearer {secret}"}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_with_a_valid_key(case, credentials):
    case.call_and_validate(headers=_auth(case, credentials), checks=CHECKS)


@schema.parametrize()
@settings(max_examples=max(2, EXAMPLES // 4), deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_without_a_key(case, credentials):
    response = case.call_and_validate(checks=CHECKS)
    if case.path.startswith("/api/v1/"):
        assert response.status_code in (400, 401, 404, 405, 413, 422), response.text
