"""The journey graph: its JSON format and the one function that says what is wrong with one.

A graph is plain JSON (stored on ``Journey.graph`` as the draft, frozen on ``JourneyVersion``)::

    {"start": "welcome",
     "steps": [
       {"id": "welcome", "type": "send", "template": "welcome-email", "channels": ["email", "inapp"],
        "fallback": true, "category": "marketing", "next": "pause"},
       {"id": "pause", "type": "wait", "days": 2, "next": "opened?"},
       {"id": "opened?", "type": "branch", "if": {"step": "welcome", "event": "opened", "within_hours": 48},
        "yes": "tip", "no": "reminder"},
       {"id": "tip", "type": "send", "template": "tip", "channels": ["inapp"]},
       {"id": "reminder", "type": "send", "template": "reminder", "channels": ["email"]}],
     "goals": [{"name": "paid", "model": "demo_shop.order", "recipient_path": "customer",
                "conditions": [{"field": "status", "op": "eq", "value": "paid"}], "since_field": "paid_at"}],
     "exits": [{"kind": "opted_out"}]}

Steps: ``send`` (a template key, channels in fallback order with ``fallback``, an optional
category key; the journey's category otherwise), ``wait`` (``days``/``hours``/``minutes``; or
``until_time`` "HH:MM" in the recipient's zone; or ``until_field`` ``user.<field>``,
``profile.<field>`` or ``context.<key>`` plus ``offset_days``), ``branch`` (``if`` a field
condition ``{"field": "context.total", "op": "gte", "value": 100}`` in the trigger conditions'
format, or what happened to an earlier send step's messages ``{"step", "event":
delivered|opened|clicked|read, "within_hours"}``; then ``yes``/``no``), ``split`` (``arms`` of
``{"name", "percent", "next"}`` summing to 100, chosen deterministically per enrollment; with
``"auto_winner": {"metric": "opens"|"clicks"|"goal", "hours": N}`` the best arm takes everyone
after the window, see ``winners``) and
``exit``. A send or wait without ``next`` ends the journey (completed).

Goals and model exit conditions name a model registered for triggers, a recipient path from it
to the person, and conditions in the trigger conditions' format; they are checked when such a
model is saved (``journeys.receivers``) and, with ``since_field``, at each tick.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import time
from typing import Any

from django.utils.translation import gettext as _

STEP_TYPES = ("send", "wait", "branch", "split", "exit")
RECEIPT_EVENTS = ("delivered", "opened", "clicked", "read")
FIELD_SOURCES = ("user", "profile", "context")
PROFILE_FIELDS = ("timezone", "locale", "phone")
EXIT_KINDS = ("opted_out", "condition")
STEP_ID = re.compile(r"^[A-Za-z0-9_?!.\-]{1,64}$")


def steps_by_id(graph: dict) -> dict[str, dict]:
    """The steps of a (valid) graph by id."""
    return {step["id"]: step for step in graph.get("steps") or [] if isinstance(step, dict) and "id" in step}


def successors(step: dict) -> list[str]:
    """Where a step can lead, in order (a branch's yes then no; a split's arms)."""
    kind = step.get("type")
    if kind in ("send", "wait"):
        return [step["next"]] if step.get("next") else []
    if kind == "branch":
        return [s for s in (step.get("yes"), step.get("no")) if s]
    if kind == "split":
        return [arm.get("next") for arm in step.get("arms") or [] if isinstance(arm, dict) and arm.get("next")]
    return []


def parse_time_of_day(value: Any) -> time | None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,2}:\d{2}", value):
        return None
    hours, minutes = (int(part) for part in value.split(":"))
    if hours > 23 or minutes > 59:
        return None
    return time(hours, minutes)


def wait_seconds(step: dict) -> int:
    """A duration wait in seconds (0 when the step waits for a time or a date instead)."""
    total = 0
    for unit, seconds in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        value = step.get(unit)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total += int(value * seconds)
    return total


def graph_problems(graph: Any, *, check_database: bool = True) -> list[str]:
    """Everything wrong with ``graph``, as sentences for the person editing it; [] when it can run.

    Checks the shape of each step, that every step is reachable from the start, that links point
    at steps that exist, sends name templates that exist and known channels, waits have an end,
    branches have both arms and a valid condition, splits add up to 100 %, and that no path loops
    back (a step runs at most once per enrollment). ``check_database=False`` skips the lookups of
    templates, categories and models (the pure shape).
    """
    problems: list[str] = []
    if not isinstance(graph, dict):
        return [_("The journey must be a JSON object with “start” and “steps”.")]
    steps = graph.get("steps")
    if not isinstance(steps, list) or not steps:
        return [_("The journey has no steps.")]
    by_id: dict[str, dict] = {}
    for index, step in enumerate(steps, start=1):
        if not isinstance(step, dict):
            problems.append(_("Step %(n)d must be an object.") % {"n": index})
            continue
        step_id = step.get("id")
        if not isinstance(step_id, str) or not STEP_ID.match(step_id):
            problems.append(_("Step %(n)d needs an id (letters, digits, - _ . ? !; at most 64).") % {"n": index})
            continue
        if step_id in by_id:
            problems.append(_("Two steps are called %(id)s.") % {"id": step_id})
            continue
        by_id[step_id] = step
    start = graph.get("start")
    if not start:
        problems.append(_("Say which step the journey starts with (“start”)."))
    elif start not in by_id:
        problems.append(_("The start step %(id)s does not exist.") % {"id": start})
    for step_id, step in by_id.items():
        problems.extend(_step_problems(step_id, step, by_id))
    if start in by_id:
        reachable = _reachable(start, by_id)
        for step_id in by_id:
            if step_id not in reachable:
                problems.append(_("Step %(id)s cannot be reached from the start.") % {"id": step_id})
        cycle = _cycle(start, by_id)
        if cycle:
            problems.append(_("The steps %(path)s lead back to where they started: a journey may not loop.")
                            % {"path": " → ".join(cycle)})
        problems.extend(_branch_order_problems(start, by_id))
    for index, goal in enumerate(graph.get("goals") or [], start=1):
        problems.extend(_model_condition_problems(goal, label=_("Goal %(n)d") % {"n": index},
                                                  check_database=check_database))
    if not isinstance(graph.get("goals", []), list):
        problems.append(_("“goals” must be a list."))
    exits = graph.get("exits", [])
    if not isinstance(exits, list):
        problems.append(_("“exits” must be a list."))
    else:
        for index, rule in enumerate(exits, start=1):
            label = _("Exit condition %(n)d") % {"n": index}
            if not isinstance(rule, dict) or rule.get("kind") not in EXIT_KINDS:
                problems.append(_("%(label)s: kind must be one of %(kinds)s.") % {"label": label,
                                                                                  "kinds": ", ".join(EXIT_KINDS)})
            elif rule["kind"] == "condition":
                problems.extend(_model_condition_problems(rule, label=label, check_database=check_database))
    if check_database and not problems:
        problems.extend(_database_problems(by_id))
    return problems


def _step_problems(step_id: str, step: dict, by_id: dict[str, dict]) -> list[str]:
    from ..models import Channel

    problems: list[str] = []
    kind = step.get("type")
    name = {"id": step_id}
    if kind not in STEP_TYPES:
        return [_("Step %(id)s: type must be one of %(types)s.") % {**name, "types": ", ".join(STEP_TYPES)}]

    def link(target: Any, what: str) -> None:
        if target in (None, ""):
            return
        if not isinstance(target, str) or target not in by_id:
            problems.append(_("Step %(id)s: %(what)s leads to %(target)s, which does not exist.")
                            % {**name, "what": what, "target": target})
        elif target == step_id:
            problems.append(_("Step %(id)s leads to itself.") % name)

    if kind in ("send", "wait"):
        link(step.get("next"), "next")
    if kind == "send":
        if not isinstance(step.get("template"), str) or not step.get("template"):
            problems.append(_("Step %(id)s sends no template: choose one.") % name)
        channels = step.get("channels")
        if not isinstance(channels, list) or not channels:
            problems.append(_("Step %(id)s: choose at least one channel.") % name)
        else:
            unknown = [str(c) for c in channels if c not in Channel.values]
            if unknown:
                problems.append(_("Step %(id)s: unknown channel %(channels)s.") % {**name, "channels": ", ".join(unknown)})
    elif kind == "wait":
        ends = [bool(wait_seconds(step)), "until_time" in step, "until_field" in step]
        if sum(ends) == 0:
            problems.append(_("Step %(id)s waits without an end: give days, hours or minutes, a time of day "
                              "or a date field.") % name)
        elif sum(ends) > 1:
            problems.append(_("Step %(id)s: wait for a duration, a time of day or a date field, not several.") % name)
        elif "until_time" in step and parse_time_of_day(step["until_time"]) is None:
            problems.append(_("Step %(id)s: %(value)s is not a time of day (HH:MM).") % {**name, "value": step["until_time"]})
        elif "until_field" in step and not _field_ref_ok(step["until_field"]):
            problems.append(_("Step %(id)s: %(value)s is not user.<field>, profile.<field> or context.<key>.")
                            % {**name, "value": step["until_field"]})
        for unit in ("days", "hours", "minutes", "offset_days"):
            value = step.get(unit)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                      or (unit != "offset_days" and value < 0)):
                problems.append(_("Step %(id)s: %(unit)s must be a number of at least 0.") % {**name, "unit": unit})
    elif kind == "branch":
        if not step.get("yes") or not step.get("no"):
            problems.append(_("Step %(id)s: a branch needs both arms, “yes” and “no”.") % name)
        link(step.get("yes"), "yes")
        link(step.get("no"), "no")
        problems.extend(_condition_problems(step_id, step.get("if"), by_id))
    elif kind == "split":
        arms = step.get("arms")
        if not isinstance(arms, list) or len(arms) < 2:
            problems.append(_("Step %(id)s: a split needs at least two arms.") % name)
        else:
            total, names = 0, set()
            for arm in arms:
                if not isinstance(arm, dict) or not isinstance(arm.get("percent"), int) or isinstance(arm.get("percent"), bool) \
                        or not 0 < arm["percent"] <= 100 or not arm.get("name"):
                    problems.append(_("Step %(id)s: each arm needs a name and a whole percent above 0.") % name)
                    continue
                if arm["name"] in names:
                    problems.append(_("Step %(id)s: two arms are called %(arm)s.") % {**name, "arm": arm["name"]})
                names.add(arm["name"])
                total += arm["percent"]
                link(arm.get("next"), str(arm["name"]))
            if total != 100 and len(names) == len(arms):
                problems.append(_("Step %(id)s: the arms add up to %(total)d %%, not 100 %%.") % {**name, "total": total})
            if "auto_winner" in step:
                problems.extend(_auto_winner_problems(step_id, step, by_id))
    return problems


def _auto_winner_problems(step_id: str, step: dict, by_id: dict[str, dict]) -> list[str]:
    from .winners import METRICS, measured_send

    rule, name = step["auto_winner"], {"id": step_id}
    if not isinstance(rule, dict) or rule.get("metric") not in METRICS:
        return [_("Step %(id)s: the auto-winner metric must be one of %(metrics)s.") % {**name, "metrics": ", ".join(METRICS)}]
    hours = rule.get("hours")
    if not isinstance(hours, (int, float)) or isinstance(hours, bool) or hours <= 0:
        return [_("Step %(id)s: the auto-winner needs a window in hours above 0.") % name]
    if rule["metric"] != "goal":
        for arm in step.get("arms") or []:
            if isinstance(arm, dict) and measured_send(arm.get("next"), by_id) is None:
                return [_("Step %(id)s: arm %(arm)s sends nothing before its next branch or split, so its "
                          "%(metric)s cannot be counted.") % {**name, "arm": arm.get("name"), "metric": rule["metric"]}]
    return []


def _field_ref_ok(ref: Any) -> bool:
    if not isinstance(ref, str) or "." not in ref:
        return False
    source, _dot, name = ref.partition(".")
    return source in FIELD_SOURCES and bool(name)


def _condition_problems(step_id: str, condition: Any, by_id: dict[str, dict]) -> list[str]:
    from ..triggers.conditions import OPS

    name = {"id": step_id}
    if not isinstance(condition, dict):
        return [_("Step %(id)s: a branch needs a condition (“if”).") % name]
    if "step" in condition:
        problems = []
        target = by_id.get(condition["step"])
        if target is None or target.get("type") != "send":
            problems.append(_("Step %(id)s: %(step)s is not a send step of this journey.")
                            % {**name, "step": condition["step"]})
        if condition.get("event") not in RECEIPT_EVENTS:
            problems.append(_("Step %(id)s: event must be one of %(events)s.") % {**name, "events": ", ".join(RECEIPT_EVENTS)})
        within = condition.get("within_hours")
        if within is not None and (not isinstance(within, (int, float)) or isinstance(within, bool) or within <= 0):
            problems.append(_("Step %(id)s: within_hours must be a number above 0.") % name)
        return problems
    if not _field_ref_ok(condition.get("field")):
        return [_("Step %(id)s: the condition needs a field (user.<field>, profile.<field> or context.<key>) or "
                  "an earlier send step.") % name]
    if condition.get("op") not in OPS:
        return [_("Step %(id)s: op must be one of %(ops)s.") % {**name, "ops": ", ".join(OPS)}]
    if "value" not in condition:
        return [_("Step %(id)s: the condition needs a value.") % name]
    return []


def _reachable(start: str, by_id: dict[str, dict]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        if current in seen or current not in by_id:
            continue
        seen.add(current)
        todo.extend(successors(by_id[current]))
    return seen


def _cycle(start: str, by_id: dict[str, dict]) -> list[str]:
    """A path that loops (the steps of it, first repeated at the end), or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in successors(by_id[node]):
            if nxt not in by_id:
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    return visit(start)


