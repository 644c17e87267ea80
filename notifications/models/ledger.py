"""The Signalbox domain: recipients, their choices, the inbox and the delivery ledger.

Models hold fields, constraints and small properties only. Every state change goes through a
room's services (``notifications.ledger``, ``inbox.services``, ``campaigns.services``, ...); reads
that shape data for a page live in its selectors (``inbox.selectors``, ``recipients.selectors``).
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..querysets import CategoryQuerySet, DeliveryQuerySet, NotificationQuerySet, PreferenceQuerySet, SuppressionQuerySet
from ..timezones import canonical_zone
from ..localized import localized_value


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    INAPP = "inapp", _("In-app")
    WEBPUSH = "webpush", _("Web push")
    CHAT = "chat", _("Chat")
    WECHAT = "wechat", _("WeChat")
    MOBILEPUSH = "mobilepush", _("Mobile push")


def validate_timezone(value: str) -> None:
    if canonical_zone(value) is None:  # Factory, localtime, posixrules and unknown names
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


e164_validator = RegexValidator(
    r"^\+[1-9]\d{6,14}$", _("Enter the phone number in international E.164 form, e.g. +14155550123.")
)


class RecipientProfile(models.Model):
    """What Signalbox knows about a user as a recipient: how and when to reach them."""

    class Locale(models.TextChoices):
        EN = "en", "English"
        ZH_HANS = "zh-hans", "简体中文"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recipient_profile", verbose_name=_("user")
    )
    phone = models.CharField(_("phone"), max_length=16, blank=True, validators=[e164_validator])
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_timezone])
    locale = models.CharField(_("locale"), max_length=10, choices=Locale.choices, default=Locale.EN)
    chat_ids = models.JSONField(_("chat ids"), default=dict, blank=True, help_text=_("Per chat service, e.g. {\"telegram\": \"12345\"}."))
    quiet_hours_start = models.TimeField(_("quiet hours start"), null=True, blank=True)
    quiet_hours_end = models.TimeField(_("quiet hours end"), null=True, blank=True)
    frequency_cap_per_day = models.PositiveSmallIntegerField(
        _("frequency cap per day"), null=True, blank=True, help_text=_("Most marketing messages a day; empty for no cap.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("recipient profile")
        verbose_name_plural = _("recipient profiles")
        permissions = [
            # One person's data (notifications.privacy): Managers hold both (``accounts.roles``).
            ("export_personal_data", _("Can export everything held about a person")),
            ("erase_personal_data", _("Can erase a person's personal data")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False),
                name="recipientprofile_quiet_hours_both_or_neither",
            )
        ]

    def __str__(self) -> str:
        return str(self.user)

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Category(models.Model):
    """What a message is about; decides whether recipients may opt out of it."""

    class Kind(models.TextChoices):
        TRANSACTIONAL = "transactional", _("Transactional")
        MARKETING = "marketing", _("Marketing")
        SYSTEM = "system", _("System")

    # Categories the system keeps for itself ("Send a test to me"): never listed to recipients
    # (preference centre) nor offered as a filter (analytics, reports); see ``CategoryQuerySet.listed``.
    TEMPLATE_TEST_KEY = "template-test"
    INTERNAL_KEYS = frozenset({TEMPLATE_TEST_KEY})

    key = models.SlugField(_("key"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=120)
    name_zh_hans = models.CharField(
        _("name in Simplified Chinese"), max_length=120, blank=True,
        help_text=_("What recipients and staff reading Chinese see; empty: the name above."),
    )
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.MARKETING)
    user_can_opt_out = models.BooleanField(_("recipients may opt out"), default=True)
    default_enabled = models.BooleanField(
        _("on by default"), default=True, help_text=_("Used when a recipient has not chosen for a channel.")
    )

    class ResendPolicy(models.TextChoices):
        AT_MOST_ONCE = "at_most_once", _("At most once: never send twice")
        AT_LEAST_ONCE = "at_least_once", _("At least once: re-send with the same identity")

        @classmethod
        def for_kind(cls, kind: str) -> str:
            """The policy a new category of ``kind`` gets unless someone chose: a receipt or a
            password reset had better arrive twice than never; marketing and notices never twice."""
            return cls.AT_LEAST_ONCE if kind == Category.Kind.TRANSACTIONAL else cls.AT_MOST_ONCE

    resend_policy = models.CharField(
        _("after a crash"), max_length=16, choices=ResendPolicy.choices, default=ResendPolicy.AT_MOST_ONCE,
        help_text=_(
            "When a worker stops while a message is with the provider, nobody knows whether it arrived. "
            "At most once records it as 'Outcome unknown' and never sends it again. At least once sends it "
            "again, as the same message, on channels that can (email keeps its Message-ID); a recipient may "
            "then get it twice. Marketing usually wants at most once, transactional at least once."
        ),
    )

    objects = CategoryQuerySet.as_manager()

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["name"]
        permissions = [
            # Making a category transactional or un-leavable sends to people who opted out of it.
            ("override_optouts", _("Can change categories in ways that override opt-outs")),
        ]

    def display_name(self, language: str | None = None) -> str:
        """The name in ``language`` (the active language by default), falling back to ``name``."""
        return localized_value(self, "name", language)

    def __str__(self) -> str:
        return self.display_name()


class Preference(models.Model):
    """One recipient's choice for one category on one channel. No row means the category default."""

    class Digest(models.TextChoices):
        IMMEDIATE = "immediate", _("Immediately")
        HOURLY = "hourly", _("Hourly digest")
        DAILY = "daily", _("Daily digest")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences", verbose_name=_("user")
    )
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="preferences", verbose_name=_("category"))
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    digest = models.CharField(_("digest"), max_length=16, choices=Digest.choices, default=Digest.IMMEDIATE)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = PreferenceQuerySet.as_manager()

    class Meta:
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")
        constraints = [
            models.UniqueConstraint(fields=["user", "category", "channel"], name="preference_unique_user_category_channel")
        ]

    def __str__(self) -> str:
        state = _("on") if self.enabled else _("off")
        return f"{self.user} · {self.category} · {self.get_channel_display()}: {state}"


