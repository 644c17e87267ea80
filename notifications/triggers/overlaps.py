"""Which other active triggers cover the same event and the same people (a read, no writes).

Two triggers overlap when one save can fire both and both reach the same recipients: the same
signal and model, at least one event in common, the same recipient path (or the same audience),
and nothing that makes them exclusive as far as can be told without running them — a field
"changes to" or "equals" one value in one and another value in the other. What cannot be
decided (a "greater than" against an "equals") counts as overlapping: a warning too many is
cheaper than a customer messaged twice.

The admin shows the overlaps on the trigger form (live, and after saving). When the two send
the same template, the delivery pipeline sends it once per person and channel for one event
(``services.trigger_key_prefix``); with different templates the person gets both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..models import SignalTrigger


@dataclass(frozen=True)
class TriggerOverlap:
    other: SignalTrigger
    same_template: bool  # the same template, sent once per event (no dedupe window on either)


def _pins(trigger: SignalTrigger | Mapping[str, Any]) -> dict[str, set[str]]:
    """Field -> the only values it can have when the trigger fires (from "changes to", eq, in)."""
    get = trigger.get if isinstance(trigger, Mapping) else (lambda name, default=None: getattr(trigger, name, default))
    pins: dict[str, set[str]] = {}

    def pin(field: str, values: Iterable[Any]) -> None:
        values = {str(v) for v in values}
        pins[field] = pins[field] & values if field in pins else values

    if get("changed_field") and get("changed_to", "") not in ("", None):
        pin(get("changed_field"), [get("changed_to")])
    for condition in get("conditions") or []:
        if not isinstance(condition, dict) or not isinstance(condition.get("field"), str):
            continue
        if condition.get("op") == "eq":
            pin(condition["field"], [condition.get("value")])
        elif condition.get("op") == "in" and isinstance(condition.get("value"), list):
            pin(condition["field"], condition["value"])
    return pins


def _exclusive(a: dict[str, set[str]], b: dict[str, set[str]]) -> bool:
    return any(field in b and not (values & b[field]) for field, values in a.items())


def trigger_overlaps(*, trigger: SignalTrigger) -> list[TriggerOverlap]:
    """Other active triggers that one event could fire together with ``trigger``, to the same people.

    ``trigger`` may be unsaved (the form being filled in). One query.
    """
    if not trigger.signal or not (trigger.recipient_path or trigger.audience_id):
        return []
    others = SignalTrigger.objects.filter(is_active=True, signal=trigger.signal, model=trigger.model or "")
    if trigger.pk is not None:
        others = others.exclude(pk=trigger.pk)
    if trigger.audience_id is not None:
        others = others.filter(audience_id=trigger.audience_id)
    else:
        others = others.filter(recipient_path=trigger.recipient_path, audience__isnull=True)
    events = set(trigger.events or [])
    mine = _pins(trigger)
    found = []
    for other in others.order_by("name", "pk"):
        theirs = set(other.events or [])
        if events and theirs and not events & theirs:
            continue
        if _exclusive(mine, _pins(other)):
            continue
        # One message per template per event holds only without a dedupe window (services.
        # trigger_key_prefix): with one, each trigger keys its own sends, and both would go out.
        once = not trigger.dedupe_window and not other.dedupe_window
        found.append(TriggerOverlap(other=other, same_template=once and other.template_id == trigger.template_id))
    return found
