"""Around every /api/ request: refuse an oversize body before anything reads it, answer an unknown
URL or method as a problem document too, and audit every call made with a server key (one
``AuditEntry`` per call: which key, method, path, status; calls refused for the rate limit are
counted in one entry per key per minute, ``api.keys.api_key_refusal_record``)."""

from __future__ import annotations

from django.conf import settings

from notifications.services import audit_record

from .keys import api_key_refusal_record, api_key_touch
from .problems import problem_response, too_large

PREFIX = "/api/"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def max_body_bytes() -> int:
    return int(getattr(settings, "SIGNALBOX_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


class ApiMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(PREFIX):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > max_body_bytes():
            return too_large()  # the body is never read
        if _nul_in_url(request):
            return _nul_refused()
        response = self.get_response(request)
        if response.status_code in (404, 405) and not response.get("Content-Type", "").startswith(
                ("application/json", "application/problem+json")):
            response = _as_problem(response)
        key = getattr(request, "api_key", None)
        if key is not None:
            api_key_touch(key=key)
            if response.status_code == 429:
                api_key_refusal_record(key=key, method=request.method, path=request.path)
                return response
            audit_record(actor=f"API key {key}", action="api.call", target=key,
                         changes={"method": request.method, "path": request.path[:200],
                                  "status": response.status_code})
        return response


def _nul_in_url(request) -> bool:
    """A NUL character in the path, the query or the Idempotency-Key: PostgreSQL refuses it in any
    text it is asked to compare or store, so the request is refused before a view runs."""
    query = request.META.get("QUERY_STRING", "")
    return ("\x00" in request.path or "\x00" in query or "%00" in query
            or "\x00" in request.META.get("HTTP_IDEMPOTENCY_KEY", ""))


def _nul_refused():
    from django.utils.translation import gettext as _

    return problem_response(status=400, slug="nul", title=_("The request cannot be accepted."),
                            detail=_("The URL or the Idempotency-Key contains a NUL character."))


def _as_problem(response):
    """Django's own 404 (no such URL) and ninja's 405 (no such method) as problem documents."""
    from django.utils.translation import gettext as _

    if response.status_code == 404:
        return problem_response(status=404, slug="not-found", title=_("Not found."))
    allow = response.get("Allow", "")
    return problem_response(status=405, slug="method", title=_("Method not allowed."),
                            detail=_("Allowed: %(methods)s") % {"methods": allow}, headers={"Allow": allow})
