"""Walk one real person through a draft graph without sending or writing anything.

The builder's "Simulate" panel: which steps they would take, which arm of each branch and split
and why, what each send would render for them per channel (``templating.preview``, the composer's
preview) and whether their preferences, suppressions or quiet hours would stop or hold it
(``ledger.decisions``, what the tick asks). Branches, waits and splits are decided by the engine's
own functions, so the simulation cannot drift from what runs. A receipt branch cannot know what
the person will do with a message not yet sent: the caller says what to assume.

Only reads: it writes no enrollment, step run, delivery or audit entry (a test holds it to that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from channels_adapters.handler import channels as adapters

from ..ledger.decisions import channel_decision, recipient_facts
from ..models import Category, Journey, MessageTemplate
from ..templating.preview import CHANNEL_LABELS, template_preview
from .builder import condition_words
from .engine import MAX_ROUNDS, Walker, branch_taken, split_arm, wake_time
from .graph import steps_by_id

REASONS = {
    "opted_out": gettext_lazy("stopped: they opted out of this category on this channel"),
    "no_address": gettext_lazy("stopped: no address for this channel"),
    "frequency_cap": gettext_lazy("stopped: their daily limit is reached"),
}


@dataclass
class SimulatedChannel:
    channel: str
    label: str
    content: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    outcome: str = ""  # "would send", or why not / held until when
    stopped: bool = False
    skipped: bool = False  # a fallback channel not needed


@dataclass
class SimulatedStep:
    step_id: str
    kind: str
    taken: bool
    why: str = ""
    channels: list[SimulatedChannel] = field(default_factory=list)


@dataclass
class Simulation:
    person: Any
    steps: list[SimulatedStep]
    ending: str


def _reason_words(reason: str) -> str:
    why = reason.split(":", 1)[-1]
    if why in REASONS:
        return str(REASONS[why])
    return _("stopped: the address is suppressed (%(reason)s)") % {"reason": why}


def _opted_out(journey: Journey, user) -> bool:
    from ..models import Preference

    return Preference.objects.filter(user_id=user.pk, category_id=journey.category_id, enabled=False).exists()


def journey_simulate(*, journey: Journey, user, context: dict | None = None, assume_engaged: bool = False,
                     assume: str = "", now: datetime | None = None) -> Simulation:
    """The path ``user`` would take through ``journey``'s draft if they entered at ``now``.

    Goals and exit conditions as the tick applies them: an "opted out" exit ends the journey of
    a person opted out of its category before their first step (their real preferences); a goal
    or model exit condition is met by a save, which happens while they wait, so with ``assume``
    (``"goal:<i>"`` / ``"exit:<i>"``) the path ends at the first wait, converted or exited.
    """
    now = now or timezone.now()
    graph = journey.graph if isinstance(journey.graph, dict) else {}
    by_id = steps_by_id(graph)
    context = dict(context or {})
    walker = Walker(id=0, version_id=0, user_id=user.pk, step=graph.get("start") or "", context=context,
                    variants={}, entered_at=now)
    keys = {s.get("template") for s in by_id.values() if s.get("type") == "send"}
    templates = {t.key: t for t in MessageTemplate.objects.filter(key__in=keys)}
    category_keys = {s.get("category") for s in by_id.values() if s.get("type") == "send" and s.get("category")}
    categories = {c.key: c for c in Category.objects.filter(key__in=category_keys)}
    steps: list[SimulatedStep] = []
    clock = now
    current = graph.get("start")
    ending = _("They reach the end of the journey.")
    seen: set[str] = set()
    exits = [rule for rule in graph.get("exits") or [] if isinstance(rule, dict)]
    if any(rule.get("kind") == "opted_out" for rule in exits) and _opted_out(journey, user):
        current = None
        ending = _("They leave at once, before the first step: they opted out of the journey's category "
                   "(an exit condition).")
    assumed = _assumed(graph, assume)
    while current and len(steps) < MAX_ROUNDS:
        step = by_id.get(current)
        if step is None or current in seen:
            ending = _("The path breaks at %(id)s: fix the problems listed above.") % {"id": current}
            break
        seen.add(current)
        kind = step.get("type")
        shown = SimulatedStep(step_id=current, kind=kind, taken=True)
        nxt = None
        if kind == "send":
            category = categories.get(step.get("category") or "", journey.category)
            shown.channels = _send(step, user=user, template=templates.get(step.get("template")),
                                   category=category, context=context, now=clock)
            nxt = step.get("next")
        elif kind == "wait":
            wake, outcome = wake_time(step, walker=walker, user=user, now=clock)
            if wake is not None and wake > clock:
                shown.why = _("They would wait until %(when)s.") % {
                    "when": timezone.localtime(wake).strftime("%Y-%m-%d %H:%M %Z")}
                clock = wake
            else:
                shown.why = _("No wait: the date has passed or is missing (%(outcome)s).") % {"outcome": outcome or "—"}
            nxt = step.get("next")
            if assumed:
                steps.append(shown)
                ending = _assumed_ending(assumed, wait_id=current)
                break
        elif kind == "branch":
            condition = step.get("if") or {}
            if "step" in condition:
                taken = assume_engaged
                why = (_("assumed: they engage with the message") if taken
                       else _("assumed: they do not engage with the message"))
            else:
                taken = branch_taken(step, walker=walker, user=user, receipts={}, now=clock)
                why = _("the condition holds") if taken else _("the condition does not hold")
            arm = _("Yes") if taken else _("No")
            shown.why = f"{condition_words(condition)} → {arm} ({why})"
            nxt = step.get("yes") if taken else step.get("no")
        elif kind == "split":
            arm = split_arm(step, enrollment_id=f"simulate-{user.pk}")
            shown.why = _("Arm %(name)s (%(percent)s %% of people, chosen by chance)") % {
                "name": arm.get("name"), "percent": arm.get("percent")}
            nxt = arm.get("next")
        elif kind == "exit":
            ending = _("They leave the journey at %(id)s.") % {"id": current}
        steps.append(shown)
        if kind == "exit":
            break
        current = nxt
    if assumed and not any(s.kind == "wait" for s in steps) and steps:
        ending = str(ending) + " " + _("(No wait on this path: every step runs at once, before a save could end it.)")
    taken_ids = {s.step_id for s in steps}
    for step_id, step in by_id.items():
        if step_id not in taken_ids:
            steps.append(SimulatedStep(step_id=step_id, kind=step.get("type", ""), taken=False,
                                       why=_("not on their path")))
    return Simulation(person=user, steps=steps, ending=ending)


def _assumed(graph: dict, assume: str) -> tuple[str, str] | None:
    """(``goal`` or ``exit``, its name) for an assumed goal or model exit condition; None for none."""
    kind, _sep, index = (assume or "").partition(":")
    rules = (graph.get("goals" if kind == "goal" else "exits") or []) if kind in ("goal", "exit") else []
    try:
        rule = rules[int(index)]
    except (ValueError, IndexError, TypeError):
        return None
    if not isinstance(rule, dict):
        return None
    return kind, str(rule.get("name") or rule.get("model") or "")


def _assumed_ending(assumed: tuple[str, str], *, wait_id: str) -> str:
    kind, name = assumed
    if kind == "goal":
        return _("While waiting at %(id)s they reach the goal “%(name)s”: their journey ends as converted and "
                 "nothing after it is sent.") % {"id": wait_id, "name": name}
    return _("While waiting at %(id)s an exit condition holds: they leave the journey and nothing after it "
             "is sent.") % {"id": wait_id}


def _send(step: dict, *, user, template: MessageTemplate | None, category: Category, context: dict,
          now: datetime) -> list[SimulatedChannel]:
    channels = [c for c in step.get("channels") or [] if c in CHANNEL_LABELS]
    if template is None:
        return [SimulatedChannel(channel=c, label=str(CHANNEL_LABELS[c]), error=_("There is no such template."),
                                 stopped=True) for c in channels]
    preview = template_preview(template=template, user=user, variables=context)
    facts = {f.user_id: f for f in recipient_facts([user], category=category, channels=channels)}.get(user.pk)
    shown: list[SimulatedChannel] = []
    chosen = False
    for channel in channels:
        rendered = preview.channel(channel)
        item = SimulatedChannel(channel=channel, label=str(CHANNEL_LABELS[channel]),
                                content=rendered.content if rendered else {},
                                error=(rendered.error if rendered else _("The template has no part for this channel.")))
        decision = channel_decision(facts=facts, channel=channel, category=category, now=now) if facts else None
        if step.get("fallback") and chosen:
            item.skipped, item.outcome = True, _("not needed: an earlier channel reaches them")
        elif decision is None:
            item.stopped, item.outcome = True, _("stopped: the person is inactive")
        elif decision.reason:
            item.stopped, item.outcome = True, _reason_words(decision.reason)
        elif decision.not_before is not None:
            item.outcome = _("held until %(when)s (quiet hours or digest)") % {
                "when": timezone.localtime(decision.not_before).strftime("%Y-%m-%d %H:%M %Z")}
            chosen = True
        else:
            # The inbox's "address" is the user id: say where it lands instead.
            inbox = adapters.features(channel).address_source == "user_id"
            item.outcome = (_("would be delivered to their inbox") if inbox
                            else _("would be sent to %(address)s") % {"address": decision.address})
            chosen = True
        shown.append(item)
    return shown
