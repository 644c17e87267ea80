"""What marketers build: audiences, message templates, campaigns and their runs, signal triggers.

State changes go through services (``notifications.campaigns``, ``notifications.triggers``);
these classes hold fields, choices, constraints and small properties only.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .ledger import Category, validate_timezone

LOCALE_CHOICES = [("en", "English"), ("zh-hans", "简体中文")]


def _channels_default() -> list[str]:
    return ["inapp"]


class Audience(models.Model):
    """Who a campaign goes to: a rule tree over users (evaluated at launch) or a static list."""

    class Kind(models.TextChoices):
        RULES = "rules", _("Rule-based")
        STATIC = "static", _("Static list")

    name = models.CharField(_("name"), max_length=120, unique=True)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.RULES)
    rules = models.JSONField(
        _("rules"), default=dict, blank=True,
        help_text=_('A rule tree: {"all": [...]} or {"any": [...]} of conditions {"field", "op", "value"}.'),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("audience")
        verbose_name_plural = _("audiences")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AudienceMember(models.Model):
    """A member of a static audience (added by hand or by a CSV import)."""

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="members", verbose_name=_("audience"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audience_memberships", verbose_name=_("user")
    )
    added_at = models.DateTimeField(_("added"), default=timezone.now)

    class Meta:
        verbose_name = _("audience member")
        verbose_name_plural = _("audience members")
        constraints = [models.UniqueConstraint(fields=["audience", "user"], name="audiencemember_unique")]

    def __str__(self) -> str:
        return f"{self.audience} · {self.user_id}"


class MessageParts(models.Model):
    """The per-channel parts of a message, written in the sandboxed Jinja2 dialect.

    Kept together per template (STYLE.md): a marketer edits email, SMS, push, in-app and chat
    wording side by side, and each locale variant carries the same set of parts.
    """

    email_subject = models.CharField(_("email subject"), max_length=255, blank=True)
    email_body = models.TextField(_("email body"), blank=True, help_text=_("Markdown; wrapped in the email layout."))
    sms_text = models.TextField(_("SMS text"), blank=True)
    push_title = models.CharField(_("push title"), max_length=120, blank=True)
    push_body = models.CharField(_("push body"), max_length=500, blank=True)
    inapp_title = models.CharField(_("in-app title"), max_length=200, blank=True)
    inapp_body = models.TextField(_("in-app body"), blank=True)
    inapp_url = models.CharField(_("in-app link"), max_length=500, blank=True)
    chat_text = models.TextField(_("chat text"), blank=True)

    PART_FIELDS = (
        "email_subject", "email_body", "sms_text", "push_title", "push_body",
        "inapp_title", "inapp_body", "inapp_url", "chat_text",
    )

    class Meta:
        abstract = True

    def parts(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.PART_FIELDS}


class MessageTemplate(MessageParts):
    """A message in every channel's shape; its own parts are the default locale's wording."""

    key = models.SlugField(_("key"), max_length=80, unique=True)
    name = models.CharField(_("name"), max_length=120)
    locale = models.CharField(_("default locale"), max_length=10, choices=LOCALE_CHOICES, default="en")
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("category")
    )
    variables = models.JSONField(
        _("declared variables"), default=list, blank=True,
        help_text=_("Extra names the template may use besides recipient, campaign and instance."),
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("updated by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MessageTemplateVariant(MessageParts):
    """The same message in another locale. Empty parts fall back to the template's own."""

    template = models.ForeignKey(
        MessageTemplate, on_delete=models.CASCADE, related_name="variants", verbose_name=_("template")
    )
    locale = models.CharField(_("locale"), max_length=10, choices=LOCALE_CHOICES)

    class Meta:
        verbose_name = _("locale variant")
        verbose_name_plural = _("locale variants")
        constraints = [models.UniqueConstraint(fields=["template", "locale"], name="templatevariant_unique_locale")]

    def __str__(self) -> str:
        return f"{self.template} ({self.locale})"


