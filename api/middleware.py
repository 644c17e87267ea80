"""Around every /api/ request: refuse an oversize body before anything reads it, and audit every
call made with a server key (one ``AuditEntry`` per call: which key, method, path, status)."""

from __future__ import annotations

from django.conf import settings

from notifications.services import audit_record

from .keys import api_key_touch
from .problems import too_large

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
        response = self.get_response(request)
        key = getattr(request, "api_key", None)
        if key is not None:
            api_key_touch(key=key)
            audit_record(actor=f"API key {key}", action="api.call", target=key,
                         changes={"method": request.method, "path": request.path[:200],
                                  "status": response.status_code})
        return response
