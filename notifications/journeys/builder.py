"""The builder's view of a draft graph: cards laid out top to bottom, and the edits it offers.

The JSON graph (``graph``) stays the storage; this module only reads it into a tree of cards
(``flow``) and applies one edit at a time (``step_insert``, ``step_update``, ``step_delete``),
returning a new graph. Nothing here touches the database: the admin saves the result through
``journey_save`` and ``graph_problems`` says whether it can be published.

A graph is a DAG, not a tree: when two arms lead to the same step, the step is drawn once (where
the walk meets it first) and the other arm shows a "continues at" card. Steps nobody can reach
are listed after the flow, so they can be seen and deleted.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..triggers.conditions import OPS
from .graph import steps_by_id, successors, wait_seconds

MAX_ARMS = 4
KIND_LABELS = {"send": gettext_lazy("Send"), "wait": gettext_lazy("Wait"), "branch": gettext_lazy("Branch"),
               "split": gettext_lazy("A/B split"), "exit": gettext_lazy("Exit")}


@dataclass
class Slot:
    """A place a new step can go: the start, a step's ``next``, a branch arm or a split arm."""

    parent: str  # "" for the start
    arm: str  # "next", "yes", "no", or a split arm's name; "" for the start
    label: str = ""


@dataclass
class Card:
    step: dict
    words: str
    problems: list[str] = field(default_factory=list)
    arms: list[tuple] = field(default_factory=list)  # (label, slot, column) for branch/split
    below: Slot | None = None  # where "add step below" inserts (send/wait)
    counts: Any = None  # the live counters of the published step with this id, if any

    @property
    def id(self) -> str:
        return self.step["id"]

    @property
    def kind(self) -> str:
        return self.step.get("type", "")

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))

    @property
    def dom_id(self) -> str:
        return dom_id(self.id)


@dataclass
class Continue:
    """An arm leading to a step drawn elsewhere."""

    target: str
    kind: str = "continue"


@dataclass
class Flow:
    column: list  # Cards and Continues, top to bottom (branch/split cards hold their columns)
    start_slot: Slot
    unreachable: list[Card]
    general_problems: list[str]  # problems that name no step

    def cards(self):
        """Every card, drawn or unreachable (depth first)."""
        def walk(column):
            for item in column:
                if isinstance(item, Card):
                    yield item
                    for _label, _slot, sub in item.arms:
                        yield from walk(sub)
        yield from walk(self.column)
        yield from self.unreachable


def dom_id(step_id: str) -> str:
    """An HTML id for a step's card parts (step ids may hold ``?`` and ``.``)."""
    return "s" + step_id.encode().hex()


def _ids_in(problem: str, ids: list[str]) -> list[str]:
    found = []
    for step_id in ids:
        if re.search(rf"(?<![A-Za-z0-9_?!.\-]){re.escape(step_id)}(?![A-Za-z0-9_?!\-])", problem):
            found.append(step_id)
    return found