def _branch_order_problems(start: str, by_id: dict[str, dict]) -> list[str]:
    """A receipt branch must come after the send step it asks about, on every way to it."""
    problems = []
    for step_id, step in by_id.items():
        condition = step.get("if") if step.get("type") == "branch" else None
        if not isinstance(condition, dict) or condition.get("step") not in by_id:
            continue
        # Can the branch be reached from the start without passing through the send step?
        send = condition["step"]
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            if current in seen or current == send or current not in by_id:
                continue
            seen.add(current)
            todo.extend(successors(by_id[current]))
        if step_id in seen:
            problems.append(_("Step %(id)s asks about %(step)s, which not everyone reaching it has passed.")
                            % {"id": step_id, "step": send})
    return problems


def model_rule_problems(rule: Any, *, label: str) -> list[str]:
    """What is wrong with one goal or model exit condition (its model, recipient path, conditions
    and date field), in sentences starting with ``label``; [] when it can be matched."""
    return _model_condition_problems(rule, label=label, check_database=True)


def _model_condition_problems(rule: Any, *, label: str, check_database: bool) -> list[str]:
    if not isinstance(rule, dict):
        return [_("%(label)s must be an object with model, recipient_path and conditions.") % {"label": label}]
    if not check_database:
        return []
    from ..triggers import registry as reg
    from ..triggers.conditions import compile_condition

    registered = reg.registry.model_for(rule.get("model") or "")
    if registered is None:
        return [_("%(label)s: %(model)s is not a model registered for triggers.") % {"label": label,
                                                                                     "model": rule.get("model")}]
    problems = []
    path = rule.get("recipient_path") or ""
    try:
        reg.recipient_lookup(registered.model, path)
    except ValueError as exc:
        problems.append(f"{label}: {exc}")
    conditions = rule.get("conditions") or []
    fields = {name: registered.field(name) for name in registered.fields}
    if not isinstance(conditions, list):
        problems.append(_("%(label)s: conditions must be a list.") % {"label": label})
    else:
        for index, raw in enumerate(conditions):
            try:
                compile_condition(index, raw, fields)
            except ValueError as exc:
                problems.append(f"{label}: {exc}")
    since = rule.get("since_field")
    if since and since not in registered.fields:
        problems.append(_("%(label)s: %(field)s is not a registered field of %(model)s.")
                        % {"label": label, "field": since, "model": registered.label})
    return problems


def _database_problems(by_id: dict[str, dict]) -> list[str]:
    from ..models import Category, MessageTemplate

    sends = [step for step in by_id.values() if step.get("type") == "send"]
    templates = {s["template"] for s in sends}
    known = set(MessageTemplate.objects.filter(key__in=templates).values_list("key", flat=True))
    categories = {s["category"] for s in sends if s.get("category")}
    known_categories = set(Category.objects.filter(key__in=categories).values_list("key", flat=True))
    problems = []
    for step in sends:
        if step["template"] not in known:
            problems.append(_("Step %(id)s: there is no template %(template)s.") % {"id": step["id"],
                                                                                   "template": step["template"]})
        if step.get("category") and step["category"] not in known_categories:
            problems.append(_("Step %(id)s: there is no category %(category)s.") % {"id": step["id"],
                                                                                   "category": step["category"]})
    return problems


def send_steps(graph: dict) -> Iterable[dict]:
    return (step for step in graph.get("steps") or [] if step.get("type") == "send")
