from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking

        from .receipts.anymail import tracking_receive

        # No sender: anymail sends ``tracking`` with the ESP's webhook view class as sender
        # (PostmarkTrackingWebhookView, SendGridTrackingWebhookView, ...), which depends on the
        # ESP in use, so we take every sender. dispatch_uid keeps it connected once.
        tracking.connect(tracking_receive, dispatch_uid="notifications.receipts.anymail.tracking_receive")

        from . import triggers

        triggers.connect_receivers()

        from django.core import checks

        from .receipts.checks import anymail_webhook_check

        checks.register(anymail_webhook_check, checks.Tags.security)