class Campaign(models.Model):
    """A message to an audience, sent now, once, on a recurrence or at each recipient's local time.

    Status moves only through ``notifications.campaigns`` services, each a compare-and-set on the
    current status, so two schedulers (or a double click) cannot both launch.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PENDING_APPROVAL = "pending_approval", _("Pending approval")
        APPROVED = "approved", _("Approved")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    class Schedule(models.TextChoices):
        NOW = "now", _("Send now")
        ONCE = "once", _("Once, at a date and time")
        RECURRING = "recurring", _("Recurring")
        LOCAL_TIME = "local_time", _("At a local time in each recipient's time zone")

    class TestMetric(models.TextChoices):
        OPENS = "opens", _("Open rate")
        CLICKS = "clicks", _("Click rate")

    class ChannelUse(models.TextChoices):
        ALL = "all", _("Every selected channel")
        FALLBACK = "fallback", _("First reachable channel, in order")

    name = models.CharField(_("name"), max_length=160)
    audience = models.ForeignKey(
        Audience, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("audience")
    )
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("template")
    )
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("category")
    )
    channels = models.JSONField(
        _("channels"), default=_channels_default,
        help_text=_("Channels in order of preference, e.g. [\"webpush\", \"sms\"]."),
    )
    template_values = models.JSONField(
        _("template values"), default=dict, blank=True,
        help_text=_("A value for each variable the template declares, by name."),
    )
    delivery_mode = models.CharField(
        _("channel use"), max_length=8, choices=ChannelUse.choices, default=ChannelUse.ALL
    )
    schedule = models.CharField(_("schedule"), max_length=12, choices=Schedule.choices, default=Schedule.NOW)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True, help_text=_("For a one-off schedule."))
    rrule = models.CharField(
        _("recurrence rule"), max_length=500, blank=True, help_text=_("An RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0.")
    )
    schedule_timezone = models.CharField(
        _("schedule time zone"), max_length=64, default="UTC", validators=[validate_timezone]
    )
    recurrence_start = models.DateTimeField(_("recurrence starts"), null=True, blank=True)
    local_send_time = models.TimeField(_("local send time"), null=True, blank=True)
    local_send_date = models.DateField(_("local send date"), null=True, blank=True)
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True)
    max_lateness = models.DurationField(
        _("maximum lateness"), default=timedelta(hours=1),
        help_text=_("A run that could not start within this time of its due time is skipped, not sent late."),
    )
    throttle_per_minute = models.PositiveIntegerField(
        _("throttle (messages per minute)"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    frequency_cap_per_day = models.PositiveSmallIntegerField(
        _("frequency cap per recipient per day"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Skip recipients who already got this many marketing messages today."),
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DRAFT)
    status_note = models.CharField(_("status note"), max_length=255, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("author"),
    )
    submitted_at = models.DateTimeField(_("submitted for approval"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("approved by"),
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    approved_size = models.PositiveIntegerField(_("approved audience size"), null=True, blank=True)
    approval_fingerprint = models.JSONField(
        _("what the approval covers"), default=dict, blank=True,
        help_text=_("A digest of the audience, template, channels, category and schedule when approved."),
    )
    # An A/B test (``notifications.campaigns.experiments``): on when the campaign has 2-4 variants.
    test_share = models.PositiveSmallIntegerField(
        _("test share (%)"), default=20, validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text=_("The share of recipients who get a variant at launch, split evenly among the variants."),
    )
    test_metric = models.CharField(
        _("winner metric"), max_length=8, choices=TestMetric.choices, default=TestMetric.CLICKS
    )
    test_window = models.DurationField(
        _("test window"), default=timedelta(hours=4),
        help_text=_("How long the test runs before the winner goes to everyone else, e.g. 4:00:00."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]
        permissions = [
            ("launch_campaign", _("Can launch campaigns")),
            ("approve_campaign", _("Can approve campaigns")),
        ]
        indexes = [
            # The scheduler's query: scheduled campaigns that are due.
            models.Index(fields=["next_run_at"], condition=Q(status="scheduled"), name="campaign_due_idx"),
            models.Index(fields=["status", "-created_at"], name="campaign_status_idx"),
        ]

    def __str__(self) -> str:
        return self.name


VARIANT_LABELS = ("A", "B", "C", "D")


class CampaignVariant(models.Model):
    """One arm of a campaign's A/B test: another template, or the campaign's template with
    another email subject. A campaign with 2-4 variants sends them to its test share first."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants", verbose_name=_("campaign"))
    label = models.CharField(_("variant"), max_length=1, choices=[(v, v) for v in VARIANT_LABELS])
    template = models.ForeignKey(
        MessageTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("template"),
        help_text=_("Empty: the campaign's template."),
    )
    email_subject = models.CharField(
        _("email subject"), max_length=255, blank=True,
        help_text=_("Empty: the template's own subject. Used on the email channel only."),
    )

    class Meta:
        verbose_name = _("A/B variant")
        verbose_name_plural = _("A/B variants")
        ordering = ["campaign", "label"]
        constraints = [models.UniqueConstraint(fields=["campaign", "label"], name="campaignvariant_unique_label")]

    def __str__(self) -> str:
        return f"{self.campaign} · {self.label}"


