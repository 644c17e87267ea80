"""Figures of one journey version for the journey analytics page (issue 13, point 6).

Everything is read from the enrollment and step-run tables and from the ledger, never from a
counter kept on the side:

* **Funnel**: entered (enrollments) → each step reached (a step run exists, waiting or done) and
  passed (done), in the graph's order → converted (enrollments that reached a goal).
* **Exits by reason**: ended enrollments by state and ``state_reason`` (an exit condition, an
  exit step, the journey stopped, the end of the graph).
* **Time to convert**: ``finished_at - entered_at`` of the converted enrollments, median and p90.
* **Split arms**: per arm, the enrollments that took it and how many of them converted, with the
  two-proportion test of ``notifications.experiments`` between the leading arm and the runner-up.
* **Messages**: the deliveries each send step planned, with the same outcome groups and rates as
  campaigns (``notifications.ledger.outcomes``).

A journey delivery is linked to its journey only by its ledger key
``journey:<enrollment>:<step>:<channel>`` (``journeys.engine``). The keys of a send step are
built from its step runs in a subquery and looked up on the ledger's UNIQUE index on
``idempotency_key`` (one probe per key), so the cost follows the journey's size, never the
ledger's: no ``LIKE`` scan, no prefix range that a non-C collation could order differently.

Queries: a fixed handful for the funnel, exits, conversions and arms, plus one per send step of
the version (a graph has a bounded number of steps; the number of people does not change it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import CharField, Count, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils.translation import gettext as _

from notifications.experiments import two_proportion_z_test
from notifications.journeys.graph import steps_by_id, successors
from notifications.ledger.outcomes import Outcomes, outcomes_by
from notifications.models import Delivery, JourneyEnrollment, JourneyStepRun, JourneyVersion

State = JourneyEnrollment.State
RUN = JourneyStepRun.Status


@dataclass
class StepFigures:
    id: str
    type: str
    reached: int = 0  # started it (in a wait now, or done)
    passed: int = 0  # done with it
    waiting: int = 0  # in this wait now
    outcomes: dict[str, int] = field(default_factory=dict)  # branch yes/no, arm names, ...
    percent: int = 0  # reached, as a whole percent of entered


@dataclass
class ArmFigures:
    name: str
    entered: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.entered if self.entered else None


@dataclass
class SplitFigures:
    step_id: str
    arms: list[ArmFigures]
    note: str


@dataclass
class SendFigures:
    step_id: str
    template: str
    totals: Outcomes
    by_channel: dict[str, Outcomes]


@dataclass
class JourneyFigures:
    version: JourneyVersion
    entered: int
    active: int
    converted: int
    steps: list[StepFigures]
    exits: list[tuple[str, str, int]]  # (state, reason, count), largest first
    time_to_convert_median: timedelta | None
    time_to_convert_p90: timedelta | None
    splits: list[SplitFigures]
    sends: list[SendFigures]

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.entered if self.entered else None


def step_order(graph: dict) -> list[str]:
    """The version's step ids from the start, breadth first (a branch's yes before its no), then
    any step not reachable from the start (a valid graph has none)."""
    steps = steps_by_id(graph)
    order: list[str] = []
    queue = [graph.get("start")] if graph.get("start") in steps else []
    while queue:
        step_id = queue.pop(0)
        if step_id in order or step_id not in steps:
            continue
        order.append(step_id)
        queue.extend(successors(steps[step_id]))
    return order + [s for s in steps if s not in order]


def percentile(values: list[timedelta], fraction: float) -> timedelta | None:
    """The nearest-rank percentile of ``values`` (the median is 0.5); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    if fraction == 0.5 and len(ordered) % 2 == 0:
        middle = len(ordered) // 2
        return (ordered[middle - 1] + ordered[middle]) / 2
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def delivery_keys_q(*, version: JourneyVersion, step_id: str, channels: list[str]) -> Q:
    """Ledger rows planned by one send step of ``version``: exact keys from its step runs."""
    q = Q(pk__in=[])
    runs = JourneyStepRun.objects.filter(version=version, step_id=step_id).order_by()
    for channel in channels:
        keys = runs.annotate(
            ledger_key=Concat(Value("journey:"), Cast("enrollment_id", CharField()), Value(f":{step_id}:{channel}"),
                              output_field=CharField())
        ).values("ledger_key")
        q |= Q(idempotency_key__in=keys)
    return q


def journey_deliveries_q(*, journey_id: int, prefix: str = "") -> Q:
    """Ledger rows planned by any send step of any version of a journey (the "journey" filter of
    analytics and exports): for each channel, the exact keys of its send steps' runs (a send's step
    run records ``planned``), looked up on the ledger's unique key index. Needs no query of its own."""
    from notifications.models import Channel

    sends = JourneyStepRun.objects.filter(version__journey_id=journey_id, outcome="planned").order_by()
    q = Q(**{f"{prefix}pk__in": []})
    for channel in Channel.values:
        keys = sends.annotate(
            ledger_key=Concat(Value("journey:"), Cast("enrollment_id", CharField()), Value(":"), "step_id",
                              Value(f":{channel}"), output_field=CharField())
        ).values("ledger_key")
        q |= Q(**{f"{prefix}idempotency_key__in": keys})
    return q


