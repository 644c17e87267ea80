"""django-anymail's ESP tracking webhooks, mounted behind a guard (``/webhooks/anymail/<esp>/tracking/``).

Always mounted, and decided per request rather than at import: the same URL conf serves every
settings (tests override them) and no process needs a restart to agree with its settings.

The guard answers, before anymail runs or after it refuses:

* 404 while ``ANYMAIL["WEBHOOK_SECRET"]`` is empty: anymail would then accept unauthenticated
  posts for the ESPs whose only protection is that basic-auth secret.
* 403 for a missing or wrong basic-auth secret or ESP signature (anymail's own answer is a 400).
* 403 when the ESP's signing key (``MAILGUN_WEBHOOK_SIGNING_KEY``, ``POSTAL_WEBHOOK_KEY``,
  ``MANDRILL_WEBHOOK_KEY``...) is not configured: anymail raises ``ImproperlyConfigured`` while
  building its view, before any check, which was a 500. Nothing can be verified, so nothing is
  accepted, and an error is logged for the operator (``check`` warns about it too).

Only the tracking webhooks are mounted: Signalbox listens to ``anymail.signals.tracking``
(``receipts.anymail``) and nothing to inbound mail, so those endpoints would only be surface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

import anymail.urls
from anymail.exceptions import AnymailWebhookValidationFailure
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import URLPattern
from django.views.decorators.csrf import csrf_exempt

logger = logging.getLogger(__name__)

app_name = "anymail"


def webhook_secret_configured() -> bool:
    return bool(getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET"))


def guarded(view: Callable[..., HttpResponse], *, name: str) -> Callable[..., HttpResponse]:
    """``view`` (an anymail webhook view) answering 404/403 instead of accepting or failing, as
    the module docstring lists. Errors from our own receivers still propagate (a 500 makes the
    ESP retry, which is what a failed receipt needs)."""

    @csrf_exempt  # the ESP signs its posts; it has no CSRF token
    @wraps(view)
    def webhook(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not webhook_secret_configured():
            raise Http404("Anymail webhooks are not enabled.")
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            return HttpResponseForbidden("Missing or invalid webhook credentials.", content_type="text/plain")
        except ImproperlyConfigured as exc:
            logger.error("Anymail webhook %s refused a request: the ESP's webhook key is not configured (%s)",
                         name, exc)
            return HttpResponseForbidden("This webhook cannot verify requests.", content_type="text/plain")

    return webhook


def _tracking_patterns() -> list[URLPattern]:
    return [
        URLPattern(pattern.pattern, guarded(pattern.callback, name=pattern.name), pattern.default_args, pattern.name)
        for pattern in anymail.urls.urlpatterns
        if pattern.name and "inbound" not in pattern.name
    ]


urlpatterns = _tracking_patterns()

# The tracking view of each ESP, by the module name its email backend shares
# (``anymail.backends.mailgun.EmailBackend`` -> ``MailgunTrackingWebhookView``).
ESP_TRACKING_VIEWS = {
    pattern.callback.view_class.__module__.rsplit(".", 1)[-1]: pattern.callback.view_class
    for pattern in anymail.urls.urlpatterns
    if pattern.name and pattern.name.endswith("tracking_webhook")
}
