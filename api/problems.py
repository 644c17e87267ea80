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

from .keys import RateLimited

logger = logging.getLogger(__name__)
CONTENT_TYPE = "application/problem+json"


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
    """A JSON body that parses but cannot be stored: a non-finite number, or NUL in a string."""


def _refuse_constant(name: str):
    raise BodyRefused(_("Numbers must be finite: %(value)s is not allowed.") % {"value": name})


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BodyRefused(_("Numbers must be finite: %(value)s is too large.") % {"value": text[:40]})
    return value


def has_nul(value) -> bool:
    """Whether any string in ``value`` (keys included, at any depth) holds the NUL character."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class StrictJSONParser(Parser):
    """JSON bodies as every supported database can store them. SQLite keeps ``NaN``, ``Infinity``
    and NUL characters that PostgreSQL refuses with an error at the INSERT, so they are refused
    here, with the same 400 on both."""

    def parse_body(self, request: HttpRequest):
        data = json.loads(request.body, parse_constant=_refuse_constant, parse_float=_finite_float)
        if has_nul(data):
            raise BodyRefused(_("Text may not contain the NUL character (\\u0000)."))
        return data


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