def _split_note(arms: list[ArmFigures]) -> str:
    ranked = sorted((a for a in arms if a.entered), key=lambda a: (-(a.rate or 0.0), a.name))
    if len(ranked) < 2:
        return _("Not enough data yet to compare the arms.")
    best, second = ranked[0], ranked[1]
    test = two_proportion_z_test(successes_a=second.converted, trials_a=second.entered,
                                 successes_b=best.converted, trials_b=best.entered)
    words = {"leader": best.name, "other": second.name, "p": f"{test.p_value:.3f}" if test.p_value is not None else "—"}
    if test.z == 0:
        return _("%(leader)s and %(other)s convert at the same rate.") % words
    if test.significant(0.95):
        return _("%(leader)s converts better than %(other)s, significant at 95 %% (p = %(p)s).") % words
    return _("%(leader)s leads %(other)s on conversions, not significant yet (p = %(p)s).") % words


def journey_figures(*, version: JourneyVersion) -> JourneyFigures:
    """Every figure of the journey page for ``version`` (see the module docstring)."""
    graph = version.graph or {}
    steps = steps_by_id(graph)
    enrollments = JourneyEnrollment.objects.filter(version=version).order_by()

    by_state = dict(enrollments.values_list("state").annotate(n=Count("id")))
    entered = sum(by_state.values())

    figures = {step_id: StepFigures(id=step_id, type=steps[step_id].get("type", "")) for step_id in step_order(graph)}
    runs = JourneyStepRun.objects.filter(version=version).order_by()
    for step_id, status, outcome, n in runs.values_list("step_id", "status", "outcome").annotate(n=Count("id")):
        step = figures.setdefault(step_id, StepFigures(id=step_id, type=""))
        step.reached += n
        if status == RUN.DONE:
            step.passed += n
        else:
            step.waiting += n
        if outcome and step.type in ("branch", "split"):
            step.outcomes[outcome] = step.outcomes.get(outcome, 0) + n
    for step in figures.values():
        step.percent = round(100 * step.reached / entered) if entered else 0

    exits = sorted(
        ((state, reason, n) for state, reason, n in enrollments.exclude(state__in=[State.ACTIVE, State.CONVERTED])
         .values_list("state", "state_reason").annotate(n=Count("id"))),
        key=lambda row: (-row[2], row[0], row[1]),
    )

    spans = [finished - started for started, finished in enrollments.filter(
        state=State.CONVERTED, finished_at__isnull=False).values_list("entered_at", "finished_at")]

    split_ids = [s for s, step in steps.items() if step.get("type") == "split"]
    splits: list[SplitFigures] = []
    if split_ids:
        arms: dict[str, dict[str, ArmFigures]] = {
            s: {str(arm.get("name")): ArmFigures(name=str(arm.get("name")), entered=0, converted=0)
                for arm in steps[s].get("arms") or []}
            for s in split_ids
        }
        rows = (runs.filter(step_id__in=split_ids).values_list("step_id", "outcome")
                .annotate(n=Count("id"), converted=Count("id", filter=Q(enrollment__state=State.CONVERTED))))
        for step_id, outcome, n, converted in rows:
            arm = arms[step_id].setdefault(outcome, ArmFigures(name=outcome, entered=0, converted=0))
            arm.entered, arm.converted = n, converted
        splits = [SplitFigures(step_id=s, arms=list(arms[s].values()), note=_split_note(list(arms[s].values())))
                  for s in split_ids]

    sends: list[SendFigures] = []
    for step_id in figures:
        step = steps.get(step_id)
        if not step or step.get("type") != "send":
            continue
        channels = [str(c) for c in step.get("channels") or []]
        by_channel = outcomes_by(Delivery.objects.filter(delivery_keys_q(version=version, step_id=step_id,
                                                                         channels=channels)), "channel")
        totals = Outcomes()
        for outcomes in by_channel.values():
            totals.add(outcomes)
        sends.append(SendFigures(step_id=step_id, template=str(step.get("template", "")), totals=totals,
                                 by_channel=by_channel))

    return JourneyFigures(
        version=version, entered=entered, active=by_state.get(State.ACTIVE, 0),
        converted=by_state.get(State.CONVERTED, 0), steps=list(figures.values()), exits=exits,
        time_to_convert_median=percentile(spans, 0.5), time_to_convert_p90=percentile(spans, 0.9),
        splits=splits, sends=sends,
    )


def journey_funnel_chart(figures: JourneyFigures) -> dict:
    """The funnel as horizontal bars (the basic plotly bundle has no funnel trace): entered →
    each step reached → converted, top to bottom."""
    labels = [_("Entered")] + [step.id for step in figures.steps] + [_("Converted")]
    values = [figures.entered] + [step.reached for step in figures.steps] + [figures.converted]
    return {
        "data": [{"type": "bar", "orientation": "h", "y": labels, "x": values, "text": values,
                  "textposition": "auto", "marker": {"color": "#2563eb"}}],
        "layout": {"margin": {"l": 140, "r": 20, "t": 10, "b": 30}, "height": 60 + 40 * len(labels),
                   "yaxis": {"autorange": "reversed", "type": "category"}},
    }
