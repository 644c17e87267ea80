"""Journey services: editing, publishing, pausing, stopping (audited) and entering people.

State machine: ``draft -> live <-> paused``, and ``live``/``paused`` -> ``stopped`` (final).
Publishing freezes the draft graph into a new ``JourneyVersion``; enrollments already on an older
version finish on it, new entries take the new one. Pausing stops the tick from advancing the
journey's enrollments and refuses new entries; resuming picks them up where they were (their due
times have passed, so they advance on the next tick). Stopping ends every active enrollment as
``stopped``.

Every change writes an ``AuditEntry`` and moves the trigger version on (``triggers.cache``), so
signal entries and goals of live journeys are (un)bound in every process without a restart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import allows

from ..models import Journey, JourneyEnrollment, JourneyVersion
from ..services import audit_record
from ..triggers.cache import trigger_state_bump
from .entry import entry_problems
from .graph import graph_problems

Status = Journey.Status
State = JourneyEnrollment.State
ENTRY_KEY_MAX = 200
ENTER_CHUNK = 2000


class JourneyNotLive(Exception):
    """The journey exists but is not live (draft, paused or stopped): nobody is entered."""


def _require(actor, action: str) -> None:
    # ``actor=None`` is code (an app, a data migration): trusted as the deployer.
    if actor is not None and not allows(actor, action):
        raise PermissionDenied(_("You may not do this to journeys."))


def journey_problems(*, journey: Journey) -> list[str]:
    """What stops the journey's draft from being published, in words; [] when it can be."""
    problems = graph_problems(journey.graph)
    problems.extend(entry_problems(journey.entry, reentry=journey.reentry))
    if journey.reentry == Journey.Reentry.PER_PERIOD and not journey.reentry_days:
        problems.append(_("“Once per N days” needs the number of days."))
    return problems


def journey_save(*, journey: Journey, actor) -> Journey:
    """Create or change a journey: its draft graph (runs once published), and its name, entry,
    re-entry policy and category (which are the journey's, not a version's: they apply as saved,
    so a live journey's new entry binds in every process on their next save)."""
    _require(actor, "journey.edit")
    if journey.status == Status.STOPPED and journey.pk:
        raise ValidationError(_("A stopped journey cannot be changed."))
    problems = entry_problems(journey.entry, reentry=journey.reentry)
    if problems:
        raise ValidationError({"entry": problems})
    creating = journey.pk is None
    with transaction.atomic():
        # Only a live journey's entry is bound on the save path (``entry.compiled_journey_bindings``;
        # goals and exits are the published versions'): a draft edit moves no trigger token, so
        # editing in the builder does not make every process reload its triggers.
        before = None if creating else Journey.objects.filter(pk=journey.pk).values_list("status", "entry").first()
        rebind = Status.LIVE in (before[0] if before else None, journey.status) and before != (
            journey.status, journey.entry)
        if creating:
            journey.created_by = actor if getattr(actor, "pk", None) else None
        journey.full_clean()
        journey.save()
        audit_record(actor=actor, action="journey.create" if creating else "journey.edit", target=journey)
        if rebind:
            trigger_state_bump()
    return journey


