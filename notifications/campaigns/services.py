"""Campaign verbs: submit, approve, launch, pause, resume, cancel (DESIGN.md "Campaign").

Every transition is a compare-and-set on the current status (an UPDATE whose WHERE names the
status it expects), so a double click, two browser tabs or two scheduler processes cannot both
make it. Each writes an AuditEntry. Permission rules that belong to the business (a Manager
other than the author approves a large campaign; launching needs its own permission) are
checked here, not only in the views.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import allows

from ..models import ApprovalDecision, Campaign, CampaignRun, CampaignVariant, Delivery
from ..services import audit_record
from .approvals import ApprovalCheck, campaign_approval_check, campaign_fingerprint, may_approve
from .schedules import (
    RecurrenceSpec, ScheduleError, local_time_window, recurrence_after, recurrence_check, schedule_date_check,
)

Status = Campaign.Status
# Not launched yet: editable, launchable (when approval allows), cancellable.
EDITABLE = (Status.DRAFT, Status.PENDING_APPROVAL, Status.APPROVED, Status.CHANGES_REQUESTED)
OPEN_DELIVERY = (Delivery.Status.PLANNED, Delivery.Status.DEFERRED, Delivery.Status.PAUSED)


class CampaignError(Exception):
    """A transition that is not allowed now; the message is shown to the user as it is."""


def _transition(campaign: Campaign, *, allowed: tuple[str, ...], to: str, **fields) -> None:
    """Compare-and-set ``campaign`` from one of ``allowed`` to ``to``, or raise CampaignError."""
    updated = Campaign.objects.filter(pk=campaign.pk, status__in=allowed).update(
        status=to, updated_at=timezone.now(), **fields
    )
    if not updated:
        current = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
        label = Status(current).label if current else _("deleted")
        raise CampaignError(
            _("“%(name)s” is %(status)s; that is not possible now.") % {"name": campaign.name, "status": label}
        )
    campaign.status = to
    for name, value in fields.items():
        setattr(campaign, name, value)


def campaign_audience_size(*, campaign: Campaign) -> int:
    from ..audiences import audience_users

    return audience_users(audience=campaign.audience).count()


def campaign_approval(*, campaign: Campaign, size: int | None = None) -> ApprovalCheck:
    """Whether the campaign may go to ``size`` recipients (default: its audience now) unapproved.

    Large campaigns need a Manager's approval, given for what the campaign is (its fingerprint:
    audience definition, template, channels, category, schedule) and covering its size + 10%.
    """
    size = campaign_audience_size(campaign=campaign) if size is None else size
    return campaign_approval_check(campaign=campaign, size=size)


def campaign_needs_approval(*, campaign: Campaign, size: int | None = None) -> bool:
    return campaign_approval(campaign=campaign, size=size).needed


def campaign_first_run_at(*, campaign: Campaign, now: datetime) -> datetime:
    """When the campaign's first (or next) run is due, given its schedule; raises ScheduleError.

    The schedule is held to what the campaign form checks (dates 2000..2100; a recurrence that
    reads, recurs at most hourly and occurs within the horizon), whatever interface saved it.
    """
    kind = campaign.schedule
    if kind == Campaign.Schedule.NOW:
        return now
    if kind == Campaign.Schedule.ONCE:
        if campaign.send_at is None:
            raise ScheduleError(_("Choose when to send."))
        schedule_date_check(campaign.send_at)
        if campaign.send_at < now - campaign.max_lateness:
            raise ScheduleError(_("The send time is in the past."))
        return campaign.send_at
    if kind == Campaign.Schedule.RECURRING:
        return recurrence_check(_spec(campaign), now=now)[0]
    if kind == Campaign.Schedule.LOCAL_TIME:
        if campaign.local_send_date is None or campaign.local_send_time is None:
            raise ScheduleError(_("Choose the local date and time."))
        schedule_date_check(campaign.local_send_date)
        first, last = local_time_window(day=campaign.local_send_date, at=campaign.local_send_time)
        if last < now - campaign.max_lateness:
            raise ScheduleError(_("That local time has passed everywhere."))
        return max(first, now)
    raise ScheduleError(_("Unknown schedule."))


def _spec(campaign: Campaign) -> RecurrenceSpec:
    start = campaign.recurrence_start or campaign.created_at
    return RecurrenceSpec(rrule=campaign.rrule, tz=campaign.schedule_timezone, start=start)


def campaign_next_occurrence(*, campaign: Campaign, after: datetime) -> datetime | None:
    """The recurring campaign's next due time strictly after ``after``; None for one-off schedules
    and a rule that has ended. Raises ScheduleError, quickly, for a stored rule that cannot be
    expanded (saved before schedules were bounded): the scheduler fails the campaign with it."""
    if campaign.schedule != Campaign.Schedule.RECURRING:
        return None
    return recurrence_after(_spec(campaign), after)


def campaign_create(*, campaign: Campaign, actor) -> Campaign:
    """Save a new campaign written by ``actor`` (its author). Audited."""
    if not allows(actor, "campaign.edit") and not actor.has_perm("notifications.add_campaign"):
        raise CampaignError(_("You may not create campaigns."))
    if campaign.pk is not None:
        raise ValueError("campaign_create() is for new campaigns; use campaign_update().")
    with transaction.atomic():
        campaign.author = campaign.author or actor
        campaign.status = Status.DRAFT
        campaign.save()
        audit_record(actor=actor, action="campaign.create", target=campaign)
    return campaign


def campaign_update(*, campaign: Campaign, actor, changed: list[str]) -> None:
    """Save edits to a draft or pending campaign. An approval it had no longer covers what it
    is now unless only fields outside the approval changed (its name); it is voided and audited."""
    if not allows(actor, "campaign.edit"):
        raise CampaignError(_("You may not edit campaigns."))
    if not changed:
        return
    with transaction.atomic():
        stored = Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("status", flat=True).first()
        if stored not in EDITABLE:
            raise CampaignError(_("Only campaigns that have not been launched can be edited."))
        campaign.status = stored
        campaign.save()
        audit_record(actor=actor, action="campaign.edit", target=campaign, changes={"fields": list(changed)})
        if campaign.approved_by_id and campaign.approval_fingerprint != campaign_fingerprint(campaign):
            campaign_approval_reset(campaign=campaign, actor=actor)


def campaign_variants_saved(*, campaign: Campaign, actor, changed: bool) -> None:
    """After the A/B variants of an editable campaign were saved (the admin saves them after the
    campaign itself): audited, and an approval that no longer covers them is voided."""
    if not changed:
        return
    with transaction.atomic():
        audit_record(actor=actor, action="campaign.variants_edit", target=campaign, changes={
            "variants": list(CampaignVariant.objects.filter(campaign_id=campaign.pk).order_by("label")
                             .values("label", "template_id", "email_subject")),
        })
        campaign.refresh_from_db()
        if campaign.approved_by_id and campaign.approval_fingerprint != campaign_fingerprint(campaign):
            campaign_approval_reset(campaign=campaign, actor=actor)


def _require_clean_preflight(campaign: Campaign, *, doing: str) -> None:
    """Refuse while pre-flight has errors (a missing value, a part that does not render)."""
    from .preflight import campaign_preflight_errors

    errors = campaign_preflight_errors(campaign=campaign)
    if errors:
        raise CampaignError(
            _("Pre-flight found problems; fix them before you %(doing)s: %(errors)s")
            % {"doing": doing, "errors": " ".join(e.message for e in errors)}
        )


def campaign_submit(*, campaign: Campaign, actor, now: datetime | None = None) -> None:
    """Ask a Manager to approve: draft, changes requested (or approved, when the approval no longer
    holds) -> pending_approval. Refused while pre-flight has errors.

    Every Manager who may approve it gets an inbox message and an email, on commit."""
    from .approval_desk import managers_notify_submitted

    if not allows(actor, "campaign.edit"):
        raise CampaignError(_("You may not edit campaigns."))
    _require_clean_preflight(campaign, doing=_("submit it"))
    now = now or timezone.now()
    size = campaign_audience_size(campaign=campaign)
    if campaign.status == Status.APPROVED and not campaign_approval(campaign=campaign, size=size).needed:
        raise CampaignError(_("It is approved as it is: launch it, or change it first."))
    with transaction.atomic():
        _transition(campaign, allowed=(Status.DRAFT, Status.CHANGES_REQUESTED, Status.APPROVED), to=Status.PENDING_APPROVAL,
                    status_note="", submitted_at=now)
        audit_record(actor=actor, action="campaign.submit", target=campaign, changes={"audience_size": size})
        transaction.on_commit(lambda: managers_notify_submitted(campaign=campaign, size=size))


def campaign_approve(*, campaign: Campaign, actor, now: datetime | None = None, comment: str = "") -> None:
    """A Manager who is not the author approves the campaign as it is now, for its current size:
    pending_approval -> approved (or approved again, as it is now, once an edit voided it), with an
    optional comment back to the author.

    The approval records the campaign's fingerprint: a later change to the audience definition,
    template, channels, category or schedule voids it (``campaign_approval``). What it covered is
    kept in words (``ApprovalDecision.snapshot``) for the next submission's diff.
    """
    _require_approver(actor, campaign.author_id)
    size = campaign_audience_size(campaign=campaign)
    now = now or timezone.now()
    with transaction.atomic():
        fingerprint = campaign_fingerprint(campaign)
        _transition(
            campaign, allowed=(Status.PENDING_APPROVAL, Status.APPROVED), to=Status.APPROVED,
            approved_by=actor, approved_at=now, approved_size=size, approval_fingerprint=fingerprint,
            status_note="",
        )
        _decide(campaign, actor=actor, decision=ApprovalDecision.Decision.APPROVED, comment=comment, size=size, now=now)
        audit_record(actor=actor, action="campaign.approve", target=campaign,
                     changes={"audience_size": size, "fingerprint": fingerprint, "comment": comment})


def campaign_request_changes(*, campaign: Campaign, actor, comment: str, now: datetime | None = None) -> None:
    """A Manager sends the campaign back to its author with what to change:
    pending_approval (or approved) -> changes_requested. The comment is required and reaches the author's inbox."""
    _require_approver(actor, campaign.author_id)
    comment = (comment or "").strip()
    if not comment:
        raise CampaignError(_("Say what should change: the author gets your comment."))
    now = now or timezone.now()
    size = campaign_audience_size(campaign=campaign)
    with transaction.atomic():
        _transition(
            campaign, allowed=(Status.PENDING_APPROVAL, Status.APPROVED), to=Status.CHANGES_REQUESTED,
            approved_by=None, approved_at=None, approved_size=None, approval_fingerprint={},
            status_note=comment[:255],
        )
        _decide(campaign, actor=actor, decision=ApprovalDecision.Decision.CHANGES_REQUESTED, comment=comment,
                size=size, now=now)
        audit_record(actor=actor, action="campaign.request_changes", target=campaign, changes={"comment": comment})


