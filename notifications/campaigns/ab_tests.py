"""Campaign A/B tests: 2-4 variants to a test share, then the winner to everyone else.

A campaign with two to four ``CampaignVariant`` rows is tested. Its run starts ``testing``:
planning sends each variant to an even part of the campaign's ``test_share`` (who falls in which
part is ``experiments.assign`` over the run's key, so a re-plan puts everyone where they were)
and plans nobody else. When the window has passed, the scheduler's tick (``ab_tests_tick``)
reads the test group's figures from the ledger, chooses the winner by the campaign's metric and
moves the run ``testing -> decided`` in one compare-and-set with the winner; only the process
whose update changed the row enqueues the planning of the rest, so two ticks (or two scheduler
processes) never send the rest twice. A marketer may pick the winner before the window ends
through the same compare-and-set.

The rest is planned as a normal run is, over the audience as it is when the winner is chosen,
with the winner's content. Every delivery keeps the run's key ``run:<run>:<user>:<channel>``:
someone in the test group is already in the ledger, so the rest's plan skips them, and nobody
can get two variants. Each delivery's content names its ``variant`` and ``ab_group`` (``test``
or ``rest``), which is what the results count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.translation import gettext as _


from .. import experiments
from ..ledger.outcomes import Outcomes, delivery_counters
from ..models import Campaign, CampaignRun, CampaignVariant, Delivery
from ..services import audit_record

logger = logging.getLogger(__name__)
RunStatus = CampaignRun.Status
TestState = CampaignRun.TestState
MIN_VARIANTS, MAX_VARIANTS = 2, 4
# The winner is chosen only while the run sends (or is paused); a held or cancelled run waits.
DECIDABLE = (RunStatus.SENDING, RunStatus.PAUSED)


@dataclass(frozen=True)
class VariantPlan:
    """What one variant sends: a template, and optionally its own email subject."""

    label: str
    template_id: int
    subject: str = ""

    def content_extra(self, *, group: str) -> dict:
        extra = {"variant": self.label, "ab_group": group}
        if self.subject:
            extra["subject"] = self.subject
        return extra


def campaign_variants(*, campaign: Campaign) -> list[CampaignVariant]:
    return list(CampaignVariant.objects.filter(campaign_id=campaign.pk).select_related("template").order_by("label"))


def is_tested(variants: list) -> bool:
    return MIN_VARIANTS <= len(variants) <= MAX_VARIANTS


def variant_plans(*, campaign: Campaign) -> list[VariantPlan]:
    return [
        VariantPlan(label=v.label, template_id=v.template_id or campaign.template_id, subject=v.email_subject.strip())
        for v in campaign_variants(campaign=campaign)
    ]


def experiment_key(run_id: int) -> str:
    """Each run is its own experiment: a recurring campaign reshuffles who gets what."""
    return f"campaign-run:{run_id}"


def test_groups(*, run_id: int, user_ids: Iterable[int], labels: list[str], share: int) -> dict[str | None, list[int]]:
    """``user_ids`` split into each variant's test group, and ``None``: the rest."""
    shares = experiments.even_shares(labels=labels, test_percent=share)
    key = experiment_key(run_id)
    groups: dict[str | None, list[int]] = {label: [] for label in labels}
    groups[None] = []
    for user_id in user_ids:
        groups[experiments.assign(key=key, user_id=user_id, shares=shares)].append(user_id)
    return groups


def variant_problems(*, variants: list[tuple[str, int | None, str]], channels: list[str],
                     template_id: int | None) -> list[str]:
    """What is wrong with an A/B test's (label, template id or None, subject) variants, as
    sentences: the form shows them, pre-flight refuses a launch with them. None is fine."""
    if not variants:
        return []
    from ..templating.compiled import CHANNEL_PARTS

    # A subject is a part of the channels whose messages have one (email's), as templates define.
    has_subject = any("email_subject" in CHANNEL_PARTS.get(channel, ()) for channel in channels)
    problems = []
    if not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        problems.append(_("An A/B test needs 2 to 4 variants (or none, for no test); there are %(n)d.")
                        % {"n": len(variants)})
    seen: dict[tuple, str] = {}
    for label, variant_template, subject in variants:
        subject = (subject or "").strip()
        if subject and not has_subject:
            problems.append(_("Variant %(label)s changes only the email subject, but the campaign does not send "
                              "email: choose the email channel or another template.") % {"label": label})
        same = (variant_template or template_id, subject)
        if same in seen:
            problems.append(_("Variants %(a)s and %(b)s are the same message: give one another template or "
                              "subject.") % {"a": seen[same], "b": label})
        seen.setdefault(same, label)
    return problems


