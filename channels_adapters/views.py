"""Browsers register and drop their web push subscriptions here (JSON over POST, CSRF-protected).

``POST /push/subscribe/`` takes the browser's ``PushSubscription.toJSON()``::

    {"endpoint": "https://push.example/...", "keys": {"p256dh": "<base64url>", "auth": "<base64url>"}}

and stores it for the signed-in user (201). The same endpoint sent again, by the same or another
user, updates the row: an endpoint belongs to one browser, and the last person signed in there
owns it. ``POST /push/unsubscribe/`` with ``{"endpoint": ...}`` deletes the caller's row (204), or
answers 404 when the caller has no such subscription. Errors are JSON ``{"error": "..."}``.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from notifications.jsonsafe import JSONInputError, json_loads_safe

from .models import WebPushSubscription

MAX_BODY_BYTES = 8 * 1024
MAX_BODY_DEPTH = 8
ENDPOINT_MAX_LENGTH = WebPushSubscription._meta.get_field("endpoint").max_length


class BadRequest(Exception):
    """The body is not a usable subscription; the message is shown to the caller."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def error_response(error: BadRequest) -> JsonResponse:
    return JsonResponse({"error": error.message}, status=error.status)


def read_json(request: HttpRequest) -> dict:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
        raise BadRequest(f"The body is larger than {MAX_BODY_BYTES} bytes.", status=413)
    try:
        # A subscription nests two levels; the safe loader refuses deep nesting before parsing
        # (json.loads would recurse and raise RecursionError, a 500).
        data = json_loads_safe(request.body, max_chars=MAX_BODY_BYTES, max_depth=MAX_BODY_DEPTH)
    except JSONInputError as error:
        raise BadRequest("The body is not valid JSON." if error.code == "invalid" else error.message) from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    return data


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def clean_endpoint(data: dict) -> str:
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise BadRequest('"endpoint" is missing or not a string.')
    if len(endpoint) > ENDPOINT_MAX_LENGTH:
        raise BadRequest(f'"endpoint" is longer than {ENDPOINT_MAX_LENGTH} characters.')
    parts = urlsplit(endpoint)
    allowed = {"https", "http"} if settings.DEBUG else {"https"}
    if parts.scheme not in allowed or not parts.hostname:
        raise BadRequest('"endpoint" must be an https:// URL.')
    return endpoint


def clean_key(keys: dict, name: str, check) -> str:
    value = keys.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f'"keys.{name}" is missing or not a string.')
    try:
        raw = b64url_decode(value)
    except (binascii.Error, ValueError):
        raise BadRequest(f'"keys.{name}" is not base64url.') from None
    if not check(raw):
        raise BadRequest(f'"keys.{name}" has the wrong length or form.')
    return value


@login_required
@require_POST
def subscribe(request: HttpRequest) -> HttpResponse:
    try:
        data = read_json(request)
        endpoint = clean_endpoint(data)
        keys = data.get("keys")
        if not isinstance(keys, dict):
            raise BadRequest('"keys" is missing or not an object.')
        # p256dh: an uncompressed P-256 point; auth: a 16-byte secret (RFC 8291).
        p256dh = clean_key(keys, "p256dh", lambda raw: len(raw) == 65 and raw[0] == 4)
        auth = clean_key(keys, "auth", lambda raw: len(raw) == 16)
    except BadRequest as error:
        return error_response(error)
    subscription, created = WebPushSubscription.objects.update_or_create(
        endpoint=endpoint,
        defaults={
            "user": request.user,
            "p256dh": p256dh,
            "auth": auth,
            "user_agent": request.headers.get("User-Agent", "")[:300],
        },
    )
    return JsonResponse({"id": subscription.pk, "created": created}, status=201)


@login_required
@require_POST
def unsubscribe(request: HttpRequest) -> HttpResponse:
    try:
        endpoint = read_json(request).get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise BadRequest('"endpoint" is missing or not a string.')
    except BadRequest as error:
        return error_response(error)
    deleted, _ = WebPushSubscription.objects.filter(user=request.user, endpoint=endpoint).delete()
    if not deleted:
        return JsonResponse({"error": "You have no subscription with this endpoint."}, status=404)
    return HttpResponse(status=204)
