"""Health endpoints for load balancers and monitors: JSON, never cached, no sign-in."""

from __future__ import annotations

from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .selectors import readiness


@never_cache
@require_safe
def healthz(request) -> JsonResponse:
    """The process answers. Touches nothing else (no database), so it stays cheap and says only that."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request) -> JsonResponse:
    """200 when the database, Redis (if configured), a worker and the scheduler are all fine, else 503."""
    result = readiness(now=timezone.now())
    return JsonResponse(
        {"status": "ok" if result.ok else "unavailable", "checks": {c.name: c.as_json() for c in result.checks}},
        status=200 if result.ok else 503,
    )