def campaign_variant_problems(*, campaign: Campaign, variants: list[CampaignVariant] | None = None) -> list[str]:
    """``variant_problems`` of the campaign's saved variants (``variants``: already read)."""
    variants = campaign_variants(campaign=campaign) if variants is None else variants
    return variant_problems(
        variants=[(v.label, v.template_id, v.email_subject) for v in variants],
        channels=list(campaign.channels or []), template_id=campaign.template_id,
    )


# Results --------------------------------------------------------------------------------------

def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


@dataclass(frozen=True)
class VariantResult:
    label: str
    template_name: str
    subject: str
    outcomes: Outcomes

    @property
    def open_rate(self) -> str:
        return _percent(self.outcomes.open_rate_of_sent)

    @property
    def click_rate(self) -> str:
        return _percent(self.outcomes.click_rate_of_sent)

    @property
    def content(self) -> str:
        """The variant in words: its template, and its own subject if it has one."""
        if self.subject:
            return _("%(template)s, subject “%(subject)s”") % {"template": self.template_name, "subject": self.subject}
        return self.template_name

    @property
    def counts(self) -> experiments.VariantCounts:
        o = self.outcomes
        return experiments.VariantCounts(label=self.label, trials=o.sent, opens=o.opened, clicks=o.clicked)


@dataclass(frozen=True)
class TestResults:
    """A run's A/B test as the campaign page and the PDF show it."""

    run: CampaignRun
    metric: str
    variants: list[VariantResult]
    verdict: experiments.Verdict
    rest: Outcomes = field(default_factory=Outcomes)

    @property
    def decided(self) -> bool:
        return self.run.test_state == TestState.DECIDED

    @property
    def metric_label(self) -> str:
        return str(Campaign.TestMetric(self.metric).label)

    @property
    def can_pick(self) -> bool:
        """A winner may be picked by hand while the test runs and the run sends."""
        return self.run.test_state == TestState.TESTING and self.run.status in DECIDABLE


def _outcomes_by_variant(run_id: int, group: str) -> dict[str, Outcomes]:
    rows = (
        Delivery.objects.filter(run_id=run_id, content__ab_group=group)
        .annotate(variant=KT("content__variant")).order_by().values("variant")
        .annotate(**delivery_counters(with_unsubscribed=False))
    )
    return {row["variant"]: Outcomes.from_row(row) for row in rows}


def run_test_results(*, run: CampaignRun, variants: list[CampaignVariant] | None = None) -> TestResults:
    """Per-variant figures of the test group (Sent, Opened, Clicked as ``ledger.outcomes`` defines
    them; rates of sent), the significance note, and the rest's figures. Two queries."""
    campaign = run.campaign
    variants = campaign_variants(campaign=campaign) if variants is None else variants
    tested = _outcomes_by_variant(run.pk, "test")
    rest = Outcomes()
    for outcomes in _outcomes_by_variant(run.pk, "rest").values():
        rest.add(outcomes)
    results = [
        VariantResult(
            label=v.label, template_name=(v.template or campaign.template).name, subject=v.email_subject,
            outcomes=tested.get(v.label, Outcomes()),
        )
        for v in variants
    ]
    verdict = experiments.verdict(counts=[r.counts for r in results], metric=campaign.test_metric)
    return TestResults(run=run, metric=campaign.test_metric, variants=results, verdict=verdict, rest=rest)


def runs_test_results(*, campaign: Campaign, runs: Iterable[CampaignRun]) -> list[TestResults]:
    """``run_test_results`` of each of ``runs`` (a campaign's, loaded without it) that is or was
    tested, in their order: the variants read once, two queries per tested run."""
    tested = [run for run in runs if run.test_state]
    if not tested:
        return []
    variants = campaign_variants(campaign=campaign)
    for run in tested:
        run.campaign = campaign
    return [run_test_results(run=run, variants=variants) for run in tested]


