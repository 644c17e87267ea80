"""Staff-side records: CSV user imports and generated reports (and the permissions for them).

The staff roles themselves live in ``accounts.roles``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ImportJob(models.Model):
    """One CSV user import: upload → mapping → dry run → confirm → (background) commit."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        PREVIEWED = "previewed", _("Previewed")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Importing")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    class Mode(models.TextChoices):
        VALID_ROWS = "valid_rows", _("Import the valid rows, skip the invalid ones")
        ALL_OR_NOTHING = "all_or_nothing", _("All or nothing: import only if every row is valid")

    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    encoding = models.CharField(_("encoding"), max_length=32, blank=True)
    delimiter = models.CharField(_("delimiter"), max_length=4, blank=True)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    mode = models.CharField(_("mode"), max_length=16, choices=Mode.choices, default=Mode.VALID_ROWS)
    audience = models.ForeignKey(
        "notifications.Audience", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("add to static audience"),
    )
    invite = models.BooleanField(
        _("email an invitation"), default=False,
        help_text=_("Send each new user an email with a link to choose their password."),
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.UPLOADED)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("processed"), default=0)
    new_rows = models.PositiveIntegerField(_("new"), default=0)
    updated_rows = models.PositiveIntegerField(_("updated"), default=0)
    unchanged_rows = models.PositiveIntegerField(_("unchanged"), default=0)
    invalid_rows = models.PositiveIntegerField(_("invalid"), default=0)
    error_report = models.FileField(_("error report"), upload_to="imports/errors/%Y/%m/", blank=True)
    error = models.TextField(_("error"), blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("user import")
        verbose_name_plural = _("user imports")
        ordering = ["-created_at"]
        permissions = [("import_users", _("Can import users from CSV"))]
        indexes = [models.Index(fields=["-created_at"], name="importjob_created_idx")]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display()})"


class Report(models.Model):
    """A generated report (PDF, CSV or XLSX), built in the background when it is big."""

    class Kind(models.TextChoices):
        CAMPAIGN_PDF = "campaign_pdf", _("Campaign report (PDF)")
        PERIOD_PDF = "period_pdf", _("Period report (PDF)")
        DELIVERIES = "deliveries", _("Deliveries export")
        RECEIPTS = "receipts", _("Receipts export")
        CAMPAIGNS = "campaigns", _("Campaign summaries export")

    class Format(models.TextChoices):
        PDF = "pdf", "PDF"
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Generating")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    format = models.CharField(_("format"), max_length=4, choices=Format.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(_("file"), upload_to="reports/%Y/%m/", blank=True)
    rows = models.PositiveIntegerField(_("rows"), default=0)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("requested"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        ordering = ["-created_at"]
        permissions = [
            ("export_data", _("Can export deliveries, receipts and campaign summaries")),
            ("download_reports", _("Can generate and download PDF reports")),
        ]
        indexes = [models.Index(fields=["created_by", "-created_at"], name="report_owner_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.created_at:%Y-%m-%d %H:%M}"


# --- Analytics rollups (``dashboard.analytics``) ---------------------------------------------
# Ids are copied as plain integers, not foreign keys: a rollup is a derived, rebuildable copy and
# must neither block nor cascade deletes in the ledger.


class DeliveryDailyStat(models.Model):
    """Deliveries created on one day (site time zone) by channel, category and run: how far they got.

    A cohort: the row for 3 May counts the deliveries *created* on 3 May and what has become of
    them since (a late open moves the row's counters, not today's). Rows are rebuilt, never
    edited, by ``dashboard.analytics.analytics_rollup_refresh``; the ``status_*`` counters
    partition ``total`` by current status, the ``reached_*`` counters are cumulative funnel stages.
    """

    day = models.DateField(_("day"))
    channel = models.CharField(_("channel"), max_length=16)
    category_id = models.BigIntegerField(_("category id"), null=True, blank=True)
    campaign_id = models.BigIntegerField(_("campaign id"), null=True, blank=True)
    run_id = models.BigIntegerField(_("run id"), null=True, blank=True)
    total = models.PositiveIntegerField(_("planned"), default=0)
    status_waiting = models.PositiveIntegerField(_("waiting"), default=0)
    status_suppressed = models.PositiveIntegerField(_("suppressed"), default=0)
    status_sent = models.PositiveIntegerField(_("sent, no receipt yet"), default=0)
    status_unknown = models.PositiveIntegerField(_("outcome unknown"), default=0)
    status_delivered = models.PositiveIntegerField(_("delivered"), default=0)
    status_opened = models.PositiveIntegerField(_("opened or read"), default=0)
    status_clicked = models.PositiveIntegerField(_("clicked"), default=0)
    status_failed = models.PositiveIntegerField(_("failed or bounced"), default=0)
    reached_sent = models.PositiveIntegerField(_("reached sent"), default=0)
    reached_delivered = models.PositiveIntegerField(_("reached delivered"), default=0)
    reached_opened = models.PositiveIntegerField(_("reached opened or read"), default=0)
    reached_clicked = models.PositiveIntegerField(_("reached clicked"), default=0)
    unsubscribed = models.PositiveIntegerField(_("unsubscribed"), default=0)

    class Meta:
        verbose_name = _("daily delivery figures")
        verbose_name_plural = _("daily delivery figures")
        indexes = [
            models.Index(fields=["day", "channel"], name="dailystat_day_idx"),
            models.Index(fields=["campaign_id", "day"], name="dailystat_campaign_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.channel} run={self.run_id}: {self.total}"


class OpenHourStat(models.Model):
    """Human opens and reads (machine opens excluded) in one hour of one day (site time zone)."""

    day = models.DateField(_("day"))
    hour = models.PositiveSmallIntegerField(_("hour"))
    channel = models.CharField(_("channel"), max_length=16)
    category_id = models.BigIntegerField(_("category id"), null=True, blank=True)
    campaign_id = models.BigIntegerField(_("campaign id"), null=True, blank=True)
    opens = models.PositiveIntegerField(_("opens"), default=0)

    class Meta:
        verbose_name = _("hourly open figures")
        verbose_name_plural = _("hourly open figures")
        indexes = [
            models.Index(fields=["day", "hour"], name="openhourstat_day_idx"),
            models.Index(fields=["campaign_id", "day"], name="openhourstat_campaign_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.hour:02d}h {self.channel}: {self.opens}"


class AnalyticsRollupState(models.Model):
    """One row: how far the rollups reach. Days after ``covered_through`` are computed live."""

    covered_through = models.DateField(_("rollups cover days up to"), null=True, blank=True)
    # Days up to this one may have lost ledger rows to data retention (``ops.retention``): their
    # rollups are final and never rebuilt from what is left. Never after ``covered_through``.
    frozen_through = models.DateField(_("rollups final up to"), null=True, blank=True)
    last_event_id = models.BigIntegerField(_("last receipt seen"), default=0)
    timezone = models.CharField(_("time zone"), max_length=64, blank=True)
    refreshed_at = models.DateTimeField(_("refreshed"), null=True, blank=True)

    class Meta:
        verbose_name = _("analytics rollup state")
        verbose_name_plural = _("analytics rollup state")

    def __str__(self) -> str:
        return f"rollups through {self.covered_through or '—'}"