def campaign_reject(*, campaign: Campaign, actor, note: str = "") -> None:
    """The campaign page's "Send back": changes requested, with a default comment if none."""
    campaign_request_changes(campaign=campaign, actor=actor, comment=note or _("Sent back without a comment."))


def _decide(campaign: Campaign, *, actor, decision: str, comment: str, size: int, now: datetime) -> None:
    from .approval_desk import author_notify_decision
    from .snapshots import campaign_snapshot

    record = ApprovalDecision.objects.create(
        campaign=campaign, decision=decision, comment=comment, decided_by=actor, decided_at=now,
        audience_size=size, snapshot=campaign_snapshot(campaign),
    )
    transaction.on_commit(lambda: author_notify_decision(campaign=campaign, decision=record))


def campaign_approval_reset(*, campaign: Campaign, actor) -> None:
    """An edit after approval needs a fresh approval (called when a campaign is changed): the
    approval is voided and an approved campaign goes back to draft, to be submitted again."""
    if campaign.approved_by_id and campaign.status in EDITABLE:
        back = Status.DRAFT if campaign.status == Status.APPROVED else campaign.status
        Campaign.objects.filter(pk=campaign.pk).update(
            approved_by=None, approved_at=None, approved_size=None, approval_fingerprint={}, status=back,
        )
        campaign.approved_by = campaign.approved_at = campaign.approved_size = None
        campaign.approval_fingerprint = {}
        campaign.status = back
        audit_record(actor=actor, action="campaign.approval_reset", target=campaign)


