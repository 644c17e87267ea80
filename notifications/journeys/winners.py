"""A/B splits with an auto-winner: after a window, the best arm takes everyone who comes later.

A split step may say ``"auto_winner": {"metric": "opens" | "clicks" | "goal", "hours": 24}``.
Until ``hours`` after the first enrollment passed the split, people are spread over the arms by
their percentages; then the tick (``split_winners_decide``) counts each arm from the ledger and
picks the leader with ``notifications.experiments`` (the campaigns' z-test and winner rule):

* ``opens`` / ``clicks``: per arm, the people whose delivery of the arm's first send step reached
  them (not suppressed, failed or bounced), and of those how many opened (or read, or clicked) /
  clicked;
* ``goal``: per arm, the people who passed the split, and how many converted (a goal).

The choice is stored once on ``JourneyVersion.winners[step]`` with the counts and the
significance note, and audited. Two ticks deciding at once serialise on the version row (an
UPDATE of it takes the row's lock, PostgreSQL, or the database's write lock, SQLite) and the second
re-reads and keeps what the first wrote: compare-and-set, exactly once. Enrollments reaching the
split afterwards take the winner's arm (``engine._walk``); those already past it stay on theirs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from .. import experiments
from ..models import Delivery, Journey, JourneyEnrollment, JourneyStepRun, JourneyVersion
from ..services import audit_record
from .engine import delivery_key
from .graph import steps_by_id

METRICS = ("opens", "clicks", "goal")
NOT_REACHED = ("planned", "paused", "suppressed", "sending", "deferred", "failed", "bounced")
KEYS_PER_QUERY = 1000


def auto_splits(graph: dict) -> list[dict]:
    return [s for s in (graph or {}).get("steps") or []
            if isinstance(s, dict) and s.get("type") == "split" and isinstance(s.get("auto_winner"), dict)]


def measured_send(step_id: str | None, steps: dict[str, dict]) -> dict | None:
    """The first send step on the way from ``step_id`` (through waits and sends only), or None."""
    seen = set()
    while step_id and step_id in steps and step_id not in seen:
        seen.add(step_id)
        step = steps[step_id]
        if step.get("type") == "send":
            return step
        if step.get("type") != "wait":
            return None
        step_id = step.get("next")
    return None


def split_winners_decide(*, now: datetime | None = None, versions: Iterable[JourneyVersion] | None = None) -> int:
    """Choose the winner of every auto-winner split whose window is over; how many were chosen."""
    now = now or timezone.now()
    if versions is None:
        versions = JourneyVersion.objects.filter(journey__status=Journey.Status.LIVE).only("pk", "graph", "winners")
    chosen = 0
    for version in versions:
        for split in auto_splits(version.graph):
            if split["id"] in (version.winners or {}):
                continue
            if _decide(version, split, now=now):
                chosen += 1
    return chosen


def _decide(version: JourneyVersion, split: dict, *, now: datetime) -> bool:
    rule = split["auto_winner"]
    runs = JourneyStepRun.objects.filter(version=version, step_id=split["id"])
    first = runs.aggregate(at=Min("started_at"))["at"]
    if first is None or first + timedelta(hours=rule.get("hours") or 0) > now:
        return False
    rows = arm_counts(version, split)
    metric = rule.get("metric")
    counts = experiments.counts_from(rows)
    # ``experiments`` knows opens and clicks; a goal rate is compared the same way (as "opens").
    verdict = experiments.verdict(counts=counts, metric="opens" if metric == "goal" else metric)
    if verdict.leader is None:
        return False  # nobody reached yet: keep splitting, decide on a later tick
    with transaction.atomic():
        # Take the version row's lock first, then re-read: a second tick waits here and then sees
        # the first one's choice.
        JourneyVersion.objects.filter(pk=version.pk).update(winners=F("winners"))
        winners = dict(JourneyVersion.objects.filter(pk=version.pk).values_list("winners", flat=True).get() or {})
        if split["id"] in winners:
            version.winners = winners
            return False
        winners[split["id"]] = {"arm": verdict.leader, "metric": metric, "chosen_at": now.isoformat(),
                                "counts": rows, "p_value": verdict.test.p_value,
                                "significant": verdict.significant}
        JourneyVersion.objects.filter(pk=version.pk).update(winners=winners)
        version.winners = winners
        audit_record(actor=None, action="journey.split_winner", target=version.journey,
                     changes={"version": version.number, "step": split["id"], "arm": verdict.leader,
                              "metric": metric, "counts": rows})
    return True


def arm_counts(version: JourneyVersion, split: dict) -> dict[str, dict[str, int]]:
    """``{arm: {"trials", "opens", "clicks"}}`` of a split, from its step runs and the ledger.

    For the goal metric, ``opens`` and ``clicks`` both hold the conversions.
    """
    arms = [str(arm["name"]) for arm in split["arms"]]
    runs = JourneyStepRun.objects.filter(version=version, step_id=split["id"], outcome__in=arms)
    rows = {arm: {"trials": 0, "opens": 0, "clicks": 0} for arm in arms}
    if split["auto_winner"].get("metric") == "goal":
        converted = Count("id", filter=Q(enrollment__state=JourneyEnrollment.State.CONVERTED))
        for arm, trials, conversions in runs.values_list("outcome").annotate(n=Count("id"), c=converted):
            rows[arm] = {"trials": trials, "opens": conversions, "clicks": conversions}
        return rows
    steps = steps_by_id(version.graph)
    wanted: dict[str, tuple[str, int]] = {}
    by_arm = {str(arm["name"]): measured_send(arm.get("next"), steps) for arm in split["arms"]}
    for arm, enrollment_id in runs.values_list("outcome", "enrollment_id"):
        send = by_arm.get(arm)
        for channel in (send or {}).get("channels") or []:
            wanted[delivery_key(enrollment_id, send["id"], channel)] = (arm, enrollment_id)
    reached, opened, clicked = defaultdict(set), defaultdict(set), defaultdict(set)
    keys = list(wanted)
    for start in range(0, len(keys), KEYS_PER_QUERY):
        for key, status, opened_at, read_at, clicked_at in Delivery.objects.filter(
            idempotency_key__in=keys[start:start + KEYS_PER_QUERY]
        ).values_list("idempotency_key", "status", "opened_at", "read_at", "clicked_at"):
            arm, enrollment_id = wanted[key]
            if status not in NOT_REACHED:
                reached[arm].add(enrollment_id)
            if opened_at or read_at or clicked_at:
                opened[arm].add(enrollment_id)
            if clicked_at:
                clicked[arm].add(enrollment_id)
    for arm in arms:
        rows[arm] = {"trials": len(reached[arm] | opened[arm]), "opens": len(opened[arm]),
                     "clicks": len(clicked[arm])}
    return rows
