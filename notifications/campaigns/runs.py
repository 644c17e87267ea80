"""Runs: starting due campaigns exactly once, planning their frozen audience, finishing them.

DESIGN.md "The pipeline", step 1: a compare-and-set ``scheduled -> running`` on the campaign row
(``WHERE status = 'scheduled' AND next_run_at = <the occurrence>``) lets exactly one scheduler
start each occurrence, and ``CampaignRun``'s unique ``(campaign, occurrence)`` backs it up. A run
that could not start within the campaign's maximum lateness is recorded ``skipped`` with the
reason instead of being sent late.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from config.logs import log_context

from ..models import Campaign, CampaignRun, Delivery
from ..services import audit_record
from ..signals import campaign_finished
from .ab_tests import VariantPlan, campaign_variants, is_tested, test_groups, variant_plans
from .approvals import campaign_approval_check
from .planning import template_deliveries_plan
from .schedules import ScheduleError, local_send_times, local_time_window
from .services import OPEN_DELIVERY, campaign_next_occurrence
from .values import campaign_values

RunStatus = CampaignRun.Status
logger = logging.getLogger(__name__)
UNFINISHED = (
    Delivery.Status.PLANNED, Delivery.Status.DEFERRED, Delivery.Status.PAUSED, Delivery.Status.SENDING,
)
PLANNING_STALE_AFTER = timedelta(minutes=10)


def campaigns_launch_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Start every scheduled campaign that is due; returns the runs this process started."""
    now = now or timezone.now()
    due = list(
        Campaign.objects.filter(status=Campaign.Status.SCHEDULED, next_run_at__lte=now)
        .order_by("next_run_at", "id")
        .values_list("id", "next_run_at")[:limit]
    )
    started = []
    for campaign_id, occurrence in due:
        run = campaign_run_start(campaign_id=campaign_id, occurrence=occurrence, now=now)
        if run is not None and run.status == RunStatus.PLANNING:
            started.append(run.pk)
    return started


