"""Journeys: multi-step flows (send, wait, branch, split, exit) run on the delivery ledger.

A ``Journey`` is what staff edit (its draft graph, entry and re-entry policy); publishing freezes
the draft into a ``JourneyVersion`` that is never changed again. People are enrolled on one
version (``JourneyEnrollment``) and finish on it, whatever is published after. Each step an
enrollment passes through leaves one ``JourneyStepRun`` (UNIQUE per enrollment and step), and a
send step's ledger keys are derived from (enrollment, step): a retried or duplicated tick can
neither run a step twice nor send a message twice. The engine lives in
``notifications.journeys``; these models hold fields, constraints and choices only.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .ledger import Category


def _entry_default() -> dict:
    return {"kind": "code"}


def _graph_default() -> dict:
    return {"start": "", "steps": []}


class Journey(models.Model):
    """A flow people are enrolled in. Its ``graph`` is the draft; ``current_version`` is what runs."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        LIVE = "live", _("Live")
        PAUSED = "paused", _("Paused")
        STOPPED = "stopped", _("Stopped")

    class Reentry(models.TextChoices):
        ONCE = "once", _("Once ever")
        PER_PERIOD = "per_period", _("Once per N days")
        ALWAYS = "always", _("Every time")

    key = models.SlugField(_("key"), max_length=64, unique=True, help_text=_("Used by journeys.enter() in code."))
    name = models.CharField(_("name"), max_length=160)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    current_version = models.ForeignKey(
        "JourneyVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("published version"),
    )
    entry = models.JSONField(
        _("entry"), default=_entry_default, blank=True,
        help_text=_('How people enter: {"kind": "code"}, or a signal: {"kind": "signal", "signal": '
                    '"model.post_save", "model": "demo_shop.order", "events": ["updated"], '
                    '"changed_field": "status", "changed_to": "paid", "conditions": [], "recipient_path": "customer"}.'),
    )
    reentry = models.CharField(_("re-entry"), max_length=16, choices=Reentry.choices, default=Reentry.ONCE)
    reentry_days = models.PositiveIntegerField(
        _("re-entry after (days)"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("For “once per N days”."),
    )
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="journeys", verbose_name=_("default category"),
    )
    graph = models.JSONField(
        _("steps (draft)"), default=_graph_default, blank=True,
        help_text=_("The draft graph: steps, goals and exit conditions. Publishing makes it the running version."),
    )
    status_note = models.CharField(_("status note"), max_length=255, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("approved by"),
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    approval_fingerprint = models.JSONField(_("what the approval covers"), default=dict, blank=True)
    approval_requested_at = models.DateTimeField(
        _("approval asked for"), null=True, blank=True,
        help_text=_("When publishing was refused for want of a Manager's approval: the journey waits on the approval desk."),
    )
    entries_scanned_at = models.DateTimeField(
        _("entries scanned up to"), null=True, blank=True,
        help_text=_("Audience and date entries: the tick's watermark (the last scan)."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        ordering = ["name"]
        indexes = [models.Index(fields=["status"], name="journey_status_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def reentry_label(self) -> str:
        """The re-entry rule as people read it: "Once per 30 days", else the choice's label."""
        if self.reentry == self.Reentry.PER_PERIOD and self.reentry_days:
            return str(_("Once per %(n)d days") % {"n": self.reentry_days})
        return str(self.get_reentry_display())


class JourneyVersion(models.Model):
    """A published, immutable copy of a journey's graph. Enrollments run on exactly one."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions", verbose_name=_("journey"))
    number = models.PositiveIntegerField(_("version"))
    graph = models.JSONField(_("steps"), default=dict)
    goals = models.JSONField(_("goals"), default=list, blank=True)
    exits = models.JSONField(_("exit conditions"), default=list, blank=True)
    winners = models.JSONField(
        _("split winners"), default=dict, blank=True,
        help_text=_("Auto-winner splits: the arm chosen for each split step, set once by the tick."),
    )
    published_at = models.DateTimeField(_("published"), default=timezone.now)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("published by"),
    )

    class Meta:
        verbose_name = _("journey version")
        verbose_name_plural = _("journey versions")
        ordering = ["journey", "-number"]
        constraints = [models.UniqueConstraint(fields=["journey", "number"], name="journeyversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.journey} v{self.number}"


class JourneyEnrollment(models.Model):
    """One person on one journey version, for one entry (``entry_key``: "" for once-ever journeys).

    ``current_step`` is the step the tick runs next when ``due_at`` comes ("" before the first
    step); ``due_at`` is NULL once the enrollment has ended. Waits are nothing but a later
    ``due_at``: no task is queued per person.
    """

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        EXITED = "exited", _("Exited")
        CONVERTED = "converted", _("Converted")
        STOPPED = "stopped", _("Stopped")

    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="enrollments", verbose_name=_("journey"), db_index=False,
    )
    version = models.ForeignKey(
        JourneyVersion, on_delete=models.PROTECT, related_name="enrollments", verbose_name=_("version"), db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="journey_enrollments", verbose_name=_("person"),
    )
    entry_key = models.CharField(_("entry key"), max_length=200, blank=True)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.ACTIVE)
    state_reason = models.CharField(_("why it ended"), max_length=100, blank=True)
    current_step = models.CharField(_("current step"), max_length=64, blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    lease_owner = models.CharField(_("lease owner"), max_length=64, blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)
    variants = models.JSONField(_("split arms taken"), default=dict, blank=True)
    entered_at = models.DateTimeField(_("entered"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("journey enrollment")
        verbose_name_plural = _("journey enrollments")
        constraints = [
            models.UniqueConstraint(fields=["version", "user", "entry_key"], name="journeyenrollment_unique_entry"),
        ]
        indexes = [
            # The tick: active enrollments whose next step is due, oldest first.
            models.Index(fields=["due_at", "id"], condition=Q(state="active"), name="journeyenrollment_due_idx"),
            # Counters per version step ("in step now") and stop/pause of a journey.
            models.Index(fields=["version", "state", "current_step"], name="journeyenrollment_step_idx"),
            # Re-entry checks and goals: a person's enrollments on a journey.
            models.Index(fields=["journey", "user", "-entered_at"], name="journeyenrollment_person_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} · {self.version} ({self.get_state_display()})"


class JourneyStepRun(models.Model):
    """One step one enrollment ran. UNIQUE (enrollment, step): a step runs at most once."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        DONE = "done", _("Done")

    enrollment = models.ForeignKey(
        JourneyEnrollment, on_delete=models.CASCADE, related_name="step_runs", verbose_name=_("enrollment"),
        db_index=False,
    )
    version = models.ForeignKey(
        JourneyVersion, on_delete=models.CASCADE, related_name="+", verbose_name=_("version"), db_index=False,
    )
    step_id = models.CharField(_("step"), max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DONE)
    outcome = models.CharField(_("outcome"), max_length=64, blank=True, help_text=_("Branch or arm taken, or what happened."))
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("journey step run")
        verbose_name_plural = _("journey step runs")
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step_id"], name="journeysteprun_unique_step"),
        ]
        indexes = [
            # Per-step counters (passed, and by outcome) of one version.
            models.Index(fields=["version", "step_id", "outcome"], name="journeysteprun_counter_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.enrollment_id}:{self.step_id} ({self.status})"
