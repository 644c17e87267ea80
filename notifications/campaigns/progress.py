"""How far each campaign run is: its outcome figures and why its waiting deliveries wait.

Read by the campaign page and the dashboard's live progress (``templates/notifications/_run_progress.html``,
the one partial both render). The figures are ``notifications.ledger.outcomes.Outcomes``, the same
as the analytics page, exports and PDF reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from ..ledger.outcomes import PROGRESS_COUNTERS, Outcomes, outcomes_by
from ..ledger.waiting import WaitingReason, sort_reasons, waiting_reasons_by
from ..models import CampaignRun, Delivery


_UNFINISHED = frozenset({
    CampaignRun.Status.PLANNING, CampaignRun.Status.AWAITING_APPROVAL, CampaignRun.Status.SENDING,
    CampaignRun.Status.PAUSED,
})


@dataclass(frozen=True)
class RunProgress:
    run: CampaignRun
    outcomes: Outcomes
    waiting_reasons: list[WaitingReason] = field(default_factory=list)

    @property
    def percent(self) -> int:
        """0..100 settled; never 100 while a delivery waits; 0 while a run with no rows yet is
        still going (planning, held, sending or paused): only a finished run is done with nothing."""
        if not self.outcomes.total and self.run.status in _UNFINISHED:
            return 0
        return self.outcomes.percent_done

    # The figures the progress line shows, by their headline names.
    @property
    def total(self) -> int:
        return self.outcomes.planned

    @property
    def sent(self) -> int:
        return self.outcomes.sent

    @property
    def failed(self) -> int:
        return self.outcomes.failed

    @property
    def unknown(self) -> int:
        return self.outcomes.unknown

    @property
    def suppressed(self) -> int:
        return self.outcomes.suppressed

    @property
    def waiting(self) -> int:
        return self.outcomes.waiting


def runs_progress_of(runs: list[CampaignRun], *, now: datetime | None = None) -> dict[int, RunProgress]:
    """Per run: figures and waiting reasons. Two queries on ``delivery_run_status_idx`` (one when
    nothing waits); a run held for approval says so."""
    now = now or timezone.now()
    ids = [run.pk for run in runs]
    if not ids:
        return {}
    deliveries = Delivery.objects.filter(run__isnull=False, run_id__in=ids)
    figures = outcomes_by(deliveries, "run_id", with_unsubscribed=False, only=PROGRESS_COUNTERS)
    reasons = waiting_reasons_by(deliveries, "run_id", now=now) if any(o.waiting for o in figures.values()) else {}
    result = {}
    for run in runs:
        waiting = list(reasons.get(run.pk, []))
        if run.status == CampaignRun.Status.AWAITING_APPROVAL:
            waiting = sort_reasons([*waiting, WaitingReason("approval", figures.get(run.pk, Outcomes()).waiting)])
        result[run.pk] = RunProgress(run=run, outcomes=figures.get(run.pk, Outcomes()), waiting_reasons=waiting)
    return result