class Suppression(models.Model):
    """An address that must not be sent to on a channel. Kept when the user is deleted."""

    class Reason(models.TextChoices):
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
        HARD_BOUNCE = "hard_bounce", _("Hard bounce")
        COMPLAINT = "complaint", _("Complaint")
        MANUAL = "manual", _("Manual")
        STOP = "stop", _("SMS STOP")

    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    address = models.CharField(_("address"), max_length=320, help_text=_("Email address, E.164 phone, or endpoint."))
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="suppressions",
        verbose_name=_("user"),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["channel", "address"], name="suppression_unique_channel_address")]
        indexes = [models.Index(fields=["-created_at"], name="suppression_created_idx")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.address} ({self.get_reason_display()})"


class Notification(models.Model):
    """A message in a recipient's in-app inbox."""

    # No index of its own: notification_inbox_idx leads with the recipient (every row written
    # costs one index update per index, and a fan-out writes ten thousand at a time).
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("recipient"),
        db_index=False,
    )
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("category")
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    body = models.TextField(_("body"), blank=True)
    url = models.CharField(_("link"), max_length=500, blank=True)
    # Set when the message is shared (one notify() to many): title, body and link are read from
    # it and left empty here. See ``shown_title``. Not indexed: a shared content is only ever
    # reached from its notifications, never the other way.
    content = models.ForeignKey(
        "notifications.NotificationContent", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        verbose_name=_("shared content"), db_index=False,
    )
    delivery = models.OneToOneField(
        "Delivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="notification",
        verbose_name=_("delivery"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("inbox notification")
        verbose_name_plural = _("inbox notifications")
        indexes = [
            # Newest-first pages of one recipient's inbox.
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_inbox_idx"),
            # The unread badge: a partial index holding only unread rows, so the count touches
            # nothing but the rows it counts however long the read history grows.
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread_idx"),
        ]

    def __str__(self) -> str:
        return self.shown_title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

    # What the recipient sees: the row's own text, or the shared content's (select_related
    # "content" where many rows are shown).
    @property
    def shown_title(self) -> str:
        return self.content.title if self.content_id else self.title

    @property
    def shown_body(self) -> str:
        return self.content.body if self.content_id else self.body

    @property
    def shown_url(self) -> str:
        return self.content.url if self.content_id else self.url

    @property
    def safe_url(self) -> str:
        """The link if it is site-relative or http(s); never ``javascript:`` and friends."""
        from .inbox import safe_link

        return safe_link(self.shown_url)


class Delivery(models.Model):
    """The ledger: one message to one recipient over one channel, sent at most once.

    ``idempotency_key`` is unique: ``run:<run id>:<user id>:<channel>`` for campaigns, the
    caller's key for ``notify()``. Planning inserts with conflicts ignored, so planning twice
    cannot create a second delivery. ``status`` only moves forward (``Status.rank``).
    """

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        PAUSED = "paused", _("Paused")
        SUPPRESSED = "suppressed", _("Suppressed")
        SENDING = "sending", _("Sending")
        DEFERRED = "deferred", _("Retrying")
        SENT = "sent", _("Sent")
        UNKNOWN = "unknown", _("Outcome unknown")
        DELIVERED = "delivered", _("Delivered")
        OPENED = "opened", _("Opened")
        READ = "read", _("Read")
        CLICKED = "clicked", _("Clicked")
        BOUNCED = "bounced", _("Bounced")
        FAILED = "failed", _("Failed")

    # Unique through Meta.constraints: a unique=True CharField also gets a LIKE-pattern index on
    # PostgreSQL, which nothing reads and every insert would pay for.
    idempotency_key = models.CharField(_("idempotency key"), max_length=255)
    # Foreign keys whose own index a composite index below already serves (it starts with the
    # same column) go without one: every ledger insert maintains each index.
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries",
        verbose_name=_("recipient"), db_index=False,
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("category")
    )
    address = models.CharField(_("address"), max_length=320, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PLANNED)
    status_reason = models.CharField(_("reason"), max_length=100, blank=True)
    content = models.JSONField(_("content"), default=dict, blank=True, help_text=_("Message parts for ad-hoc sends."))
    run = models.ForeignKey(
        "notifications.CampaignRun", null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries",
        verbose_name=_("campaign run"), db_index=False,
    )
    trigger = models.ForeignKey(
        "notifications.SignalTrigger", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries",
        verbose_name=_("trigger"), db_index=False,
    )
    provider_message_id = models.CharField(_("provider id"), max_length=255, blank=True)
    # Set on outbound webhook posts only (``WebhookMessage``): the endpoint is their recipient.
    # Indexed by the partial indexes below, which no other delivery's insert maintains.
    webhook_endpoint = models.ForeignKey(
        "notifications.WebhookEndpoint", null=True, blank=True, on_delete=models.CASCADE, related_name="messages",
        verbose_name=_("webhook endpoint"), db_index=False,
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    lease_owner = models.CharField(_("lease owner"), max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked"), null=True, blank=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed"), null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            # Workers pick due work: planned/deferred rows whose next attempt is due.
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
            # The sweeper finds leases that ran out.
            models.Index(
                fields=["lease_expires_at"], condition=Q(status="sending"), name="delivery_lease_idx"
            ),
            models.Index(fields=["created_at", "channel"], name="delivery_created_idx"),
            models.Index(fields=["recipient", "-created_at"], name="delivery_recipient_idx"),
            # A run's progress bar and pause/resume: its deliveries by status.
            models.Index(fields=["run", "status"], condition=Q(run__isnull=False), name="delivery_run_status_idx"),
            # A run's recipient table, newest first, a page at a time (keyset on id).
            models.Index(fields=["run", "id"], condition=Q(run__isnull=False), name="delivery_run_recent_idx"),
            models.Index(
                fields=["provider_message_id"], condition=~Q(provider_message_id=""), name="delivery_provider_id_idx"
            ),
            # A trigger's deliveries (and SET NULL when one is deleted); campaign and notify() rows
            # have none and stay out of it.
            models.Index(fields=["trigger"], condition=Q(trigger__isnull=False), name="delivery_trigger_idx"),
            # Outbound webhook posts (``WebhookMessage``): what is due per endpoint, the order of a
            # stream (one delivery's events), and what /metrics counts (owed or unknown). Partial:
            # a message to a person never enters them.
            models.Index(fields=["webhook_endpoint", "next_attempt_at"], condition=Q(webhook_endpoint__isnull=False),
                         name="delivery_webhook_due_idx"),
            models.Index(fields=["webhook_endpoint", "address", "id"], condition=Q(webhook_endpoint__isnull=False),
                         name="delivery_webhook_stream_idx"),
            models.Index(fields=["status", "next_attempt_at"], condition=Q(webhook_endpoint__isnull=False),
                         name="delivery_webhook_status_idx"),
        ]
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="delivery_unique_idempotency_key")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.address or self.recipient_id} ({self.get_status_display()})"


