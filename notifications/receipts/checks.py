"""System checks of the notifications app, registered in ``NotificationsConfig.ready()``."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def anymail_webhook_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn when the webhook secret is set but the ESP in ``EMAIL_BACKEND`` lacks its webhook key:
    every tracking post would then be refused (403, see ``anymail_urls``) and receipts stop."""
    from .anymail_urls import ESP_TRACKING_VIEWS, webhook_secret_configured

    backend = getattr(settings, "EMAIL_BACKEND", "")
    if not webhook_secret_configured() or not backend.startswith("anymail.backends."):
        return []
    esp = backend.split(".")[2]
    view_class = ESP_TRACKING_VIEWS.get(esp)
    if view_class is None:
        return []
    try:
        view_class()  # anymail reads the ESP's webhook settings when it builds the view
    except ImproperlyConfigured as exc:
        return [checks.Warning(
            f"ANYMAIL_WEBHOOK_SECRET is set but the {esp} tracking webhook cannot verify requests: {exc}",
            hint="Set the ESP's webhook signing key; until then every tracking webhook is refused (403).",
            id="signalbox.W101",
        )]
    return []
