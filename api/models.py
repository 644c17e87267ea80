"""Server keys for the REST API, and the integrator's own ids for recipients.

A key is shown once, when it is made (``api.keys.api_key_create``); the database keeps only a
public prefix to find it by and a SHA-256 of the whole secret. The secret carries 256 random
bits, so a fast hash is enough: nobody can guess their way to a preimage, and checking a key
costs one indexed lookup and one hash on every call (a password hasher would cost 100 ms).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    NOTIFY = "notify", _("Send notifications and broadcasts")
    RECIPIENTS_WRITE = "recipients:write", _("Create and change recipients, their preferences and suppressions")
    RECIPIENTS_READ = "recipients:read", _("Read recipients, their preferences and suppressions")
    EVENTS_READ = "events:read", _("Read delivery status and receipts")
    CAMPAIGNS_READ = "campaigns:read", _("Read campaigns and their progress")


class ApiKey(models.Model):
    """A server's key to the REST API: scoped, rate-limited, revocable, every call audited."""

    name = models.CharField(_("name"), max_length=120, help_text=_("Who uses it, e.g. “Shop backend”."))
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(_("secret hash"), max_length=64, editable=False)
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        _("rate limit per minute"), default=600, help_text=_("Calls a minute this key may make; more get 429.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ExternalId(models.Model):
    """The id an integrator's own system knows a recipient by (``external_id`` in the API)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_external_id", verbose_name=_("user")
    )
    external_id = models.CharField(_("external id"), max_length=255, unique=True)

    class Meta:
        verbose_name = _("external id")
        verbose_name_plural = _("external ids")

    def __str__(self) -> str:
        return self.external_id