# How far along a delivery is; a receipt may only move it to a higher rank. Terminal failures
# outrank sent so a bounce after "sent" sticks, and engagement outranks delivery.
STATUS_RANK: dict[str, int] = {
    Delivery.Status.PLANNED: 0,
    Delivery.Status.PAUSED: 0,  # a paused campaign's; moves back to planned on resume (a service, not a receipt)
    Delivery.Status.DEFERRED: 1,
    Delivery.Status.SENDING: 2,
    Delivery.Status.SUPPRESSED: 3,
    Delivery.Status.UNKNOWN: 4,
    Delivery.Status.SENT: 5,
    Delivery.Status.DELIVERED: 6,
    Delivery.Status.OPENED: 7,
    Delivery.Status.READ: 8,
    Delivery.Status.CLICKED: 9,
    Delivery.Status.BOUNCED: 10,
    Delivery.Status.FAILED: 10,
}


class DeliveryEvent(models.Model):
    """An append-only receipt about a delivery. Provider event ids are unique per source."""

    class Kind(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        OPENED = "opened", _("Opened")
        CLICKED = "clicked", _("Clicked")
        READ = "read", _("Read")
        BOUNCED = "bounced", _("Bounced")
        COMPLAINED = "complained", _("Complained")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        FAILED = "failed", _("Failed")

    # Indexed by deliveryevent_delivery_idx (delivery, occurred_at), which serves lookups by delivery.
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="events", verbose_name=_("delivery"), db_index=False
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    source = models.CharField(_("source"), max_length=32, help_text=_("system, smtp, twilio, anymail, pixel, click, inbox…"))
    provider_event_id = models.CharField(_("provider event id"), max_length=255, null=True, blank=True)
    occurred_at = models.DateTimeField(_("occurred"), default=timezone.now)
    data = models.JSONField(_("data"), default=dict, blank=True)
    hits = models.PositiveIntegerField(
        _("hits"), default=1, db_default=1,  # the send path inserts receipts with raw SQL
        help_text=_("How often this receipt came in: later opens and clicks are counted here, not stored as rows."),
    )

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "provider_event_id"],
                condition=Q(provider_event_id__isnull=False),
                name="deliveryevent_unique_provider_event",
            )
        ]
        indexes = [
            models.Index(fields=["delivery", "occurred_at"], name="deliveryevent_delivery_idx"),
            models.Index(fields=["occurred_at", "kind"], name="deliveryevent_occurred_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.delivery_id}"


class AuditEntry(models.Model):
    """Who did what to which object. Append-only: written by ``audit_record`` and never edited,
    but for the ``count`` of an ``api.rate_limited`` entry, which the API's rate-limit refusals of
    one key in one minute raise (``api.keys.api_key_refusal_record``)."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("user")
    )
    actor_repr = models.CharField(_("actor"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=64)
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("object type")
    )
    target_id = models.CharField(_("object id"), max_length=64, blank=True)
    target_repr = models.CharField(_("object"), max_length=200, blank=True)
    changes = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="audit_created_idx"),
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_repr or '—'} {self.action} {self.target_repr}"

    @property
    def actor_label(self) -> str:
        """Who acted, for people: the stored "system" (``services.audit_record`` without an actor)
        in the reader's language."""
        return str(_("system")) if self.actor_repr == "system" and self.actor_id is None else self.actor_repr


class TrackedLink(models.Model):
    """A link in a sent message, stored at send time so a click carries only an opaque signed id.

    The click redirect goes to ``url`` and nowhere else: the destination never travels in the
    request, so a tracking link cannot be turned into an open redirect.
    """

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="links", verbose_name=_("delivery"))
    url = models.TextField(_("URL"))
    position = models.PositiveSmallIntegerField(_("position"), help_text=_("Order of the link in the message."))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("tracked link")
        verbose_name_plural = _("tracked links")
        ordering = ["delivery", "position"]

    def __str__(self) -> str:
        return self.url


class RateWindow(models.Model):
    """Sends taken on one channel in one fixed one-second window (``notifications.ledger.ratelimit``).

    Only used without Redis; rows older than a minute are deleted as the limiter goes.
    """

    channel = models.CharField(_("channel"), max_length=100)
    window = models.BigIntegerField(_("window"), help_text=_("Unix time in whole seconds."))
    used = models.PositiveIntegerField(_("used"), default=0)

    class Meta:
        verbose_name = _("rate window")
        verbose_name_plural = _("rate windows")
        constraints = [models.UniqueConstraint(fields=["channel", "window"], name="ratewindow_channel_window_uniq")]

    def __str__(self) -> str:
        return f"{self.channel}@{self.window}: {self.used}"