def journey_publish(*, journey: Journey, actor, now: datetime | None = None) -> JourneyVersion:
    """Freeze the draft as a new version and make it the one new entries take; a draft goes live.

    Raises ``ValidationError`` with the graph's problems if it cannot run, and
    ``approvals.JourneyNeedsApproval`` if its reach needs a Manager's approval not on record.
    """
    _require(actor, "journey.publish")
    problems = journey_problems(journey=journey)
    if problems:
        raise ValidationError(problems)
    from .approvals import JourneyNeedsApproval, journey_approval_check

    check = journey_approval_check(journey=journey)
    if check.needed:
        raise JourneyNeedsApproval(check.reason)
    now = now or timezone.now()
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)
        if locked.status == Status.STOPPED:
            raise ValidationError(_("A stopped journey cannot be published."))
        number = (locked.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        graph = dict(journey.graph)
        version = JourneyVersion.objects.create(
            journey=locked, number=number,
            graph={"start": graph.get("start"), "steps": graph.get("steps")},
            goals=list(graph.get("goals") or []), exits=list(graph.get("exits") or []),
            published_at=now, published_by=actor if getattr(actor, "pk", None) else None,
        )
        status = Status.LIVE if locked.status == Status.DRAFT else locked.status
        Journey.objects.filter(pk=locked.pk).update(current_version=version, status=status, updated_at=now)
        journey.current_version, journey.status = version, status
        audit_record(actor=actor, action="journey.publish", target=journey, changes={"version": number})
        trigger_state_bump()
    return version


def _transition(*, journey: Journey, actor, to: str, allowed: Iterable[str], action: str) -> bool:
    _require(actor, "journey.publish")
    with transaction.atomic():
        changed = Journey.objects.filter(pk=journey.pk, status__in=list(allowed)).update(
            status=to, updated_at=timezone.now()
        )
        if not changed:
            return False
        journey.status = to
        audit_record(actor=actor, action=action, target=journey)
        trigger_state_bump()
    return True


def journey_pause(*, journey: Journey, actor) -> bool:
    """Stop advancing the journey and refuse new entries; ``False`` if it was not live."""
    return _transition(journey=journey, actor=actor, to=Status.PAUSED, allowed=[Status.LIVE], action="journey.pause")


def journey_resume(*, journey: Journey, actor) -> bool:
    """Advance a paused journey again (overdue steps run on the next tick); ``False`` if not paused."""
    return _transition(journey=journey, actor=actor, to=Status.LIVE, allowed=[Status.PAUSED], action="journey.resume")


def journey_stop(*, journey: Journey, actor, now: datetime | None = None) -> int:
    """End the journey for good: every active enrollment ends as ``stopped``. How many were active."""
    _require(actor, "journey.publish")
    now = now or timezone.now()
    with transaction.atomic():
        changed = Journey.objects.filter(pk=journey.pk).exclude(status=Status.STOPPED).update(
            status=Status.STOPPED, updated_at=now
        )
        if not changed:
            return 0
        ended = JourneyEnrollment.objects.filter(journey=journey, state=State.ACTIVE).update(
            state=State.STOPPED, state_reason="journey_stopped", due_at=None, finished_at=now, lease_owner=""
        )
        journey.status = Status.STOPPED
        audit_record(actor=actor, action="journey.stop", target=journey, changes={"enrollments_stopped": ended})
        trigger_state_bump()
    return ended


# --- Entering -------------------------------------------------------------------------------------

@dataclass
class EnterResult:
    entered: int = 0
    skipped: int = 0  # already in it, or not allowed back yet (re-entry policy), or inactive


def journey_enter(
    *,
    journey: Journey | str,
    user_ids: Iterable[int],
    context: dict | None = None,
    entry_key: str | None = None,
    now: datetime | None = None,
) -> EnterResult:
    """Enroll people on the journey's published version, as its re-entry policy allows.

    ``entry_key`` names the occasion (an order id): entering twice with the same key enters once,
    whatever the policy (a retried task is harmless). Without one, "once ever" enters a person
    once across all versions, "once per N days" once in each N days, "every time" on each call.
    ``context`` is plain JSON the steps can branch on and templates can show. Raises
    ``JourneyNotLive`` for a journey that is not live and ``Journey.DoesNotExist`` for an unknown key.
    The first steps run on the next tick.
    """
    if isinstance(journey, str):
        journey = Journey.objects.get(key=journey)
    else:
        journey.refresh_from_db(fields=["status", "current_version"])
    if journey.status != Status.LIVE or journey.current_version_id is None:
        raise JourneyNotLive(journey.key)
    now = now or timezone.now()
    policy = journey.reentry
    if entry_key:
        key = str(entry_key)[:ENTRY_KEY_MAX]
    elif policy == Journey.Reentry.ONCE:
        key = ""
    else:
        key = f"at:{now.isoformat()}:{uuid.uuid4().hex[:8]}"
    result = EnterResult()
    asked = sorted(set(user_ids))
    with transaction.atomic():
        # In chunks: a whole audience may enter at once, and a statement takes so many parameters.
        for start in range(0, len(asked), ENTER_CHUNK):
            chunk = asked[start:start + ENTER_CHUNK]
            entered = _enter_chunk(journey=journey, entries=[(user_id, key, context) for user_id in chunk], now=now)
            result.entered += entered
            result.skipped += len(chunk) - entered
    return result


def journey_enter_many(*, journey: Journey, entries: list[tuple[int, str, dict]], now: datetime | None = None) -> EnterResult:
    """Enter many (person, entry key, context) at once, as ``journey_enter`` would one by one: a
    few queries per 2,000 rows instead of a handful per row (the date scan's occurrences).

    The same key enters a person once; under "once ever" and "once per N days" a person with two
    occurrences in one call enters once (the first), as the second call of ``journey_enter`` would
    be kept out by the first. Raises ``JourneyNotLive``.
    """
    journey.refresh_from_db(fields=["status", "current_version", "reentry", "reentry_days"])
    if journey.status != Status.LIVE or journey.current_version_id is None:
        raise JourneyNotLive(journey.key)
    now = now or timezone.now()
    result = EnterResult()
    with transaction.atomic():
        for start in range(0, len(entries), ENTER_CHUNK):
            chunk = entries[start:start + ENTER_CHUNK]
            entered = _enter_chunk(journey=journey, entries=chunk, now=now)
            result.entered += entered
            result.skipped += len(chunk) - entered
    return result


def reentry_blocking(journey: Journey, *, now: datetime):
    """The enrollments that keep a person (``OuterRef("pk")``: a user) out of ``journey`` under its
    re-entry policy, for an anti-join; None under "every time" (nobody is kept out)."""
    if journey.reentry == Journey.Reentry.ALWAYS:
        return None
    earlier = JourneyEnrollment.objects.filter(journey=journey, user_id=OuterRef("pk"))
    if journey.reentry == Journey.Reentry.PER_PERIOD:
        earlier = earlier.filter(entered_at__gt=now - timedelta(days=journey.reentry_days or 1))
    return earlier


def _enter_chunk(*, journey: Journey, entries: list[tuple[int, str, dict | None]], now: datetime) -> int:
    """Enroll the active people of ``entries`` (person, entry key, context) the re-entry policy
    lets in, on the current version; how many are new (an existing (person, key) is skipped).
    Under a policy that keeps people out, a person listed twice enters once (the first)."""
    people = get_user_model().objects.filter(pk__in={user_id for user_id, _k, _c in entries}, is_active=True)
    blocking = reentry_blocking(journey, now=now)
    if blocking is not None:
        people = people.filter(~Exists(blocking))
    allowed = set(people.values_list("pk", flat=True))
    rows, seen = [], set()
    for user_id, key, context in entries:
        key = str(key)[:ENTRY_KEY_MAX]
        once = user_id if blocking is not None else (user_id, key)
        if user_id not in allowed or once in seen:
            continue
        seen.add(once)
        rows.append(JourneyEnrollment(journey=journey, version_id=journey.current_version_id, user_id=user_id,
                                      entry_key=key, context=dict(context or {}), entered_at=now, due_at=now))
    if not rows:
        return 0
    existing = set(JourneyEnrollment.objects.filter(
        version_id=journey.current_version_id, user_id__in={r.user_id for r in rows},
        entry_key__in={r.entry_key for r in rows},
    ).values_list("user_id", "entry_key"))
    JourneyEnrollment.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return sum((r.user_id, r.entry_key) not in existing for r in rows)


def enter(journey_key: str, user, context: dict | None = None, entry_key: str | None = None) -> bool:
    """Put ``user`` (a user or a user id) on the live journey ``journey_key``; whether they entered.

    The public API (``notifications.api.enter_journey``). See ``journey_enter``.
    """
    user_id = getattr(user, "pk", user)
    return journey_enter(journey=journey_key, user_ids=[user_id], context=context, entry_key=entry_key).entered == 1


# --- Moving people in flight to the current version ------------------------------------------------

@dataclass
class MovePreview:
    """Where the people on older versions would land: ``(version number, step) -> (new step, n)``.

    ``stay`` counts those at a step the current version does not have: they finish where they are.
    """

    to_version: int
    lands: dict[tuple[int, str], tuple[str, int]]
    stay: int = 0

    @property
    def moving(self) -> int:
        return sum(n for _step, n in self.lands.values())


def _movable(journey: Journey):
    from django.db.models import Exists, OuterRef

    from .graph import steps_by_id

    current = journey.current_version
    steps = set(steps_by_id(current.graph or {}))
    clash = JourneyEnrollment.objects.filter(version=current, user_id=OuterRef("user_id"), entry_key=OuterRef("entry_key"))
    active = (JourneyEnrollment.objects.filter(journey=journey, state=State.ACTIVE, lease_owner="")
              .exclude(version=current).filter(~Exists(clash)))
    # Before the first step, at a step the new version also has, or past the last wait: same place.
    landing = [step for step in active.values_list("current_step", flat=True).distinct()
               if step in ("", "#end") or step in steps]
    return active, landing


def journey_move_preview(*, journey: Journey) -> MovePreview:
    """Where moving the journey's people in flight to its current version would put them (read only).

    A person lands on the step with the same id (a send already made there is not sent again: its
    ledger key is the enrollment's and the step's); at a step the new version lacks, they stay.
    """
    from django.db.models import Count

    journey.refresh_from_db(fields=["current_version", "status"])
    if journey.current_version is None:
        return MovePreview(to_version=0, lands={})
    active, landing = _movable(journey)
    preview = MovePreview(to_version=journey.current_version.number, lands={})
    for number, step, n in active.values_list("version__number", "current_step").annotate(n=Count("id")):
        if step in landing:
            preview.lands[(number, step)] = (step, n)
        else:
            preview.stay += n
    return preview


def journey_move_in_flight(*, journey: Journey, actor) -> int:
    """Move the people in flight on older versions to the current one, as the preview shows.

    Those being advanced by a tick at this moment (leased) and those already on the current
    version for the same entry are left where they are. Audited; how many moved.
    """
    _require(actor, "journey.publish")
    journey.refresh_from_db(fields=["current_version", "status"])
    if journey.current_version is None or journey.status == Status.STOPPED:
        return 0
    with transaction.atomic():
        active, landing = _movable(journey)
        moved = JourneyEnrollment.objects.filter(
            pk__in=list(active.filter(current_step__in=landing).values_list("pk", flat=True))
        ).update(version=journey.current_version)
        audit_record(actor=actor, action="journey.move", target=journey,
                     changes={"moved": moved, "to_version": journey.current_version.number})
        trigger_state_bump()
    return moved