def campaign_launch(*, campaign: Campaign, actor, now: datetime | None = None) -> None:
    """Schedule the campaign: draft/pending_approval -> scheduled, due at its first run time.

    Needs the launch permission, and for a large audience an approval that covers its size.
    "Send now" campaigns start at once: a scheduler tick is enqueued on commit.
    """
    require_launch(actor, system=False)
    now = now or timezone.now()
    size = campaign_audience_size(campaign=campaign)
    if size == 0:
        raise CampaignError(_("The audience is empty."))
    _require_clean_preflight(campaign, doing=_("launch it"))
    approval = campaign_approval(campaign=campaign, size=size)
    if approval.needed:
        raise CampaignError(
            approval.reason + " " + _("Submit it for a Manager's approval.")
            if campaign.status in (Status.DRAFT, Status.CHANGES_REQUESTED, Status.APPROVED) else approval.reason
        )
    try:
        due = campaign_first_run_at(campaign=campaign, now=now)
    except ScheduleError as error:
        raise CampaignError(str(error)) from error
    with transaction.atomic():
        _transition(
            campaign, allowed=EDITABLE, to=Status.SCHEDULED,
            next_run_at=due, status_note="",
        )
        audit_record(
            actor=actor, action="campaign.launch", target=campaign,
            changes={"audience_size": size, "due": due.isoformat(), "schedule": campaign.schedule},
        )
        if due <= now:
            from .tasks import campaigns_launch_due_task

            transaction.on_commit(lambda: campaigns_launch_due_task.enqueue())


