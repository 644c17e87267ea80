"""Reads about journeys: per-step counters of a version (what the builder's cards will show)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from ..models import JourneyEnrollment, JourneyStepRun, JourneyVersion

State = JourneyEnrollment.State


@dataclass
class StepCounts:
    now: int = 0  # waiting in this step, or due to run it on the next tick
    passed: int = 0  # ran it (a wait: finished waiting)
    exited: int = 0  # left the journey (exit condition) while at this step
    converted: int = 0  # reached a goal while at this step


def version_step_counts(*, version: JourneyVersion) -> dict[str, StepCounts]:
    """Counters for every step of ``version``, in four grouped queries whatever its size.

    "At this step" for an enrollment that ended is the step it would have run next (a person
    converted during a two-day wait counts at the step after the wait).
    """
    counts: dict[str, StepCounts] = {
        step["id"]: StepCounts() for step in (version.graph or {}).get("steps") or [] if isinstance(step, dict)
    }

    def at(step_id: str) -> StepCounts:
        return counts.setdefault(step_id or (version.graph or {}).get("start", ""), StepCounts())

    runs = JourneyStepRun.objects.filter(version=version)
    for step_id, n in runs.filter(status=JourneyStepRun.Status.WAITING).values_list("step_id").annotate(n=Count("id")):
        at(step_id).now += n
    for step_id, n in runs.filter(status=JourneyStepRun.Status.DONE).values_list("step_id").annotate(n=Count("id")):
        at(step_id).passed += n
    enrollments = JourneyEnrollment.objects.filter(version=version)
    for step_id, n in (enrollments.filter(state=State.ACTIVE).exclude(step_runs__status=JourneyStepRun.Status.WAITING)
                       .values_list("current_step").annotate(n=Count("id"))):
        if step_id != "#end":
            at(step_id).now += n
    for step_id, state, n in (enrollments.filter(state__in=[State.EXITED, State.CONVERTED])
                              .values_list("current_step", "state").annotate(n=Count("id"))):
        if step_id == "#end":
            continue
        if state == State.EXITED:
            at(step_id).exited += n
        else:
            at(step_id).converted += n
    return counts


def journey_card_counts(*, journey) -> dict[str, StepCounts]:
    """The builder's live counters: the published version's per-step counts (the draft's cards
    show the figures of the step with the same id), in the same fixed number of queries."""
    if journey.current_version_id is None:
        return {}
    version = JourneyVersion.objects.only("pk", "graph").get(pk=journey.current_version_id)
    return version_step_counts(version=version)
