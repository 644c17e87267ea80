"""Health endpoints for load balancers and monitors (JSON, never cached, no sign-in), Prometheus
metrics, and the staff "System status" page."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from .metrics import metrics_access_refusal, metrics_exposition
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


@csrf_exempt
@never_cache
@require_safe
def metrics(request) -> HttpResponse:
    """Prometheus metrics for the whole deployment, read from the database now (``ops.metrics``).

    No sign-in: a bearer token or an allowed client address is the authorisation; anything else
    is a 403 with a one-line reason.
    """
    refusal = metrics_access_refusal(request)
    if refusal:
        return HttpResponse(f"403 Forbidden: {refusal}\n", status=403, content_type="text/plain; charset=utf-8")
    from prometheus_client import CONTENT_TYPE_LATEST

    return HttpResponse(metrics_exposition(now=timezone.now()), content_type=CONTENT_TYPE_LATEST)


def system_status(request) -> HttpResponse:
    """The staff "System status" page (wrapped in ``admin_view``; ``system.view_status`` decides)."""
    from django.contrib import admin
    from django.core.exceptions import PermissionDenied
    from django.template.response import TemplateResponse
    from django.utils.translation import gettext as _

    from .status_page import status_context

    if not can_view_status(request):
        raise PermissionDenied
    request.current_app = admin.site.name
    context = {**admin.site.each_context(request), "title": _("System status"), **status_context(now=timezone.now())}
    return TemplateResponse(request, "ops/system_status.html", context)


def can_view_status(request) -> bool:
    """The sidebar entry's permission callback (``settings.UNFOLD``)."""
    from accounts.roles import allows

    return allows(request.user, "system.view_status")