DUPLICATED_FIELDS = (
    "audience", "template", "category", "channels", "template_values", "delivery_mode", "schedule", "send_at",
    "rrule", "schedule_timezone", "recurrence_start", "local_send_time", "local_send_date", "max_lateness",
    "throttle_per_minute", "frequency_cap_per_day", "test_share", "test_metric", "test_window",
)


def campaign_duplicate(*, campaign: Campaign, actor) -> Campaign:
    """A new draft with the same settings, written by ``actor``; no approval, no runs. Audited."""
    if not allows(actor, "campaign.edit"):
        raise CampaignError(_("You may not create campaigns."))
    copy = Campaign(
        name=(_("Copy of %(name)s") % {"name": campaign.name})[:160],
        **{name: getattr(campaign, name) for name in DUPLICATED_FIELDS},
    )
    with transaction.atomic():
        campaign_create(campaign=copy, actor=actor)
        CampaignVariant.objects.bulk_create(
            CampaignVariant(campaign=copy, label=v.label, template_id=v.template_id, email_subject=v.email_subject)
            for v in CampaignVariant.objects.filter(campaign_id=campaign.pk)
        )
        audit_record(actor=actor, action="campaign.duplicate", target=copy, changes={"from": campaign.pk})
    return copy


def campaign_pause(*, campaign: Campaign, actor) -> int:
    """Stop sending mid-run: unsent deliveries of its open runs wait as ``paused``.

    Batches already claimed by a worker finish (each message is sent at most once either way);
    nothing else goes out until ``campaign_resume``. Returns the deliveries paused.
    """
    require_launch(actor)
    with transaction.atomic():
        _transition(campaign, allowed=(Status.RUNNING,), to=Status.PAUSED)
        runs = CampaignRun.objects.filter(
            campaign=campaign, status__in=(CampaignRun.Status.PLANNING, CampaignRun.Status.SENDING)
        )
        run_ids = list(runs.values_list("id", flat=True))
        runs.update(status=CampaignRun.Status.PAUSED, planning_unfinished=Case(
            When(status=CampaignRun.Status.PLANNING, then=Value(True)), default=F("planning_unfinished"),
        ))
        paused = Delivery.objects.filter(run_id__in=run_ids, status__in=OPEN_DELIVERY).update(
            status=Delivery.Status.PAUSED
        )
        audit_record(actor=actor, action="campaign.pause", target=campaign, changes={"paused": paused})
    return paused


def campaign_resume(*, campaign: Campaign, actor) -> int:
    """Carry on where the pause stopped: paused deliveries are planned and enqueued again."""
    from ..ledger import deliveries_enqueue

    require_launch(actor)
    with transaction.atomic():
        _transition(campaign, allowed=(Status.PAUSED,), to=Status.RUNNING)
        runs = CampaignRun.objects.filter(campaign=campaign, status=CampaignRun.Status.PAUSED)
        run_ids = list(runs.values_list("id", flat=True))
        # A run paused mid-planning plans on (its planning task reads ``planning``; were it told
        # ``sending`` it would take it for a cancel and stop with part of the audience unplanned).
        runs.update(
            status=Case(When(planning_unfinished=True, then=Value(CampaignRun.Status.PLANNING)),
                        default=Value(CampaignRun.Status.SENDING)),
        )
        resumed = Delivery.objects.filter(run_id__in=run_ids, status=Delivery.Status.PAUSED).update(
            status=Delivery.Status.PLANNED
        )
        deliveries_enqueue(waiting=Delivery.objects.filter(run_id__in=run_ids, status=Delivery.Status.PLANNED))
        audit_record(actor=actor, action="campaign.resume", target=campaign, changes={"resumed": resumed})
    from .runs import runs_finish_if_done

    transaction.on_commit(lambda: runs_finish_if_done(run_ids=run_ids))
    return resumed


