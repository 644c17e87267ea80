"""How people enter a journey, and the signal side of entries, goals and exit conditions.

An entry is ``{"kind": "code"}`` (``journeys.enter(...)`` only) or a signal trigger's binding
without a message: ``{"kind": "signal", "signal": "model.post_save", "model": "demo_shop.order",
"events": ["updated"], "changed_field": "status", "changed_to": "paid", "conditions": [...],
"recipient_path": "customer"}``. Signal entries of live journeys, and the goals and model exit
conditions of live and paused journeys' versions, are compiled into the triggers' per-process
cache (``triggers.cache``) next to the signal triggers, so they are matched by the same cheap
receivers on the save path and acted on after commit (``journey_firings_run``), never inside
the saving transaction.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from ..triggers import registry as reg
from ..triggers.conditions import CompiledTrigger, TriggerConfigError, compile_trigger

logger = logging.getLogger(__name__)

ENTRY_KINDS = ("code", "signal", "audience", "date", "campaign")
ROLE_ENTRY, ROLE_GOAL, ROLE_EXIT = "entry", "goal", "exit"
# An audience entry checked on the save of a model its rules read (``audience_watch``).
ROLE_AUDIENCE = "audience"


def entry_problems(entry: Any, *, reentry: str | None = None) -> list[str]:
    """What is wrong with an entry definition, in words; [] when it can be used."""
    from ..triggers.conditions import trigger_config_errors
    from .entries import scheduled_entry_problems

    if not isinstance(entry, dict) or entry.get("kind") not in ENTRY_KINDS:
        return [_("The entry must be {\"kind\": \"code\"}, a signal, an audience, a date or a campaign entry.")]
    if entry["kind"] == "code":
        return []
    if entry["kind"] != "signal":
        return scheduled_entry_problems(entry, reentry=reentry)
    errors = trigger_config_errors(
        signal=entry.get("signal", ""), model=entry.get("model", ""), events=entry.get("events", []),
        changed_field=entry.get("changed_field", ""), changed_to=entry.get("changed_to", ""),
        conditions=entry.get("conditions", []), recipient_path=entry.get("recipient_path", ""),
        has_audience=False, channels=["inapp"], dedupe_window=None,
    )
    return [_("Entry: %(problem)s") % {"problem": message} for messages in errors.values() for message in messages]


def _signal_row(entry: Mapping, *, ident: int) -> dict:
    return {"id": ident, "signal": entry.get("signal", ""), "model": entry.get("model", ""),
            "events": entry.get("events") or [], "changed_field": entry.get("changed_field", ""),
            "changed_to": entry.get("changed_to", ""), "conditions": entry.get("conditions") or []}


def compiled_journey_bindings() -> list[CompiledTrigger]:
    """Signal entries of live journeys and save-time goals/exits of live or paused ones, compiled.

    Called by ``triggers.cache`` when it reloads (after any trigger or journey change).
    """
    from ..models import Journey, JourneyVersion

    compiled: list[CompiledTrigger] = []
    audience_journeys: list[tuple[int, Any]] = []
    for journey_id, entry in Journey.objects.filter(status=Journey.Status.LIVE).values_list("pk", "entry"):
        if isinstance(entry, dict) and entry.get("kind") == "audience":
            audience_journeys.append((journey_id, entry.get("audience")))
        if not isinstance(entry, dict) or entry.get("kind") != "signal":
            continue
        try:
            base = compile_trigger(_signal_row(entry, ident=journey_id))
        except TriggerConfigError as exc:
            logger.warning("Journey %s is live but its entry cannot be evaluated: %s", journey_id, exc)
            continue
        compiled.append(dataclasses.replace(base, journey_id=journey_id, journey_role=ROLE_ENTRY))
    compiled.extend(_audience_bindings(audience_journeys))
    # The version new entries take, and older ones only while someone is still on them (an old
    # version gains nobody, so one that empties after this load only costs a no-op firing).
    from django.db.models import Exists, F, OuterRef, Q

    from ..models import JourneyEnrollment

    someone = JourneyEnrollment.objects.filter(version=OuterRef("pk"), state=JourneyEnrollment.State.ACTIVE)
    versions = JourneyVersion.objects.filter(
        Q(pk=F("journey__current_version")) | Exists(someone),
        journey__status__in=[Journey.Status.LIVE, Journey.Status.PAUSED],
    ).values_list("pk", "journey_id", "goals", "exits")
    for version_id, journey_id, goals, exits in versions:
        rules = [(ROLE_GOAL, i, g) for i, g in enumerate(goals or [])]
        rules += [(ROLE_EXIT, i, e) for i, e in enumerate(exits or []) if isinstance(e, dict) and e.get("kind") == "condition"]
        for role, index, rule in rules:
            if not isinstance(rule, dict):
                continue
            row = {"signal": reg.MODEL_POST_SAVE, "model": rule.get("model", ""), "events": ["created", "updated"],
                   "conditions": rule.get("conditions") or []}
            try:
                base = compile_trigger(_signal_row(row, ident=version_id))
            except TriggerConfigError as exc:
                logger.warning("Journey %s version %s: a %s cannot be evaluated: %s", journey_id, version_id, role, exc)
                continue
            compiled.append(dataclasses.replace(base, journey_id=journey_id, journey_role=role,
                                                journey_version_id=version_id, journey_rule=index))
    return compiled


def _rule_field_keys(node: Any) -> set[str]:
    """Every audience field a rule tree names."""
    keys: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("field"), str):
            keys.add(node["field"])
        for group in ("all", "any", "not"):
            child = node.get(group)
            for item in child if isinstance(child, list) else [child] if child is not None else []:
                keys |= _rule_field_keys(item)
    elif isinstance(node, list):
        for item in node:
            keys |= _rule_field_keys(item)
    return keys


def audience_watch(rules: Any) -> dict[str, tuple[str, frozenset[str]]]:
    """Model label -> (path to the person, the model's fields that matter), for each model whose
    save can change whether someone matches these audience rules, as the audience fields declare
    (``saved_with``, ``saved_columns``; no fields: any save matters). Fields that do not say
    (engagement, time-relative ones) are left to the periodic scan."""
    from ..audiences.registry import audience_fields

    watch: dict[str, tuple[str, frozenset[str]]] = {}
    for key in sorted(_rule_field_keys(rules)):
        audience_field = audience_fields.get(key)
        for label, path in (audience_field.saved_with if audience_field else {}).items():
            if label == "user":
                label = reg.model_label(reg.ensure_user_model().model)
            columns = audience_field.saved_columns
            if label in watch:  # another field read this model: it matters on a save of either's
                path, seen = watch[label]
                columns = seen | columns if seen and columns else frozenset()  # empty: any save
            watch[label] = (path, columns)
    return watch


def _audience_bindings(journeys: list[tuple[int, Any]]) -> list[CompiledTrigger]:
    """Live audience-entry journeys ``(journey id, audience id)``, bound to the saves of the models
    their audience's rules read: a person who starts matching is checked after that save's commit,
    not at the next scan. One query (the audiences' rules), none without such journeys."""
    from ..models import Audience

    if not journeys:
        return []
    rules = dict(Audience.objects.filter(pk__in={a for _j, a in journeys if isinstance(a, int)},
                                         kind=Audience.Kind.RULES).values_list("pk", "rules"))
    compiled: list[CompiledTrigger] = []
    for journey_id, audience_id in journeys:
        watch = audience_watch(rules.get(audience_id)) if audience_id in rules else {}
        for label, (_path, columns) in watch.items():
            row = {"signal": reg.MODEL_POST_SAVE, "model": label, "events": ["created", "updated"], "conditions": []}
            try:
                base = compile_trigger(_signal_row(row, ident=journey_id))
            except TriggerConfigError:
                continue  # not a model registered for triggers: the periodic scan covers it
            compiled.append(dataclasses.replace(base, journey_id=journey_id, journey_role=ROLE_AUDIENCE,
                                                saved_columns=columns))
    return compiled


def journey_firing(trigger: CompiledTrigger, *, model: str, pk: Any, event: str, fields: dict, fired_at: str,
                   event_id: str, refs: dict | None = None) -> dict:
    """The JSON a matched journey binding leaves for after commit."""
    firing = {"journey_id": trigger.journey_id, "role": trigger.journey_role, "model": model, "pk": pk,
              "event": event, "fields": fields, "fired_at": fired_at, "event_id": event_id}
    if trigger.journey_role in (ROLE_GOAL, ROLE_EXIT):
        firing.update(version_id=trigger.journey_version_id, rule=trigger.journey_rule)
    if refs:
        firing["refs"] = refs
    return firing


def journey_firings_worth_running(firings: list[dict]) -> list[dict]:
    """The firings worth a task: goal and exit firings only for versions someone is active on.

    A goal binds the current version even when nobody is in it (a new journey, a quiet one), so
    every matching save (each paid order) would otherwise queue a task that ends nobody. One
    query after commit, instead of a task per save: an ``EXISTS`` per version on
    ``journeyenrollment_step_idx`` stops at the first active enrollment (a ``DISTINCT`` over the
    enrollments would read every active one of a busy journey on each save).
    """
    from django.db.models import Exists, OuterRef

    from ..models import JourneyEnrollment, JourneyVersion

    versions = {f["version_id"] for f in firings if f.get("role") in (ROLE_GOAL, ROLE_EXIT)}
    if not versions:
        return firings
    active = JourneyEnrollment.objects.filter(version_id=OuterRef("pk"), state=JourneyEnrollment.State.ACTIVE)
    busy = set(JourneyVersion.objects.filter(Exists(active), pk__in=versions).values_list("pk", flat=True))
    return [f for f in firings if f.get("role") not in (ROLE_GOAL, ROLE_EXIT) or f["version_id"] in busy]


def journey_firings_run(*, firings: Iterable[dict]) -> dict:
    """After commit: enter people (entries), or end their enrollments (goals, exit conditions)."""
    from ..models import Journey, JourneyEnrollment, JourneyVersion
    from ..signals import journey_goal_reached
    from ..triggers.services import _ids_along, _ids_from_provided, _ids_from_snapshot
    from .services import JourneyNotLive, journey_enter

    done = {"entered": 0, "converted": 0, "exited": 0}
    firings = list(firings)
    # A batch's journeys and versions read once (a bulk save fires one binding per row), not per
    # firing: entering re-reads the journey's status itself, so nothing here goes stale.
    journeys = Journey.objects.in_bulk({f["journey_id"] for f in firings if f["role"] in (ROLE_ENTRY, ROLE_AUDIENCE)})
    versions = JourneyVersion.objects.in_bulk({f["version_id"] for f in firings
                                               if f["role"] not in (ROLE_ENTRY, ROLE_AUDIENCE)})
    for firing in firings:
        when = parse_datetime(firing["fired_at"]) or timezone.now()
        if firing["role"] == ROLE_ENTRY:
            journey = journeys.get(firing["journey_id"])
            if journey is None or not isinstance(journey.entry, dict):
                continue
            path = journey.entry.get("recipient_path") or reg.SELF
            user_ids = _recipients(firing, path=path, signal=journey.entry.get("signal", ""),
                                   along=_ids_along, snapshot=_ids_from_snapshot, provided=_ids_from_provided)
            context = {"instance": firing.get("fields") or {}, "event": firing.get("event")}
            # One entry per event and person: the event's id is the entry key under "every time";
            # the instance's, so an order enters once, under the other policies.
            key = (f"{firing['model']}:{firing['pk']}:{firing['event_id']}"
                   if journey.reentry == Journey.Reentry.ALWAYS else f"{firing['model']}:{firing['pk']}")
            if journey.reentry == Journey.Reentry.ONCE:
                key = ""
            try:
                done["entered"] += journey_enter(journey=journey, user_ids=user_ids, context=context,
                                                 entry_key=key or None, now=when).entered
            except JourneyNotLive:
                continue
            continue
        if firing["role"] == ROLE_AUDIENCE:
            done["entered"] += _audience_firing_run(firing, when=when, journey=journeys.get(firing["journey_id"]))
            continue
        version = versions.get(firing["version_id"])
        if version is None:
            continue
        rules = version.goals if firing["role"] == ROLE_GOAL else version.exits
        try:
            rule = rules[firing["rule"]]
        except (IndexError, TypeError):
            continue
        user_ids = _recipients(firing, path=rule.get("recipient_path") or reg.SELF, signal=reg.MODEL_POST_SAVE,
                               along=_ids_along, snapshot=_ids_from_snapshot, provided=_ids_from_provided)
        state = JourneyEnrollment.State.CONVERTED if firing["role"] == ROLE_GOAL else JourneyEnrollment.State.EXITED
        prefix = "goal" if firing["role"] == ROLE_GOAL else "exit"
        with transaction.atomic():
            ending = JourneyEnrollment.objects.filter(
                version=version, user_id__in=user_ids, state=JourneyEnrollment.State.ACTIVE, entered_at__lte=when,
            )
            ids = list(ending.values_list("id", flat=True)) if firing["role"] == ROLE_GOAL else []
            if firing["role"] == ROLE_GOAL:
                ending = ending.filter(id__in=ids)  # exactly the people announced below
            ended = ending.update(state=state, state_reason=f"{prefix}:{rule.get('name', '')}"[:100], due_at=None,
                                  finished_at=when, lease_owner="")
            if ids:
                goal = str(rule.get("name", ""))
                transaction.on_commit(lambda ids=ids, goal=goal: journey_goal_reached.send(
                    sender=JourneyEnrollment, enrollment_ids=ids, goal=goal))
        done["converted" if firing["role"] == ROLE_GOAL else "exited"] += ended
    return done


def _recipients(firing: Mapping, *, path: str, signal: str, along, snapshot, provided) -> list[int]:
    entry = reg.registry.signals.get(signal)
    if entry is not None and not (entry.model_signal or entry.user_signal):
        return provided(path=path, fields=firing.get("fields") or {}, refs=firing.get("refs") or {})
    registered = reg.registry.model_for(firing["model"])
    if registered is None:
        return []
    if firing.get("event") == "deleted":
        return snapshot(model=registered.model, path=path, fields=firing.get("fields") or {})
    return along(model=registered.model, pk=firing["pk"], path=path)


def _audience_firing_run(firing: Mapping, *, when, journey) -> int:
    """A model an audience entry reads was saved: enter its people who match the audience now,
    under the same entry key (and so the same re-entry rules) as the periodic scan."""
    from ..audiences.selectors import audience_users
    from ..models import Audience, Journey
    from ..triggers.services import _ids_along, _ids_from_provided, _ids_from_snapshot
    from .entries import audience_entry_key
    from .services import JourneyNotLive, journey_enter

    if journey is not None and journey.status != Journey.Status.LIVE:
        journey = None
    entry = journey.entry if journey is not None and isinstance(journey.entry, dict) else {}
    audience = Audience.objects.filter(pk=entry.get("audience")).first() if entry.get("kind") == "audience" else None
    if audience is None:
        return 0
    path, _columns = audience_watch(audience.rules).get(firing["model"], (None, None))
    if path is None:
        return 0  # the audience's rules changed since: they no longer read this model
    people = _recipients(firing, path=path, signal=reg.MODEL_POST_SAVE, along=_ids_along,
                         snapshot=_ids_from_snapshot, provided=_ids_from_provided)
    matching = list(audience_users(audience=audience).filter(pk__in=people).values_list("pk", flat=True))
    if not matching:
        return 0
    try:
        return journey_enter(journey=journey, user_ids=matching, entry_key=audience_entry_key(journey, now=when),
                             context={"audience": audience.pk}, now=when).entered
    except JourneyNotLive:
        return 0