def problems_by_step(graph: dict, problems: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Each problem under the steps it names (longest ids first, so ``send-1`` is not ``send-12``);
    the rest apart."""
    ids = sorted(steps_by_id(graph), key=len, reverse=True)
    by_step: dict[str, list[str]] = {}
    general = []
    for problem in problems:
        named = _ids_in(problem, ids)
        # A problem about "Step X: ... Y" belongs to X, the first one named.
        if named:
            first = min(named, key=lambda i: problem.find(i))
            by_step.setdefault(first, []).append(problem)
        else:
            general.append(problem)
    return by_step, general


def flow(graph: dict, *, problems: list[str], templates: dict[str, str] | None = None,
         categories: dict[str, str] | None = None) -> Flow:
    """The draft as cards, from the start down; ``templates``/``categories``: key -> name."""
    graph = graph if isinstance(graph, dict) else {}
    by_id = steps_by_id(graph)
    by_step, general = problems_by_step(graph, problems)
    drawn: set[str] = set()

    def card(step_id: str) -> Card:
        step = by_id[step_id]
        return Card(step=step, words=step_words(step, templates=templates or {}, categories=categories or {}),
                    problems=by_step.get(step_id, []))

    def column(step_id: str | None) -> list:
        items: list = []
        while step_id:
            if step_id not in by_id:
                break
            if step_id in drawn:
                items.append(Continue(target=step_id))
                break
            drawn.add(step_id)
            current = card(step_id)
            items.append(current)
            kind = current.kind
            if kind in ("send", "wait"):
                current.below = Slot(parent=step_id, arm="next")
                step_id = current.step.get("next")
            elif kind == "branch":
                current.arms = [(_("Yes"), Slot(step_id, "yes"), column(current.step.get("yes"))),
                                (_("No"), Slot(step_id, "no"), column(current.step.get("no")))]
                break
            elif kind == "split":
                current.arms = [(f"{arm.get('name')} · {arm.get('percent')} %", Slot(step_id, str(arm.get("name"))),
                                 column(arm.get("next")))
                                for arm in current.step.get("arms") or [] if isinstance(arm, dict)]
                break
            else:
                break
        return items

    main = column(graph.get("start"))
    unreachable = [card(step_id) for step_id in by_id if step_id not in drawn]
    return Flow(column=main, start_slot=Slot("", ""), unreachable=unreachable, general_problems=general)


# --- Words ----------------------------------------------------------------------------------------

def _duration(step: dict) -> str:
    parts = []
    for unit in ("days", "hours", "minutes"):
        value = step.get(unit)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value:
            continue
        count = int(value) if value == int(value) else 2
        if unit == "days":
            parts.append(ngettext("%(n)s day", "%(n)s days", count) % {"n": value})
        elif unit == "hours":
            parts.append(ngettext("%(n)s hour", "%(n)s hours", count) % {"n": value})
        else:
            parts.append(ngettext("%(n)s minute", "%(n)s minutes", count) % {"n": value})
    return " ".join(parts)


def step_words(step: dict, *, templates: dict[str, str], categories: dict[str, str]) -> str:
    """One sentence saying what a step does, for its card."""
    from ..templating.preview import CHANNEL_LABELS

    kind = step.get("type")
    if kind == "send":
        channels = [str(CHANNEL_LABELS.get(c, c)) for c in step.get("channels") or []]
        joiner = _(", else ") if step.get("fallback") else ", "
        words = _("Send “%(template)s” by %(channels)s") % {
            "template": templates.get(step.get("template"), step.get("template") or "?"),
            "channels": joiner.join(channels) or "?"}
        if step.get("category"):
            words += " · " + _("category %(name)s") % {"name": categories.get(step["category"], step["category"])}
        return words
    if kind == "wait":
        if wait_seconds(step):
            return _("Wait %(duration)s") % {"duration": _duration(step)}
        if "until_time" in step:
            return _("Wait until %(time)s in their time zone") % {"time": step["until_time"]}
        if "until_field" in step:
            offset = step.get("offset_days") or 0
            if offset:
                return _("Wait until %(field)s %(sign)s %(n)s day(s)") % {
                    "field": step["until_field"], "sign": "+" if offset > 0 else "−", "n": abs(offset)}
            return _("Wait until %(field)s") % {"field": step["until_field"]}
        return _("Wait (no end yet)")
    if kind == "branch":
        return condition_words(step.get("if"))
    if kind == "split":
        return _("Split at random: %(arms)s") % {"arms": " · ".join(
            f"{arm.get('name')} {arm.get('percent')} %" for arm in step.get("arms") or [] if isinstance(arm, dict))}
    if kind == "exit":
        return _("Exit the journey")
    return _("Unknown step")


def condition_words(condition: Any) -> str:
    if not isinstance(condition, dict):
        return _("If … (no condition yet)")
    if "step" in condition:
        events = {"delivered": _("delivered"), "opened": _("opened"), "clicked": _("clicked"), "read": _("read")}
        event = events.get(condition.get("event"), condition.get("event"))
        if condition.get("within_hours"):
            return _("If the message of %(step)s was %(event)s within %(hours)s hours") % {
                "step": condition["step"], "event": event, "hours": condition["within_hours"]}
        return _("If the message of %(step)s was %(event)s") % {"step": condition["step"], "event": event}
    op = OPS.get(condition.get("op"), condition.get("op"))
    return _("If %(field)s %(op)s %(value)s") % {"field": condition.get("field"), "op": op,
                                                 "value": condition.get("value")}


# --- Edits ----------------------------------------------------------------------------------------

class GraphEditError(ValueError):
    """An edit the builder refuses, in words for the person editing."""


def new_step_id(graph: dict, kind: str, reserved: frozenset[str] = frozenset()) -> str:
    """``<kind>-<n>``, the first free one; ``reserved``: ids not to reuse (the published version's,
    whose counters a card with that id would show)."""
    taken = set(steps_by_id(graph)) | set(reserved)
    n = 1
    while f"{kind}-{n}" in taken:
        n += 1
    return f"{kind}-{n}"


def _slot_target(graph: dict, slot: Slot) -> str | None:
    if not slot.parent:
        return graph.get("start") or None
    step = steps_by_id(graph).get(slot.parent)
    if step is None:
        raise GraphEditError(_("There is no step %(id)s.") % {"id": slot.parent})
    if slot.arm in ("next", "yes", "no"):
        if (slot.arm == "next") != (step.get("type") in ("send", "wait")):
            raise GraphEditError(_("Step %(id)s has no such place.") % {"id": slot.parent})
        return step.get(slot.arm) or None
    if step.get("type") == "split":
        for arm in step.get("arms") or []:
            if isinstance(arm, dict) and str(arm.get("name")) == slot.arm:
                return arm.get("next") or None
    raise GraphEditError(_("Step %(id)s has no such place.") % {"id": slot.parent})


def _point(graph: dict, slot: Slot, target: str | None) -> None:
    if not slot.parent:
        graph["start"] = target or ""
        return
    step = steps_by_id(graph)[slot.parent]
    if slot.arm in ("next", "yes", "no"):
        if target:
            step[slot.arm] = target
        else:
            step.pop(slot.arm, None)
        return
    for arm in step.get("arms") or []:
        if isinstance(arm, dict) and str(arm.get("name")) == slot.arm:
            if target:
                arm["next"] = target
            else:
                arm.pop("next", None)


def step_insert(graph: dict, *, slot: Slot, fields: dict, reserved: frozenset[str] = frozenset()) -> tuple[dict, str]:
    """The graph with a new step (``fields``: its type and settings, no links) at ``slot``; its id.

    What the slot led to continues after the new step: a send/wait's ``next``, a branch's "yes"
    (its "no" gets an exit step to edit), a split's first arm (the others get exit steps).
    """
    graph = copy.deepcopy(graph) if isinstance(graph, dict) else {}
    graph.setdefault("steps", [])
    graph.setdefault("start", "")
    target = _slot_target(graph, slot)
    kind = fields.get("type")
    step_id = new_step_id(graph, kind or "step", reserved)
    step = {"id": step_id, **{k: v for k, v in fields.items() if k != "arms"}}
    extra: list[dict] = []
    if kind in ("send", "wait"):
        if target:
            step["next"] = target
    elif kind == "exit":
        if target:
            raise GraphEditError(_("An exit ends the journey: add it at the end of a path, not above other steps."))
    elif kind == "branch":
        extra = _new_exits(graph, 1 if target else 2, also=step_id, reserved=reserved)
        step["yes"], step["no"] = target or extra[0]["id"], extra[-1]["id"]
    elif kind == "split":
        wanted = fields.get("arms") or []
        extra = _new_exits(graph, len(wanted) - (1 if target else 0), also=step_id, reserved=reserved)
        nexts = ([target] if target else []) + [e["id"] for e in extra]
        step["arms"] = [{"name": arm["name"], "percent": arm["percent"], "next": nxt}
                        for arm, nxt in zip(wanted, nexts, strict=False)]
    graph["steps"].append(step)
    graph["steps"].extend(extra)
    _point(graph, slot, step_id)
    return graph, step_id


def _new_exits(graph: dict, n: int, *, also: str = "", reserved: frozenset[str] = frozenset()) -> list[dict]:
    """``n`` exit steps with fresh ids (not ``also``, the id of a step about to be added)."""
    made: list[dict] = []
    for _i in range(max(n, 0)):
        probe = {"steps": [*graph.get("steps", []), *made, {"id": also}]}
        made.append({"id": new_step_id(probe, "exit", reserved), "type": "exit"})
    return made


def step_update(graph: dict, *, step_id: str, fields: dict) -> dict:
    """The graph with step ``step_id``'s settings replaced by ``fields``; its links are kept
    (a split's arms keep their next steps by position; a new arm gets an exit step, a removed one
    takes the steps only it led to along)."""
    graph = copy.deepcopy(graph)
    by_id = steps_by_id(graph)
    step = by_id.get(step_id)
    if step is None:
        raise GraphEditError(_("There is no step %(id)s.") % {"id": step_id})
    if fields.get("type") != step.get("type"):
        raise GraphEditError(_("A step keeps its kind: delete it and add another."))
    before = _reachable_ids(graph)
    links = {k: step[k] for k in ("next", "yes", "no") if k in step}
    old_arms = [a for a in step.get("arms") or [] if isinstance(a, dict)]
    step.clear()
    step.update({"id": step_id, **{k: v for k, v in fields.items() if k != "arms"}, **links})
    if fields.get("type") == "split":
        arms = []
        for index, arm in enumerate(fields.get("arms") or []):
            nxt = old_arms[index].get("next") if index < len(old_arms) else None
            if not nxt:
                exit_step = _new_exits(graph, 1)[0]
                graph["steps"].append(exit_step)
                nxt = exit_step["id"]
            arms.append({"name": arm["name"], "percent": arm["percent"], "next": nxt})
        step["arms"] = arms
    return _drop_orphans(graph, before)


def step_delete(graph: dict, *, step_id: str) -> dict:
    """The graph without ``step_id``: what led to it now leads to what followed it (a branch's
    "yes", a split's first arm); steps only its other arms reached go too."""
    graph = copy.deepcopy(graph)
    by_id = steps_by_id(graph)
    step = by_id.get(step_id)
    if step is None:
        raise GraphEditError(_("There is no step %(id)s.") % {"id": step_id})
    before = _reachable_ids(graph)
    follow = (successors(step) or [None])[0]
    if graph.get("start") == step_id:
        graph["start"] = follow or ""
    for other in by_id.values():
        for key in ("next", "yes", "no"):
            if other.get(key) == step_id:
                if follow:
                    other[key] = follow
                else:
                    other.pop(key)
        for arm in other.get("arms") or []:
            if isinstance(arm, dict) and arm.get("next") == step_id:
                if follow:
                    arm["next"] = follow
                else:
                    arm.pop("next")
    graph["steps"] = [s for s in graph.get("steps") or [] if not (isinstance(s, dict) and s.get("id") == step_id)]
    before.discard(step_id)
    return _drop_orphans(graph, before)


def _reachable_ids(graph: dict) -> set[str]:
    by_id = steps_by_id(graph)
    seen, todo = set(), [graph.get("start")]
    while todo:
        current = todo.pop()
        if not current or current in seen or current not in by_id:
            continue
        seen.add(current)
        todo.extend(successors(by_id[current]))
    return seen


def _drop_orphans(graph: dict, before: set[str]) -> dict:
    """Remove the steps an edit cut off (reachable before, not after); others stay as they were."""
    after = _reachable_ids(graph)
    lost = before - after
    graph["steps"] = [s for s in graph.get("steps") or [] if not (isinstance(s, dict) and s.get("id") in lost)]
    return graph


def send_step_ids(graph: dict) -> list[str]:
    """The send steps a receipt branch may ask about (``graph_problems`` checks the order)."""
    return [s for s, step in steps_by_id(graph).items() if step.get("type") == "send"]


def entry_words(entry: Any) -> str:
    """How people enter, for the card above the first step."""
    if not isinstance(entry, dict) or entry.get("kind") == "code":
        return _("People enter from code: journeys.enter(key, user, context).")
    if entry.get("kind") == "audience":
        from ..models import Audience

        name = Audience.objects.filter(pk=entry.get("audience")).values_list("name", flat=True).first()
        return _("People enter when they start matching the audience “%(name)s”.") % {"name": name or "?"}
    if entry.get("kind") == "campaign":
        from ..models import Campaign

        name = Campaign.objects.filter(pk=entry.get("campaign")).values_list("name", flat=True).first()
        return _("The people each run of the campaign “%(name)s” reached enter when it finishes.") % {
            "name": name or "?"}
    if entry.get("kind") == "date":
        offset = entry.get("offset_days") or 0
        values = {"field": f"{entry.get('model') or 'user'}.{entry.get('field') or '?'}",
                  "n": abs(offset) if isinstance(offset, int) else offset}
        if entry.get("yearly"):
            if offset and isinstance(offset, int) and offset < 0:
                return _("People enter %(n)s day(s) before the anniversary of %(field)s, each year.") % values
            if offset:
                return _("People enter %(n)s day(s) after the anniversary of %(field)s, each year.") % values
            return _("People enter on the anniversary of %(field)s, each year.") % values
        if offset and isinstance(offset, int) and offset < 0:
            return _("People enter %(n)s day(s) before %(field)s.") % values
        if offset:
            return _("People enter %(n)s day(s) after %(field)s.") % values
        return _("People enter on %(field)s.") % values
    words = _("People enter when %(model)s is saved (%(events)s)") % {
        "model": entry.get("model") or entry.get("signal") or "?",
        "events": ", ".join(entry.get("events") or []) or "—"}
    if entry.get("changed_field"):
        words += " · " + _("%(field)s changes to %(value)s") % {"field": entry["changed_field"],
                                                                 "value": entry.get("changed_to", "")}
    if entry.get("recipient_path"):
        words += " · " + _("the person: %(path)s") % {"path": entry["recipient_path"]}
    return words