def campaign_cancel(*, campaign: Campaign, actor) -> int:
    """Stop for good: unsent deliveries are recorded ``suppressed:cancelled``."""
    require_launch(actor)
    with transaction.atomic():
        _transition(
            campaign,
            allowed=(*EDITABLE, Status.SCHEDULED, Status.RUNNING, Status.PAUSED),
            to=Status.CANCELLED, next_run_at=None,
        )
        runs = CampaignRun.objects.filter(
            campaign=campaign,
            status__in=(
                CampaignRun.Status.PLANNING, CampaignRun.Status.AWAITING_APPROVAL, CampaignRun.Status.SENDING,
                CampaignRun.Status.PAUSED,
            ),
        )
        run_ids = list(runs.values_list("id", flat=True))
        runs.update(status=CampaignRun.Status.CANCELLED, finished_at=timezone.now())
        cancelled = Delivery.objects.filter(run_id__in=run_ids, status__in=OPEN_DELIVERY).update(
            status=Delivery.Status.SUPPRESSED, status_reason="suppressed:cancelled"
        )
        audit_record(actor=actor, action="campaign.cancel", target=campaign, changes={"cancelled": cancelled})
        from .runs import announce_finished

        for run_id in run_ids:
            announce_finished(run_id=run_id, campaign_id=campaign.pk, status=CampaignRun.Status.CANCELLED)
    return cancelled


def campaign_run_release(*, campaign: Campaign, actor, now: datetime | None = None) -> int:
    """A Manager approves a held run: the campaign is approved as it is now, for the audience
    as it is now, and the run carries on planning and sending. Returns the runs released."""
    from ..ledger import deliveries_enqueue
    from .tasks import campaign_run_plan_task

    _require_approver(actor, campaign.author_id)
    size = campaign_audience_size(campaign=campaign)
    now = now or timezone.now()
    with transaction.atomic():
        current = Campaign.objects.select_for_update().get(pk=campaign.pk)
        held = list(
            CampaignRun.objects.filter(campaign=campaign, status=CampaignRun.Status.AWAITING_APPROVAL)
            .values_list("id", flat=True)
        )
        if not held:
            raise CampaignError(_("No run of “%(name)s” is waiting for approval.") % {"name": campaign.name})
        fingerprint = campaign_fingerprint(current)
        Campaign.objects.filter(pk=campaign.pk).update(
            approved_by=actor, approved_at=now, approved_size=size, approval_fingerprint=fingerprint,
            status_note="", updated_at=now,
        )
        campaign.approved_by, campaign.approved_at, campaign.approved_size = actor, now, size
        campaign.approval_fingerprint, campaign.status_note = fingerprint, ""
        paused = current.status == Status.PAUSED
        CampaignRun.objects.filter(pk__in=held).update(
            status=CampaignRun.Status.PAUSED if paused else CampaignRun.Status.PLANNING, status_note="",
            planning_unfinished=paused,
        )
        if not paused:
            Delivery.objects.filter(run_id__in=held, status=Delivery.Status.PAUSED).update(status=Delivery.Status.PLANNED)
            deliveries_enqueue(waiting=Delivery.objects.filter(run_id__in=held, status=Delivery.Status.PLANNED))
        audit_record(actor=actor, action="campaign.run_approved", target=campaign,
                     changes={"runs": held, "audience_size": size, "fingerprint": fingerprint})
        for run_id in held:
            transaction.on_commit(lambda run_id=run_id: campaign_run_plan_task.enqueue(run_id=run_id))
    return len(held)


def may_launch(actor) -> bool:
    """The one rule for who starts and stops campaigns: launch, pause, resume, cancel, and end an
    A/B test early. The admin's buttons, the A/B winner pick and these services all ask it."""
    return allows(actor, "campaign.launch")


def require_launch(actor, *, system: bool = True) -> None:
    """``CampaignError`` unless ``actor`` may start and stop campaigns. ``actor=None`` is the
    system (a task, the shell's own code) and passes when ``system``."""
    if not ((system and actor is None) or may_launch(actor)):
        raise CampaignError(_("You may not start or stop campaigns."))


def _require_approver(actor, author_id: int | None) -> None:
    if not allows(actor, "campaign.approve"):
        raise CampaignError(_("You may not approve campaigns."))
    if not may_approve(actor, author_id=author_id):
        raise CampaignError(_("You cannot approve your own campaign; ask another Manager."))