def _lateness_note(occurrence: datetime, now: datetime, limit: timedelta) -> str:
    minutes = int((now - occurrence).total_seconds() // 60)
    return _(
        "Not sent: the run due %(due)s could only start %(late)d minutes late (maximum lateness %(limit)d minutes)."
    ) % {"due": date_format(occurrence, "DATETIME_FORMAT"), "late": minutes, "limit": int(limit.total_seconds() // 60)}


def _deadline(campaign: Campaign, occurrence: datetime) -> datetime:
    """The last moment the occurrence may start: for local-time campaigns, when it is last due somewhere."""
    if campaign.schedule == Campaign.Schedule.LOCAL_TIME and campaign.local_send_date and campaign.local_send_time:
        return local_time_window(day=campaign.local_send_date, at=campaign.local_send_time)[1] + campaign.max_lateness
    return occurrence + campaign.max_lateness


def _schedule_failed(campaign: Campaign, *, occurrence: datetime, reason: str, now: datetime) -> None:
    """Fail a scheduled campaign whose rule cannot be expanded; nothing is sent, the note says why."""
    note = (_("Stopped, nothing sent: %(reason)s") % {"reason": reason})[:255]
    if Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SCHEDULED, next_run_at=occurrence).update(
        status=Campaign.Status.FAILED, next_run_at=None, status_note=note, updated_at=now
    ):
        audit_record(actor=None, action="campaign.schedule_failed", target=campaign,
                     changes={"due": occurrence.isoformat(), "note": note})


def campaign_run_start(*, campaign_id: int, occurrence: datetime, now: datetime | None = None) -> CampaignRun | None:
    """Start the run due at ``occurrence`` if nobody else has; None when another process won."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            return None
        late = now > _deadline(campaign, occurrence)
        # A recurring campaign moves on to its next occurrence (after now: missed ones are not replayed).
        try:
            nxt = campaign_next_occurrence(campaign=campaign, after=max(occurrence, now) if late else occurrence)
        except ScheduleError as error:  # a rule stored before schedules were bounded: stop it, say why
            _schedule_failed(campaign, occurrence=occurrence, reason=str(error), now=now)
            return None
        if late:
            note = _lateness_note(occurrence, now, campaign.max_lateness)
            fields = {"status": Campaign.Status.SCHEDULED if nxt else Campaign.Status.FAILED, "next_run_at": nxt}
            run_status = RunStatus.SKIPPED
        else:
            note = ""
            fields = {"status": Campaign.Status.RUNNING, "next_run_at": nxt}
            run_status = RunStatus.PLANNING
        won = Campaign.objects.filter(
            pk=campaign_id, status=Campaign.Status.SCHEDULED, next_run_at=occurrence
        ).update(status_note=note, updated_at=now, **fields)
        if not won:
            return None
        tested = not late and is_tested(campaign_variants(campaign=campaign))
        try:
            with transaction.atomic():
                run = CampaignRun.objects.create(
                    campaign=campaign, occurrence=occurrence, status=run_status, status_note=note, started_at=now,
                    finished_at=now if late else None, test_state=CampaignRun.TestState.TESTING if tested else "",
                )
        except IntegrityError:  # a run for this occurrence exists already: never a second one
            return None
        audit_record(
            actor=None, action="campaign.run_skipped" if late else "campaign.run_started", target=campaign,
            changes={"run": run.pk, "due": occurrence.isoformat(), **({"note": note} if note else {})},
        )
        if not late:
            from .tasks import campaign_run_plan_task

            transaction.on_commit(lambda: campaign_run_plan_task.enqueue(run_id=run.pk))
    return run


def campaign_run_plan(*, run_id: int, now: datetime | None = None, chunk_size: int = 1000) -> None:
    """Freeze the run's audience into planned deliveries, chunk by chunk (safe to run again).

    Each chunk is planned in a transaction that first locks the run row, so a pause or cancel
    that commits between chunks is seen by the next one and never overtaken by it.

    Approval is checked again here, against the audience as it is at run time: a campaign
    launched under the threshold whose audience has grown past it, or whose approval no longer
    covers its size or its content, is held ``awaiting_approval`` before anything is planned.
    Planning also stops and holds the run if the audience grows past the limit while it is being
    frozen, so a run never sends to more people than were approved (or than the threshold).
    """
    # Every line logged while planning names the run and, once known, its campaign.
    with log_context(run_id=run_id) as log_ids:
        _campaign_run_plan(run_id=run_id, now=now or timezone.now(), chunk_size=chunk_size, log_ids=log_ids)


def _campaign_run_plan(*, run_id: int, now: datetime, chunk_size: int, log_ids: dict) -> None:
    from ..audiences import audience_user_ids, audience_users

    run = CampaignRun.objects.select_related(
        "campaign__category", "campaign__audience", "campaign__template"
    ).filter(pk=run_id).first()
    if run is None or run.status not in (RunStatus.PLANNING, RunStatus.PAUSED):
        return
    campaign = run.campaign
    log_ids["campaign_id"] = campaign.pk
    approval = campaign_approval_check(campaign=campaign, size=audience_users(audience=campaign.audience).count())
    if approval.needed:
        campaign_run_hold(run_id=run_id, reason=approval.reason, size=approval.size)
        return
    send_at = None
    if campaign.schedule == Campaign.Schedule.LOCAL_TIME:
        day, at = campaign.local_send_date, campaign.local_send_time

        def send_at(facts):
            return local_send_times(day=day, at=at, tz=facts.timezone)

    # An A/B test: while testing, each variant goes to its test group and nobody else is
    # planned; once decided, everyone gets the winner (the test group is already in the ledger).
    plans: list[VariantPlan] = []
    if run.test_state:
        plans = variant_plans(campaign=campaign)
        if run.test_state == CampaignRun.TestState.DECIDED:
            plans = [p for p in plans if p.label == run.winner]
    done = 0
    for ids in audience_user_ids(audience=campaign.audience, chunk_size=chunk_size):
        if done + len(ids) > approval.limit:
            grown = campaign_approval_check(campaign=campaign, size=done + len(ids))
            campaign_run_hold(run_id=run_id, reason=grown.reason, size=done + len(ids))
            return
        with transaction.atomic():
            status = CampaignRun.objects.select_for_update().filter(pk=run_id).values_list("status", flat=True).first()
            if status not in (RunStatus.PLANNING, RunStatus.PAUSED):
                return  # cancelled meanwhile: plan nothing more
            offset = done
            for template_id, group_ids, extra in _plan_groups(run, campaign, ids, plans):
                template_deliveries_plan(
                    template_id=template_id, user_ids=group_ids, channels=list(campaign.channels),
                    category=campaign.category, key_prefix=f"run:{run_id}",
                    context={**campaign_values(campaign=campaign), "campaign": {"id": campaign.pk, "name": campaign.name}},
                    run_id=run_id, fallback=campaign.delivery_mode == Campaign.ChannelUse.FALLBACK, now=now,
                    daily_cap=campaign.frequency_cap_per_day, send_at=send_at,
                    max_lateness=campaign.max_lateness if send_at else None,
                    throttle_per_minute=campaign.throttle_per_minute, throttle_offset=offset,
                    paused=status == RunStatus.PAUSED, chunk_size=chunk_size, content_extra=extra,
                )
                offset += len(group_ids)
        done += len(ids)
    with transaction.atomic():
        counts = Delivery.objects.filter(run_id=run_id).aggregate(
            total=Count("id"),
            suppressed=Count("id", filter=Q(status=Delivery.Status.SUPPRESSED)),
            recipients=Count("recipient_id", distinct=True),
        )
        CampaignRun.objects.filter(pk=run_id).update(
            audience_size=counts["recipients"], planned=counts["total"] - counts["suppressed"],
            suppressed=counts["suppressed"], planning_unfinished=False,
        )
        CampaignRun.objects.filter(pk=run_id, status=RunStatus.PLANNING).update(status=RunStatus.SENDING)
        # The test window starts when the test group is planned (once: a re-plan keeps it).
        CampaignRun.objects.filter(
            pk=run_id, test_state=CampaignRun.TestState.TESTING, test_ends_at__isnull=True
        ).update(test_ends_at=timezone.now() + campaign.test_window)
    logger.info("Run %s of campaign %s planned: %d deliveries for %d recipients, %d suppressed", run_id, campaign.pk,
                counts["total"] - counts["suppressed"], counts["recipients"], counts["suppressed"])
    runs_finish_if_done(run_ids=[run_id])


def _plan_groups(run: CampaignRun, campaign: Campaign, ids: list[int], plans: list[VariantPlan]):
    """(template, user ids, content extra) to plan for one chunk of the audience."""
    if not run.test_state:
        yield campaign.template_id, ids, None
        return
    if run.test_state == CampaignRun.TestState.DECIDED:
        for plan in plans:  # the winner only
            yield plan.template_id, ids, plan.content_extra(group="rest")
        return
    groups = test_groups(run_id=run.pk, user_ids=ids, labels=[p.label for p in plans], share=campaign.test_share)
    for plan in plans:
        if groups[plan.label]:
            yield plan.template_id, groups[plan.label], plan.content_extra(group="test")


def runs_finish_if_done(*, run_ids) -> list[int]:
    """Complete sending runs with no unfinished delivery left; the campaign then goes back to
    ``scheduled`` (a recurring one with a next occurrence) or to ``completed``."""
    finished = []
    for run_id in run_ids:
        if Delivery.objects.filter(run_id=run_id, status__in=UNFINISHED).exists():
            continue
        with transaction.atomic():
            now = timezone.now()
            # A run still testing is not done: the rest goes out once the winner is chosen.
            if not CampaignRun.objects.filter(pk=run_id, status=RunStatus.SENDING).exclude(
                test_state=CampaignRun.TestState.TESTING
            ).update(status=RunStatus.COMPLETED, finished_at=now):
                continue
            run = CampaignRun.objects.select_related("campaign").get(pk=run_id)
            campaign = run.campaign
            still_open = campaign.runs.filter(status__in=OPEN_RUNS).exists()
            if not still_open:
                to = Campaign.Status.SCHEDULED if campaign.next_run_at else Campaign.Status.COMPLETED
                Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.RUNNING).update(status=to, updated_at=now)
            announce_finished(run_id=run_id, campaign_id=campaign.pk, status=RunStatus.COMPLETED)
        with log_context(run_id=run_id, campaign_id=campaign.pk):
            logger.info("Run %s of campaign %s completed", run_id, campaign.pk)
        finished.append(run_id)
    return finished


OPEN_RUNS = (RunStatus.PLANNING, RunStatus.AWAITING_APPROVAL, RunStatus.SENDING, RunStatus.PAUSED)


def campaign_run_hold(*, run_id: int, reason: str, size: int) -> bool:
    """Hold a run for a Manager's approval: nothing more is planned or sent until
    ``campaign_run_release``. Deliveries already planned wait as ``paused``. Audited."""
    with transaction.atomic():
        run = CampaignRun.objects.select_for_update().select_related("campaign").filter(pk=run_id).first()
        if run is None or run.status not in (RunStatus.PLANNING, RunStatus.PAUSED, RunStatus.SENDING):
            return False
        note = reason[:255]
        CampaignRun.objects.filter(pk=run_id).update(status=RunStatus.AWAITING_APPROVAL, status_note=note)
        paused = Delivery.objects.filter(run_id=run_id, status__in=OPEN_DELIVERY).update(status=Delivery.Status.PAUSED)
        Campaign.objects.filter(pk=run.campaign_id).update(status_note=note, updated_at=timezone.now())
        audit_record(actor=None, action="campaign.run_held", target=run.campaign,
                     changes={"run": run_id, "audience_size": size, "reason": reason, "paused": paused})
    return True


def announce_finished(*, run_id: int, campaign_id: int, status: str) -> None:
    transaction.on_commit(
        lambda: campaign_finished.send(sender=CampaignRun, run_id=run_id, campaign_id=campaign_id, status=status)
    )


def runs_housekeeping(*, now: datetime | None = None) -> dict[str, int]:
    """The scheduler's backstop: re-plan runs whose planning task was lost, finish idle runs."""
    from .tasks import campaign_run_plan_task

    now = now or timezone.now()
    stale = list(
        CampaignRun.objects.filter(status=RunStatus.PLANNING, started_at__lt=now - PLANNING_STALE_AFTER)
        # A run planning an A/B test's rest started its planning when the winner was chosen.
        .exclude(winner_chosen_at__gte=now - PLANNING_STALE_AFTER)
        .values_list("id", flat=True)
    )
    for run_id in stale:
        transaction.on_commit(lambda run_id=run_id: campaign_run_plan_task.enqueue(run_id=run_id))
    sending = list(CampaignRun.objects.filter(status=RunStatus.SENDING).values_list("id", flat=True))
    return {"replanned": len(stale), "finished": len(runs_finish_if_done(run_ids=sending))}
