"""Content-Security-Policy on every response, with a per-request nonce for templates.

Two policies for HTML, chosen by path, and a locked-down one for everything else:

- **Recipient pages** (inbox, preferences, unsubscribe and token pages, sign-in, everything outside
  the admin): scripts and styles only from this site's static files (``STRICT``). No
  ``'unsafe-inline'``, no ``'unsafe-eval'``: an injected ``<script>``, ``onclick=`` or ``style=``
  does nothing. htmx runs with ``includeIndicatorStyles``/``allowEval`` off (the ``htmx-config``
  meta tag in ``notifications/base.html``); its indicator rules live in ``signalbox/app.css``.
- **The admin** (everything under the admin's URL prefix, our dashboard pages included):
  as strict as Unfold 0.91 allows (``ADMIN``). Two concessions, both Unfold's:
  ``'unsafe-eval'`` in ``script-src`` because Unfold ships Alpine.js's standard build, which
  compiles every ``x-data``/``x-bind``/``x-on`` expression with ``new Function`` (Alpine's CSP
  build cannot run Unfold's templates, which hold expressions rather than registered
  components); and ``'unsafe-inline'`` in ``style-src`` because Unfold writes its theme colours
  in an inline ``<style>``, Alpine binds ``style`` attributes, and htmx, plotly and Chart.js
  insert style elements. ``script-src`` stays without ``'unsafe-inline'``: Signalbox's own admin
  templates load their scripts from static files, and a nonce covers any inline script that must
  stay. (The one inline script in Unfold's own templates, ``unfold_crispy/layout/
  table_inline_formset.html``'s "add row" button, has no nonce and would be refused; Signalbox
  does not use that layout. Override the template with ``nonce="{{ csp_nonce }}"`` before using
  it.) Remote images are not allowed either (``img-src 'self' data:``): an email preview shows
  an image hosted elsewhere as missing. Email previews render in ``<iframe sandbox srcdoc>``:
  the frame inherits this policy, so the email's inline CSS shows and ``sandbox`` keeps its
  scripts from running.
- **Anything that is not HTML** (JSON, CSV, PDF, event streams, static files):
  ``default-src 'none'; frame-ancestors 'none'``; such a document, opened on its own, can load
  and run nothing.

A response that already carries the header (a view that set its own) keeps it.
``SIGNALBOX_CSP=0`` switches the header off: an emergency lever for a page the policy broke in
production, not a development mode. Under ``DEBUG`` Django's own error pages (which carry inline
CSS and JavaScript without a nonce in Django 5.2) go out without a policy.

Templates read the nonce as ``{{ csp_nonce }}`` (``csp_nonce`` context processor below); it is the
name django-htmx's ``{% htmx_script %}`` looks for, so htmx's own tags carry it too.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.deprecation import MiddlewareMixin

HEADER = "Content-Security-Policy"
NONCE = "{nonce}"

STRICT: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'", f"'nonce-{NONCE}'"),
    "style-src": ("'self'",),
    "img-src": ("'self'", "data:"),
    "connect-src": ("'self'",),
    "frame-ancestors": ("'none'",),
    "base-uri": ("'self'",),
    "form-action": ("'self'",),
    "object-src": ("'none'",),
}

ADMIN: dict[str, tuple[str, ...]] = {
    **STRICT,
    # Alpine.js (standard build, shipped by Unfold) evaluates its attribute expressions with
    # `new Function`; without this the sidebar, tabs, dropdowns and filters do not work.
    "script-src": ("'self'", f"'nonce-{NONCE}'", "'unsafe-eval'"),
    # Unfold's inline <style id="unfold-theme-colors">, Alpine `x-bind:style`, htmx's indicator
    # style, plotly's and Chart.js's injected styles; the previewed email's own CSS. No nonce
    # here: a nonce would make browsers ignore 'unsafe-inline'.
    "style-src": ("'self'", "'unsafe-inline'"),
}

NON_HTML = "default-src 'none'; frame-ancestors 'none'"


def render_policy(directives: dict[str, tuple[str, ...]], *, nonce: str) -> str:
    """The header value for ``directives`` with ``nonce`` filled in."""
    return "; ".join(
        f"{name} {' '.join(source.replace(NONCE, nonce) for source in sources)}"
        for name, sources in directives.items()
    )


def _admin_prefix() -> str | None:
    try:
        return reverse("admin:index")
    except NoReverseMatch:  # a URLconf without the admin
        return None


def _is_html(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";", 1)[0].strip().lower() in ("text/html", "")


def policy_for(request: HttpRequest, response: HttpResponse, *, nonce: str) -> str:
    """Which policy ``response`` to ``request`` gets (see the module docstring)."""
    if not _is_html(response):
        return NON_HTML
    prefix = _admin_prefix()
    if prefix and request.path.startswith(prefix):
        return render_policy(ADMIN, nonce=nonce)
    return render_policy(STRICT, nonce=nonce)


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Give every request a fresh nonce and every response a Content-Security-Policy.

    Invariants: with ``SIGNALBOX_CSP`` on, every response leaves with exactly one CSP header;
    the nonce in it is the one templates rendered for this request, unguessable (128 bits from
    ``secrets``) and never reused across requests.
    """

    def process_request(self, request: HttpRequest) -> None:
        if getattr(settings, "SIGNALBOX_CSP", True):
            request.csp_nonce = secrets.token_urlsafe(16)

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        nonce = getattr(request, "csp_nonce", None)
        if nonce is None or HEADER in response:
            return response
        if settings.DEBUG and response.status_code in (404, 500) and _is_html(response):
            return response  # Django's debug pages: inline CSS/JS without a nonce (see above)
        response[HEADER] = policy_for(request, response, nonce=nonce)
        return response


def csp_nonce(request: HttpRequest) -> dict[str, str | None]:
    """Context processor: ``{{ csp_nonce }}`` for ``<script nonce="...">`` (None when CSP is off)."""
    return {"csp_nonce": getattr(request, "csp_nonce", None)}
