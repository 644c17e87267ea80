"""The approval desk's record: each decision a Manager made, with what it covered in words.

``snapshot`` is the readable text of the parts the approval fingerprint covers (audience,
template wording per locale, channels, category, schedule) as they were when the decision was
made, so a resubmission can be shown as a diff against the last approved version.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .campaigns import Campaign


class ApprovalDecision(models.Model):
    """A Manager approved a campaign, or asked its author for changes. Append-only."""

    class Decision(models.TextChoices):
        APPROVED = "approved", _("Approved")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="approval_decisions", verbose_name=_("campaign")
    )
    decision = models.CharField(_("decision"), max_length=20, choices=Decision.choices)
    comment = models.TextField(_("comment"), blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided"), default=timezone.now)
    audience_size = models.PositiveIntegerField(_("audience size"), default=0)
    snapshot = models.JSONField(_("what it covered"), default=dict, blank=True)

    class Meta:
        verbose_name = _("approval decision")
        verbose_name_plural = _("approval decisions")
        ordering = ["-decided_at", "-id"]
        indexes = [models.Index(fields=["campaign", "decision", "-decided_at"], name="approvaldecision_last_idx")]

    def __str__(self) -> str:
        return f"{self.campaign} · {self.get_decision_display()}"
