"""Outbound webhooks: the endpoints integrators register, and the signed posts to them.

A post is a delivery on the same ledger as every message (``WebhookMessage``, a proxy of
``Delivery`` with ``channel = "webhook"``); ``WebhookAttempt`` is one POST of it and what came back.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..querysets import WEBHOOK_CHANNEL
from .ledger import Delivery


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


class WebhookMessageManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(channel=WEBHOOK_CHANNEL)


class WebhookMessage(Delivery):
    """One event for one endpoint: a delivery on the ledger (``channel = "webhook"``) whose
    recipient is the endpoint (``webhook_endpoint``) rather than a person.

    The ledger's columns mean what they mean for every delivery: ``idempotency_key`` is
    ``webhook:<endpoint id>:<event key>`` (recording the same event twice makes one row, so an
    endpoint is never posted the same event under two ids), ``provider_message_id`` is the
    ``webhook-id`` every attempt carries, ``address`` the stream it is ordered in (one delivery,
    one run), ``content`` the event type and the JSON body, ``attempts``/``next_attempt_at``/
    the lease/``last_error`` as for any delivery.

    Statuses: ``planned`` (the first POST is due at ``next_attempt_at``), ``sending`` (claimed
    under a lease), ``deferred`` (a retry is due at ``next_attempt_at``; ``status_reason`` is
    ``unknown`` when the last POST went unanswered), and finally ``sent`` (only after a 2xx),
    ``failed`` or ``unknown`` (the last POST's answer never came: the receiver may have it).
    ``next_attempt_at`` is set exactly while a POST is owed. Messages of one stream go to an
    endpoint one at a time, in id order (``webhooks.sending``).
    """

    objects = WebhookMessageManager()

    class Meta:
        proxy = True
        verbose_name = _("webhook message")
        verbose_name_plural = _("webhook messages")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.webhook_endpoint_id} ({self.webhook_id})"

    @property
    def endpoint(self) -> WebhookEndpoint:
        return self.webhook_endpoint

    @property
    def webhook_id(self) -> str:
        return self.provider_message_id

    @property
    def event_type(self) -> str:
        return (self.content or {}).get("event_type", "")

    @property
    def payload(self) -> dict:
        return (self.content or {}).get("payload", {})

    @property
    def ordering_key(self) -> str:
        return self.address

    @property
    def outcome_unknown(self) -> bool:
        """The last POST went unanswered (final, or waiting for a retry)."""
        return self.status == Delivery.Status.UNKNOWN or self.status_reason == UNKNOWN_REASON


#: ``status_reason`` of a message waiting for a retry after a POST whose answer never came.
UNKNOWN_REASON = "unknown"
#: A POST is owed (the first or a retry, at ``next_attempt_at``); with ``sending``, not yet settled.
OWED = (Delivery.Status.PLANNED, Delivery.Status.DEFERRED)
WAITING = (*OWED, Delivery.Status.SENDING)


class WebhookAttempt(models.Model):
    class Outcome(models.TextChoices):
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Outcome unknown")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="webhook_attempts",
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
