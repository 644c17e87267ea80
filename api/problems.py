"""RFC 9457 problem details: every error the API gives is ``application/problem+json``.

``type`` is a stable URI naming the kind of problem (``/api/problems/<slug>``; not dereferenced),
``title`` says it in words, ``status`` repeats the HTTP status, ``detail`` says what happened this
time; a request that failed validation adds ``errors``, one per field (``{"field", "message"}``).
"""

from __future__ import annotations

import json
import logging

from django.core.exceptions import (
    ObjectDoesNotExist,
    PermissionDenied,
    RequestDataTooBig,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from notifications.jsonsafe import JSONInputError, json_loads_safe

from .keys import RateLimited

logger = logging.getLogger(__name__)
CONTENT_TYPE = "application/problem+json"
MAX_BODY_DEPTH = 32  # nesting levels of a request body (a template context is a few levels deep)


class ScopeMissing(Exception):
    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


class Problem(Exception):
    """Raised by endpoints: answered as a problem document with ``status``."""

    def __init__(self, status: int, slug: str, title: str, detail: str = "", errors: list[dict] | None = None) -> None:
        super().__init__(detail or title)
        self.status, self.slug, self.title, self.detail, self.errors = status, slug, title, detail, errors


def problem_response(
    *, status: int, slug: str, title: str, detail: str = "", errors: list[dict] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    body = {"type": f"/api/problems/{slug}", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    response = HttpResponse(json.dumps(body, ensure_ascii=False), status=status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _field(loc) -> str:
    return ".".join(str(part) for part in loc if part not in ("body", "payload")) or "body"


class BodyRefused(ValueError):
    """A body that is not JSON the API accepts (``notifications.jsonsafe``): not JSON, nested too
    deeply, a non-finite number, or a character no database stores (NUL, a lone surrogate)."""


class StrictJSONParser(Parser):
    """JSON bodies through the project's one loader for JSON from outside (``json_loads_safe``):
    SQLite keeps ``NaN``, ``Infinity`` and NUL characters that PostgreSQL refuses with an error at
    the INSERT, so they are refused here, with the same 400 on both. (The size is capped before the
    body is read, by ``api.middleware``.)"""

    def parse_body(self, request: HttpRequest):
        try:
            return json_loads_safe(request.body, max_chars=max(len(request.body), 1), max_depth=MAX_BODY_DEPTH)
        except JSONInputError as exc:
            raise BodyRefused(exc.message) from exc


def validation_errors(exc: NinjaValidationError) -> list[dict]:
    return [{"field": _field(error.get("loc", ())), "message": str(error.get("msg", ""))} for error in exc.errors]


def install(api) -> None:
    """Answer every error ``api`` raises as a problem document."""

    @api.exception_handler(NinjaValidationError)
    def _validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        return problem_response(status=422, slug="validation", title=_("The request is not valid."),
                                errors=validation_errors(exc))

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return problem_response(status=401, slug="unauthenticated", title=_("Authentication required."),
                                detail=_("Send a valid, unrevoked key or token as “Authorization: Bearer …”."),
                                headers={"WWW-Authenticate": "Bearer"})

    @api.exception_handler(ScopeMissing)
    def _scope(request: HttpRequest, exc: ScopeMissing) -> HttpResponse:
        return problem_response(status=403, slug="scope", title=_("This key may not do that."),
                                detail=_("The key lacks the scope “%(scope)s”.") % {"scope": exc.scope})

    @api.exception_handler(PermissionDenied)
    def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return problem_response(status=403, slug="forbidden", title=_("Forbidden."), detail=str(exc))

    @api.exception_handler(RateLimited)
    def _limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
        return problem_response(status=429, slug="rate-limit", title=_("Too many requests."),
                                detail=_("This key reached its rate limit; retry after %(seconds)s s.")
                                % {"seconds": exc.retry_after}, headers={"Retry-After": str(exc.retry_after)})

    @api.exception_handler(Problem)
    def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
        return problem_response(status=exc.status, slug=exc.slug, title=exc.title, detail=exc.detail,
                                errors=exc.errors)

    @api.exception_handler(DjangoValidationError)
    def _django_validation(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        if hasattr(exc, "error_dict"):
            errors = [{"field": name, "message": str(m)} for name, items in exc.message_dict.items() for m in items]
        else:
            errors = [{"field": "body", "message": str(m)} for m in exc.messages]
        return problem_response(status=422, slug="validation", title=_("The request is not valid."), errors=errors)

    @api.exception_handler(RequestDataTooBig)
    def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return too_large()

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return problem_response(status=404, slug="not-found", title=_("Not found."))

    @api.exception_handler(ObjectDoesNotExist)
    def _no_object(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
        return problem_response(status=404, slug="not-found", title=_("Not found."))

    @api.exception_handler(HttpError)
    def _http(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # ninja's own: a body that is not JSON (400), a CSRF failure (403), ...
        if isinstance(exc.__cause__, BodyRefused):
            return problem_response(status=400, slug="body", title=_("The request body cannot be accepted."),
                                    detail=str(exc.__cause__))
        return problem_response(status=exc.status_code, slug="http", title=str(exc.message))

    @api.exception_handler(Exception)
    def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("Unexpected error in the API: %s %s", request.method, request.path)
        return problem_response(status=500, slug="internal", title=_("Something went wrong on our side."))


def too_large() -> HttpResponse:
    return problem_response(status=413, slug="too-large", title=_("The request body is too large."))