# Choosing the winner --------------------------------------------------------------------------

class WinnerError(Exception):
    """The winner cannot be chosen now; the message says why."""


def run_winner_choose(*, run_id: int, now: datetime | None = None, label: str | None = None, actor=None) -> str | None:
    """Choose the winner of a testing run (``label``, else the leader by the campaign's metric)
    and enqueue the planning of the rest. Returns the winner, or None when another process (or
    person) chose first or the run is not sending. Exactly once: a compare-and-set on
    ``test_state``, in the transaction that enqueues the rest's planning on commit."""
    from .tasks import campaign_run_plan_task

    now = now or timezone.now()
    run = CampaignRun.objects.select_related("campaign__template").filter(pk=run_id).first()
    if run is None or run.test_state != TestState.TESTING:
        return None
    results = run_test_results(run=run)
    labels = [v.label for v in results.variants]
    chosen = label or results.verdict.leader or (labels[0] if labels else None)
    if chosen is None or chosen not in labels:
        return None
    decision = {
        "metric": results.metric, "manual": label is not None, "note": results.verdict.note,
        "p_value": results.verdict.test.p_value,
        "variants": {r.label: {"sent": r.outcomes.sent, "opened": r.outcomes.opened, "clicked": r.outcomes.clicked}
                     for r in results.variants},
    }
    with transaction.atomic():
        won = CampaignRun.objects.filter(pk=run_id, test_state=TestState.TESTING, status__in=DECIDABLE).update(
            test_state=TestState.DECIDED, winner=chosen, winner_chosen_at=now, winner_chosen_by=actor,
            test_decision=decision,
            # A sending run plans the rest now; a paused one plans it paused (resume sends it).
            status=Case(When(status=RunStatus.SENDING, then=Value(RunStatus.PLANNING)), default=F("status")),
            planning_unfinished=Case(When(status=RunStatus.PAUSED, then=Value(True)), default=F("planning_unfinished")),
        )
        if not won:
            return None
        audit_record(actor=actor, action="campaign.winner_chosen", target=run.campaign,
                     changes={"run": run_id, "winner": chosen, **decision})
        transaction.on_commit(lambda: campaign_run_plan_task.enqueue(run_id=run_id))
    logger.info("Run %s of campaign %s: variant %s wins (%s)", run_id, run.campaign_id, chosen, decision["note"])
    return chosen


def campaign_winner_pick(*, run: CampaignRun, label: str, actor, now: datetime | None = None) -> str:
    """A marketer ends the test early with ``label`` as the winner. Raises WinnerError."""
    from .services import CampaignError, require_launch

    try:
        require_launch(actor, system=False)
    except CampaignError as error:
        raise WinnerError(str(error)) from error
    labels = list(CampaignVariant.objects.filter(campaign_id=run.campaign_id).values_list("label", flat=True))
    if label not in labels:
        raise WinnerError(_("This campaign has no variant %(label)s.") % {"label": label})
    chosen = run_winner_choose(run_id=run.pk, now=now, label=label, actor=actor)
    if chosen is None:
        raise WinnerError(_("The winner of this run was already chosen, or the run is not sending."))
    return chosen


def ab_tests_decide_due(*, now: datetime | None = None, limit: int = 100) -> list[tuple[int, str]]:
    """Choose the winner of every test whose window has ended; (run, winner) for those this
    process chose."""
    now = now or timezone.now()
    due = list(
        CampaignRun.objects.filter(test_state=TestState.TESTING, test_ends_at__lte=now, status__in=DECIDABLE)
        .order_by("test_ends_at").values_list("id", flat=True)[:limit]
    )
    chosen = []
    for run_id in due:
        winner = run_winner_choose(run_id=run_id, now=now)
        if winner:
            chosen.append((run_id, winner))
    return chosen


def ab_tests_tick(*, once: bool = False) -> list[str]:
    """The scheduler's A/B round (``notifications.scheduling``)."""
    chosen = ab_tests_decide_due()
    if chosen or once:
        return [f"chose {len(chosen)} A/B test winner(s)"]
    return []
