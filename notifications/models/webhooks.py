"""Outbound webhooks: the endpoints integrators register, and the outbox of signed posts to them.

``WebhookMessage`` is one event for one endpoint, unique on (endpoint, event_key): recording the
same event twice (a duplicated signal, a retried task) makes one row, so an endpoint is never
posted the same event under two ids. ``WebhookAttempt`` is one POST of a message and what came back.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WebhookEvent(models.TextChoices):
    """The events an endpoint may subscribe to (its ``events`` filter)."""

    DELIVERY_STATUS = "delivery.status_changed", _("Delivery status changed")
    RECEIPT = "delivery.receipt", _("Receipt (delivered, opened, clicked, read, bounced, complained)")
    UNSUBSCRIBED = "delivery.unsubscribed", _("Unsubscribed")
    CAMPAIGN_FINISHED = "campaign.finished", _("Campaign run finished")
    JOURNEY_GOAL = "journey.goal_reached", _("Journey goal reached")


#: Sent by the "send test event" button only; no endpoint subscribes to it.
TEST_EVENT = "webhook.test"


class WebhookEndpoint(models.Model):
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    events = models.JSONField(_("events"), default=list, blank=True,
                              help_text=_("The events posted to this endpoint."))
    enabled = models.BooleanField(_("enabled"), default=True)
    # Standard Webhooks secret ("whsec_" + base64). During a rotation the previous one signs too
    # until ``previous_secret_expires_at``, so receivers can switch without losing a post.
    secret = models.CharField(_("secret"), max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True, editable=False)
    disabled_reason = models.CharField(_("disabled because"), max_length=200, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("created by"), editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.description or self.url


class WebhookMessage(models.Model):
    """One event for one endpoint (the outbox row), and where its delivery stands.

    Invariants: ``next_attempt_at`` is set exactly while the message still waits for a POST
    (first or retry); ``sent`` only after a 2xx; a POST whose answer never came (a read timeout,
    a connection cut after the request left) is ``unknown``, never ``sent``. Messages with the
    same ``ordering_key`` (one delivery, one run) go to an endpoint one at a time, in id order.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Outcome unknown")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages",
                                 verbose_name=_("endpoint"))
    event_type = models.CharField(_("event"), max_length=40)
    event_key = models.CharField(_("event key"), max_length=200)
    ordering_key = models.CharField(_("ordering key"), max_length=100)
    webhook_id = models.CharField(_("webhook id"), max_length=40, unique=True)
    payload = models.JSONField(_("payload"), default=dict)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    first_attempt_at = models.DateTimeField(_("first attempt"), null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook message")
        verbose_name_plural = _("webhook messages")
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_key"], name="webhookmessage_once_per_endpoint"),
        ]
        indexes = [
            models.Index(fields=["endpoint", "next_attempt_at"], name="webhookmessage_due_idx"),
            models.Index(fields=["endpoint", "ordering_key", "id"], name="webhookmessage_order_idx"),
            # What /metrics and System status count across endpoints: the messages still waiting
            # (first POST or a retry) and the unknown outcomes; never the delivered history.
            models.Index(fields=["next_attempt_at"], condition=Q(next_attempt_at__isnull=False) | Q(status="unknown"),
                         name="webhookmessage_open_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.webhook_id})"


class WebhookAttempt(models.Model):
    class Outcome(models.TextChoices):
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Outcome unknown")

    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="attempt_log",
                                verbose_name=_("message"))
    attempted_at = models.DateTimeField(_("attempted"), default=timezone.now)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["pk"]
