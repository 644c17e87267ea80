"""Bad input is a 4xx problem document, never a 500 and never a delivery."""

from __future__ import annotations

import pytest

from notifications.models import Delivery

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["type"].startswith("/api/problems/") and body["title"]
    return body


@pytest.mark.parametrize("raw", [
    "{", "not json", "[1, 2]", "null", '"a string"', "{\"recipients\": }", "\x00\x01", "1e999999",
    "[" * 100_000 + "]" * 100_000,
    '{"recipients": [{"id": 1}], "title": "Hi", "context": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001,
], ids=["truncated", "text", "array", "null", "string", "syntax", "binary", "huge-number", "deep-array",
        "deep-object"])
def test_malformed_bodies_are_4xx(api, raw):
    response = api.call("POST", "/api/v1/notifications", raw=raw)
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize("body, field", [
    ({"recipients": "everyone", "title": "Hi"}, "recipients"),
    ({"recipients": [{"id": "one"}], "title": "Hi"}, "recipients.0.id"),
    ({"recipients": [{"id": 1, "email": "a@b.c"}], "title": "Hi"}, "recipients.0"),
    ({"recipients": [{"id": 1}], "title": "Hi", "channels": ["pigeon"]}, "channels.0"),
    ({"recipients": [{"id": 1}], "title": "Hi", "surprise": True}, "surprise"),
    ({"recipients": [{"id": 1}], "title": 42}, "title"),
    ({"recipients": [{"id": 1}]}, "body"),
    ({"recipients": [{"id": 1}], "title": "x" * 201}, "title"),
    ({"recipients": [{"id": 2**70}], "title": "Hi"}, "recipients.0.id"),
    ({"recipients": [], "title": "Hi"}, "recipients"),
])
def test_wrong_types_and_unknown_values_are_422_with_field_errors(api, recipient, body, field):
    result = assert_problem(api.post("/api/v1/notifications", body), 422)
    assert any(e["field"].startswith(field) for e in result["errors"]), result
    assert not Delivery.objects.exists()


def test_a_body_over_the_cap_is_413_before_it_is_read(api, settings):
    settings.SIGNALBOX_API_MAX_BODY_BYTES = 1000
    assert_problem(api.call("POST", "/api/v1/recipients/bulk", raw='{"recipients": [' + " " * 2000 + "]}"), 413)


def test_a_malformed_idempotency_key_is_422(api, recipient):
    response = api.post("/api/v1/notifications", {"recipients": [{"id": recipient.pk}], "title": "Hi"},
                        headers={"Idempotency-Key": "x" * 101})
    assert assert_problem(response, 422)["errors"][0]["field"] == "Idempotency-Key"


@pytest.mark.parametrize("query", ["cursor=abc", "cursor=-1", "cursor=99999999999999999999999", "channel=pigeon"])
def test_bad_query_parameters_are_422(api, query):
    assert_problem(api.get(f"/api/v1/suppressions?{query}"), 422)


@pytest.mark.parametrize("cursor", ["nope", "1.2.3", "99999999999999999999.1", "1." + "9" * 19])
def test_bad_inbox_cursors_are_422(api, recipient, cursor):
    token = api.post(f"/api/v1/recipients/{recipient.pk}/token", {}).json()["token"]
    from tests.api.conftest import ApiClient

    response = ApiClient(token).get(f"/api/v1/me/inbox?cursor={cursor}")
    assert 400 <= response.status_code < 500 and response["Content-Type"] == PROBLEM


def test_unknown_ids_in_the_path_are_404_problems(api):
    for path in ("/api/v1/deliveries/123456", "/api/v1/campaigns/123456", "/api/v1/recipients/123456/preferences"):
        assert_problem(api.get(path), 404)
    assert_problem(api.post("/api/v1/recipients/123456/token", {}), 404)


def test_a_non_integer_path_id_is_not_a_500(api):
    response = api.get("/api/v1/deliveries/abc")
    assert response.status_code == 404


def test_quiet_hours_with_a_zone_offset_are_422_not_a_database_error(api, recipient):
    # Found by schemathesis: SQLite refuses aware times, which made this a 500.
    response = api.call("PATCH", f"/api/v1/recipients/{recipient.pk}/preferences",
                        {"quiet_hours": {"start": "00:00:00Z", "end": "07:00:00"}})
    assert assert_problem(response, 422)["errors"][0]["field"] == "quiet_hours.start"


def test_problems_speak_the_callers_language(api):
    response = api.post("/api/v1/notifications", {"recipients": []}, headers={"Accept-Language": "zh-hans"})
    assert assert_problem(response, 422)["title"] == "请求无效。"


@pytest.mark.parametrize("raw", [
    '{"recipients": [{"id": %(id)d}], "title": "Hi", "context": {"x": NaN}}',
    '{"recipients": [{"id": %(id)d}], "title": "Hi", "context": {"x": -Infinity}}',
    '{"recipients": [{"id": %(id)d}], "title": "Hi", "context": {"x": 1e999}}',
    '{"recipients": [{"id": %(id)d}], "title": "a\\u0000b"}',
    '{"recipients": [{"id": %(id)d}], "title": "Hi", "context": {"deep": [{"k\\u0000": 1}]}}',
], ids=["nan", "infinity", "overflow", "nul-in-title", "nul-in-a-nested-key"])
def test_numbers_and_text_postgresql_cannot_store_are_400_on_every_database(api, recipient, raw):
    """SQLite stores NaN and NUL where PostgreSQL raises: both databases answer the same 400."""
    body = assert_problem(api.call("POST", "/api/v1/notifications", raw=raw % {"id": recipient.pk}), 400)
    assert body["detail"]
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/api/v1/broadcasts", {"title": "a\u0000b"}),
    ("POST", "/api/v1/suppressions", {"channel": "email", "address": "x@example.com", "note": "a\u0000"}),
    ("PUT", "/api/v1/recipients", {"external_id": "crm-\u00001", "email": "x@example.com"}),
])
def test_nul_in_any_body_is_400(api, method, path, body):
    assert_problem(api.call(method, path, body), 400)


@pytest.mark.parametrize("path", ["/api/v1/suppressions?address=a%00b", "/api/v1/me/inbox?cursor=%00",
                                  "/api/v1/recipients/crm%001"])
def test_nul_in_the_url_is_400(api, path):
    assert_problem(api.get(path), 400)


def test_nul_in_the_idempotency_key_is_400(api, recipient):
    response = api.post("/api/v1/notifications", {"recipients": [{"id": recipient.pk}], "title": "Hi"},
                        headers={"Idempotency-Key": "a\x00b"})
    assert_problem(response, 400)
    assert not Delivery.objects.exists()
