"""Web push subscriptions: one row per browser that allowed notifications.

The browser's ``PushSubscription`` gives the endpoint (a capability URL at the push service)
and the keys the payload is encrypted with. ``channels_adapters.views`` stores them;
``channels_adapters.webpush.WebPushChannel`` sends to them and deletes a row once the push
service says the subscription is gone (404/410).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class WebPushSubscription(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="webpush_subscriptions",
        verbose_name=_("user"),
    )
    endpoint = models.URLField(_("endpoint"), max_length=1000, unique=True)
    p256dh = models.CharField(_("P-256 public key"), max_length=200)
    auth = models.CharField(_("auth secret"), max_length=100)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("web push subscription")
        verbose_name_plural = _("web push subscriptions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} — {self.endpoint[:60]}"

    @property
    def subscription_info(self) -> dict:
        """The shape ``pywebpush.webpush`` (and the browser's ``toJSON()``) uses."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class CapturedMessage(models.Model):
    """A message the capture channel kept instead of sending (development, demos, staging).

    Staff read them in the admin's Outbox; nothing captured ever leaves the machine.
    """

    channel = models.CharField(_("channel"), max_length=32)
    address = models.CharField(_("address"), max_length=1000)
    subject = models.CharField(_("subject / title"), max_length=300, blank=True)
    text = models.TextField(_("text"), blank=True)
    html = models.TextField(_("HTML"), blank=True)
    url = models.CharField(_("link"), max_length=1000, blank=True)
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    delivery_id = models.BigIntegerField(_("delivery"), null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(_("captured at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("captured message")
        verbose_name_plural = _("outbox (captured messages)")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.channel} → {self.address}: {self.subject[:60]}"


class PushDevice(models.Model):
    """A mobile app installation that registered for push: its FCM registration token (Android,
    and iOS through Firebase) or APNs device token, kept per user.

    ``channels_adapters.devices`` registers and removes them (apps call `/api/v1/me/devices`); the mobile
    push adapter sends to a user's newest device and deletes a token once the provider answers
    that it is no longer registered.
    """

    class Platform(models.TextChoices):
        FCM = "fcm", "Firebase Cloud Messaging"
        APNS = "apns", "Apple Push Notification service"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_devices", verbose_name=_("user")
    )
    platform = models.CharField(_("platform"), max_length=8, choices=Platform.choices, default=Platform.FCM)
    token = models.CharField(_("device token"), max_length=512, unique=True)
    app_id = models.CharField(_("app"), max_length=200, blank=True, help_text=_("Bundle id or package name."))
    created_at = models.DateTimeField(_("registered at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("push device")
        verbose_name_plural = _("push devices")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="pushdevice_user_newest")]

    def __str__(self) -> str:
        return f"{self.user} — {self.platform} {self.token[:16]}…"