class CampaignRun(models.Model):
    """One execution of a campaign; a recurring campaign has one per occurrence.

    ``(campaign, occurrence)`` is unique: the second attempt to start the same occurrence fails
    on the constraint, so a run is created exactly once. The audience is frozen as the run's
    planned deliveries.
    """

    class Status(models.TextChoices):
        PLANNING = "planning", _("Planning")
        AWAITING_APPROVAL = "awaiting_approval", _("Held: awaiting approval")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        SKIPPED = "skipped", _("Skipped (too late)")
        FAILED = "failed", _("Failed")

    class TestState(models.TextChoices):
        NONE = "", _("No test")
        TESTING = "testing", _("Testing")
        DECIDED = "decided", _("Winner chosen")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs", verbose_name=_("campaign"))
    occurrence = models.DateTimeField(_("due at"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PLANNING)
    status_note = models.CharField(_("status note"), max_length=255, blank=True)
    audience_size = models.PositiveIntegerField(_("audience size"), default=0)
    planned = models.PositiveIntegerField(_("planned"), default=0)
    suppressed = models.PositiveIntegerField(_("suppressed"), default=0)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("launched by"),
    )
    # Paused (or held paused) before its planning finished: resume returns it to ``planning``, not
    # ``sending``, so the planning still under way (or the housekeeping re-plan) goes on to the end.
    planning_unfinished = models.BooleanField(_("planning unfinished"), default=False)
    # A/B test state: ``testing`` while only the test share is sent; the compare-and-set to
    # ``decided`` (with the winner) is what lets exactly one process send the rest.
    test_state = models.CharField(_("A/B test"), max_length=8, choices=TestState.choices, blank=True, default="")
    test_ends_at = models.DateTimeField(_("test ends"), null=True, blank=True)
    winner = models.CharField(_("winning variant"), max_length=1, blank=True)
    winner_chosen_at = models.DateTimeField(_("winner chosen"), null=True, blank=True)
    winner_chosen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("winner chosen by"),
    )
    test_decision = models.JSONField(_("figures the winner was chosen on"), default=dict, blank=True)

    class Meta:
        verbose_name = _("campaign run")
        verbose_name_plural = _("campaign runs")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "occurrence"], name="campaignrun_unique_occurrence")
        ]
        indexes = [
            models.Index(fields=["status", "-started_at"], name="campaignrun_status_idx"),
            # The A/B tick's query: tests whose window has ended.
            models.Index(fields=["test_ends_at"], condition=Q(test_state="testing"), name="campaignrun_test_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} @ {self.occurrence:%Y-%m-%d %H:%M}"


recipient_path_validator = RegexValidator(
    r"^(self|[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*)$", _("A dotted path of field names, e.g. customer.user.")
)


class SignalTrigger(models.Model):
    """A message bound to a Django signal: "when an order is paid, notify its customer".

    Which triggers are active is read by every process from a cached copy that is reloaded when
    ``TriggerState.version`` changes, so edits take effect everywhere without a restart.
    """

    class Event(models.TextChoices):
        CREATED = "created", _("Created")
        UPDATED = "updated", _("Updated")
        DELETED = "deleted", _("Deleted")
        FIRED = "fired", _("Signal sent")

    name = models.CharField(_("name"), max_length=160)
    signal = models.CharField(_("signal"), max_length=80, help_text=_("A signal from the trigger registry."))
    model = models.CharField(_("model"), max_length=100, blank=True, help_text=_("app_label.model for model signals."))
    events = models.JSONField(_("events"), default=list, blank=True, help_text=_("created / updated / deleted."))
    changed_field = models.CharField(_("when field"), max_length=64, blank=True)
    changed_to = models.CharField(
        _("changes to"), max_length=200, blank=True, help_text=_("Fire only when the field changes to this value.")
    )
    conditions = models.JSONField(
        _("conditions"), default=list, blank=True, help_text=_('All must hold, e.g. [{"field": "total", "op": "gte", "value": 100}].')
    )
    recipient_path = models.CharField(
        _("recipients"), max_length=200, blank=True, validators=[recipient_path_validator],
        help_text=_("A path from the instance to users, e.g. customer.user; or choose an audience."),
    )
    audience = models.ForeignKey(
        Audience, null=True, blank=True, on_delete=models.PROTECT, related_name="triggers", verbose_name=_("audience")
    )
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, related_name="triggers", verbose_name=_("template")
    )
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="triggers", verbose_name=_("category"))
    channels = models.JSONField(_("channels"), default=_channels_default)
    dedupe_window = models.DurationField(
        _("dedupe window"), default=timedelta(0),
        help_text=_("At most one message per recipient and instance within this time; 0 for none."),
    )
    is_active = models.BooleanField(_("active"), default=False)
    max_recipients = models.PositiveIntegerField(
        _("most recipients per event"), default=100, validators=[MinValueValidator(1)],
        help_text=_("An event that would reach more people than this is held, not sent."),
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("approved by"),
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    approved_size = models.PositiveIntegerField(_("approved reach"), null=True, blank=True)
    approval_fingerprint = models.JSONField(_("what the approval covers"), default=dict, blank=True)
    fired_count = models.PositiveIntegerField(_("times fired"), default=0)
    last_fired_at = models.DateTimeField(_("last fired"), null=True, blank=True)
    held_count = models.PositiveIntegerField(_("times held"), default=0)
    last_held_at = models.DateTimeField(_("last held"), null=True, blank=True)
    last_held_reason = models.CharField(_("why it was last held"), max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("signal trigger")
        verbose_name_plural = _("signal triggers")
        ordering = ["name"]
        indexes = [models.Index(fields=["signal", "model"], condition=Q(is_active=True), name="trigger_active_idx")]

    def __str__(self) -> str:
        return self.name


class TriggerState(models.Model):
    """One row whose ``version`` goes up on every trigger change; processes compare and reload."""

    version = models.PositiveBigIntegerField(_("version"), default=0)
    changed_at = models.DateTimeField(_("changed"), default=timezone.now)

    class Meta:
        verbose_name = _("trigger state")
        verbose_name_plural = _("trigger state")

    def __str__(self) -> str:
        return f"v{self.version}"
