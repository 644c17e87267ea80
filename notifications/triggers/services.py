"""Services for signal triggers: changing them (audited, versioned) and firing them (the task body).

Every change goes through ``trigger_create``/``trigger_update``/``trigger_set_active``/
``trigger_delete``: each validates against the registry, writes an ``AuditEntry`` and moves the
trigger version on in the same transaction, so running processes reload after commit.

A trigger sends by itself once it is active, so building one is launching it: changing triggers
needs ``trigger.edit`` (the launch permission). A trigger that can reach more people than the
approval threshold (an audience that large, or a per-event cap above it) is active only with a
Manager's approval, which binds what it was given for (``campaigns.approvals``). Every firing is
checked again when it runs: more recipients than the trigger's per-event cap, or an approval
that no longer covers it, and the firing is held (counted and explained on the trigger), not sent.
"""

from __future__ import annotations

import datetime
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from accounts.roles import allows

from .. import conf
from ..campaigns.approvals import ApprovalCheck, may_approve, trigger_approval_check, trigger_fingerprint
from ..models import SignalTrigger
from ..ledger import PlanResult
from ..services import audit_record
from . import registry as reg
from .cache import trigger_state_bump
from .conditions import TriggerConfigError, compile_trigger, normalised, trigger_config_errors

logger = logging.getLogger(__name__)

# What a trigger is, as opposed to what it has done (fired_count, last_fired_at).
CONFIG_FIELDS = (
    "name", "signal", "model", "events", "changed_field", "changed_to", "conditions", "recipient_path",
    "audience", "template", "category", "channels", "dedupe_window", "is_active", "max_recipients",
)


def _require_editor(actor) -> None:
    # ``actor=None`` is code (a data migration, an app's ready()): it is trusted as the deployer.
    if actor is not None and not allows(actor, "trigger.edit"):
        raise PermissionDenied(_("You may not change signal triggers: that needs the permission to launch campaigns."))


def trigger_reach(*, trigger: SignalTrigger) -> int:
    """The most people one firing can reach: its audience's size, or its per-event cap."""
    if trigger.audience_id is not None:
        from ..audiences import audience_users

        return min(audience_users(audience=trigger.audience).count(), trigger.max_recipients)
    return trigger.max_recipients


def trigger_approval(*, trigger: SignalTrigger, size: int | None = None) -> ApprovalCheck:
    """Whether the trigger may be active without a (new) Manager's approval."""
    return trigger_approval_check(trigger=trigger, size=trigger_reach(trigger=trigger) if size is None else size)


def _require_approved_if_active(trigger: SignalTrigger, *, active: bool | None = None) -> None:
    if trigger.is_active if active is None else active:
        approval = trigger_approval(trigger=trigger)
        if approval.needed:
            raise ValidationError({"is_active": [
                approval.reason + " " + _("Save it inactive; once a Manager has approved it, enable it.")
            ]})


def trigger_validate(*, trigger: SignalTrigger) -> None:
    """Raise ``ValidationError`` (keyed by field) unless the trigger is one the receivers can evaluate."""
    errors = trigger_config_errors(
        signal=trigger.signal,
        model=trigger.model,
        events=trigger.events,
        changed_field=trigger.changed_field,
        changed_to=trigger.changed_to,
        conditions=trigger.conditions,
        recipient_path=trigger.recipient_path,
        has_audience=trigger.audience_id is not None,
        channels=trigger.channels,
        dedupe_window=trigger.dedupe_window,
    )
    if errors:
        raise ValidationError(errors)


def _config(trigger: SignalTrigger) -> dict[str, Any]:
    """The trigger's configuration as JSON data (foreign keys as ids, the window in seconds)."""
    values: dict[str, Any] = {}
    for name in CONFIG_FIELDS:
        model_field = SignalTrigger._meta.get_field(name)
        value = getattr(trigger, model_field.attname)
        values[name] = value.total_seconds() if isinstance(value, datetime.timedelta) else value
    return values


def trigger_create(*, trigger: SignalTrigger, actor) -> SignalTrigger:
    """Save a new trigger built by a form or by code. Audited as ``trigger.create``."""
    if trigger.pk is not None:
        raise ValueError("trigger_create() is for new triggers; use trigger_update().")
    _require_editor(actor)
    trigger_validate(trigger=trigger)
    _require_approved_if_active(trigger)
    with transaction.atomic():
        if trigger.created_by_id is None and getattr(actor, "pk", None):
            trigger.created_by = actor
        trigger.save()
        trigger_state_bump()
        audit_record(actor=actor, action="trigger.create", target=trigger, changes=_config(trigger))
    return trigger


def trigger_update(*, trigger: SignalTrigger, actor) -> dict[str, list]:
    """Save changes to an existing trigger; returns (and audits) them as ``{field: [old, new]}``.

    The old values are read from the database, so whoever built ``trigger`` needs to say nothing
    about what changed. Saving no change writes nothing.
    """
    _require_editor(actor)
    trigger_validate(trigger=trigger)
    _require_approved_if_active(trigger)
    with transaction.atomic():
        stored = SignalTrigger.objects.select_for_update().get(pk=trigger.pk)
        before, after = _config(stored), _config(trigger)
        changes = {name: [before[name], after[name]] for name in CONFIG_FIELDS if before[name] != after[name]}
        if not changes:
            return {}
        # Only the configuration: a task may have moved fired_count on since the form was loaded.
        trigger.save(update_fields=[*CONFIG_FIELDS, "updated_at"])
        trigger_state_bump()
        audit_record(actor=actor, action="trigger.update", target=trigger, changes=changes)
    return changes


def trigger_set_active(*, trigger: SignalTrigger, active: bool, actor) -> bool:
    """Enable or disable a trigger; ``False`` if it already was. Audited as ``trigger.enable``/``disable``.

    Enabling re-validates: a trigger whose model or signal is no longer registered is refused
    rather than left active and silently never firing.
    """
    _require_editor(actor)
    if active:
        trigger_validate(trigger=trigger)
        _require_approved_if_active(trigger, active=True)
    with transaction.atomic():
        changed = SignalTrigger.objects.filter(pk=trigger.pk, is_active=not active).update(
            is_active=active, updated_at=timezone.now()
        )
        if not changed:
            return False
        trigger.is_active = active
        trigger_state_bump()
        audit_record(actor=actor, action="trigger.enable" if active else "trigger.disable", target=trigger,
                     changes={"is_active": [not active, active]})
    return True


def trigger_delete(*, trigger: SignalTrigger, actor) -> None:
    """Delete a trigger (its deliveries keep their history, with the trigger unset). Audited."""
    _require_editor(actor)
    with transaction.atomic():
        audit_record(actor=actor, action="trigger.delete", target=trigger, changes=_config(trigger))
        trigger.delete()
        trigger_state_bump()


def trigger_approve(*, trigger: SignalTrigger, actor, now: datetime.datetime | None = None) -> None:
    """A Manager who did not build the trigger approves it as it is now, for its reach."""
    if not allows(actor, "campaign.approve"):
        raise PermissionDenied(_("You may not approve triggers."))
    if not may_approve(actor, author_id=trigger.created_by_id):
        raise PermissionDenied(_("You cannot approve a trigger you built; ask another Manager."))
    reach = trigger_reach(trigger=trigger)
    now = now or timezone.now()
    with transaction.atomic():
        fingerprint = trigger_fingerprint(trigger)
        SignalTrigger.objects.filter(pk=trigger.pk).update(
            approved_by=actor, approved_at=now, approved_size=reach, approval_fingerprint=fingerprint, updated_at=now,
        )
        trigger.approved_by, trigger.approved_at, trigger.approved_size = actor, now, reach
        trigger.approval_fingerprint = fingerprint
        audit_record(actor=actor, action="trigger.approve", target=trigger,
                     changes={"reach": reach, "fingerprint": fingerprint})


def trigger_hold(*, trigger: SignalTrigger, reason: str, at: datetime.datetime) -> None:
    """Record that a firing was held, not sent: counted and explained on the trigger."""
    logger.warning("Trigger %s (%s) held a firing: %s", trigger.pk, trigger.name, reason)
    SignalTrigger.objects.filter(pk=trigger.pk).update(
        held_count=F("held_count") + 1, last_held_at=at, last_held_reason=reason[:255],
    )


def fanout_problem(trigger: SignalTrigger, count: int) -> str:
    """Why a firing reaching ``count`` people may not be sent, or ""."""
    if count > trigger.max_recipients:
        return _(
            "One event would reach %(count)d people, more than this trigger's limit of %(limit)d per event."
        ) % {"count": count, "limit": trigger.max_recipients}
    if count > conf.approval_threshold():
        approval = trigger_approval_check(trigger=trigger, size=count)
        if approval.needed:
            return approval.reason
    return ""


# --- Firing (the task body) -----------------------------------------------------------------------

def trigger_key_prefix(
    *,
    trigger_id: int,
    model: str,
    pk: Any,
    fired_at: datetime.datetime,
    window: datetime.timedelta,
    event_id: str,
    template_id: int | None = None,
) -> str:
    """The ledger key prefix of one firing: equal for all firings a dedupe window folds together.

    With a window, firings for the same instance in the same window (``floor(fired_at / window)``)
    share a prefix, so the ledger's unique key plans each recipient and channel once. Without
    one, every event is its own (``event_id``, made by the receiver), so a retried task is still
    harmless.

    **One event, one message per template** (declared rule): without a window the prefix names
    the event and the template, not the trigger. The receiver gives every trigger matched by one
    signal (one save) the same ``event_id``, so two triggers that send the same template to the
    same person for the same event plan one delivery per channel, not two. The trigger form warns
    about such overlaps (``overlaps.trigger_overlaps``); this rule is what protects the recipient
    when the warning is ignored. Different templates are different messages and both are sent.
    """
    seconds = window.total_seconds() if window else 0
    instance = f"{model}:{pk if pk is not None else '-'}"
    if seconds > 0:
        return f"trigger:{trigger_id}:{instance}:{math.floor(fired_at.timestamp() / seconds)}"
    if template_id is not None:
        return f"trigger-event:{instance}:{event_id}:template:{template_id}"
    return f"trigger:{trigger_id}:{instance}:{event_id}"


def trigger_active(*, trigger_id: int) -> SignalTrigger | None:
    """The trigger if it still exists and is active, with its category and audience."""
    return SignalTrigger.objects.select_related("category", "audience").filter(pk=trigger_id, is_active=True).first()


def trigger_fire(
    *,
    trigger_id: int,
    model: str,
    pk: Any,
    event: str,
    fields: Mapping[str, Any],
    fired_at: str | datetime.datetime,
    event_id: str = "",
    refs: Mapping[str, list] | None = None,
    change: Mapping[str, Any] | None = None,
    check_conditions: bool = False,
    channels: list[str] | None = None,
    counted: bool = True,
    trigger: SignalTrigger | None = None,
) -> PlanResult | None:
    """Send a fired trigger's message to its recipients; ``None`` if it no longer applies.

    The trigger is re-read: one disabled after the event but before this runs sends nothing, and
    the current template, channels and category are used. Recipients come from the recipient
    path, followed from the instance (re-read; for a delete, from the snapshot's foreign keys) or
    from a custom signal's provided objects, or from the audience. ``fields`` is the instance as
    it was when the signal fired; it is the template's ``instance``.

    ``channels`` narrows the firing to those of the trigger's channels (the in-app part planned
    at once, the rest in the task: ``triggers.inline``); ``counted=False`` is a later part of a
    firing already counted, which neither counts it again nor records a hold twice. Every part
    checks the per-event cap and the approval, and all parts share the ledger keys. ``trigger``
    is the trigger ``trigger_id`` names, read just now by the caller (active, with its category
    and audience), so it is not read twice.
    """
    from ..campaigns.planning import template_deliveries_plan

    if trigger is None or trigger.pk != trigger_id:
        trigger = trigger_active(trigger_id=trigger_id)
    if trigger is None:
        logger.info("Trigger %s is gone or inactive; firing for %s %s skipped.", trigger_id, model, pk)
        return None
    when = fired_at if isinstance(fired_at, datetime.datetime) else parse_datetime(fired_at)
    if when is None:
        raise ValueError(f"fired_at is not an ISO datetime: {fired_at!r}")
    fields = dict(fields)
    if check_conditions or (not fields and event != "deleted" and reg.registry.model_for(model) is not None):
        current = _current_fields(model=model, pk=pk)
        if current is None:
            return None  # the instance is gone
        if check_conditions and not _conditions_hold(trigger, current):
            return None
        fields = fields or current
    user_ids = trigger_recipient_ids(trigger=trigger, model=model, pk=pk, event=event, fields=fields, refs=refs or {})
    if trigger.audience_id is not None:
        from ..audiences import audience_users

        # Counted first so a huge audience is never read into memory; then frozen and counted
        # again, so people who joined in between cannot take a firing past its limits.
        count = audience_users(audience=trigger.audience).count()
        if not fanout_problem(trigger, count):
            user_ids = [pk for chunk in user_ids for pk in chunk]
            count = len(user_ids)
    else:
        user_ids = list(user_ids)
        count = len(user_ids)
    if problem := fanout_problem(trigger, count):
        if counted:
            trigger_hold(trigger=trigger, reason=problem, at=when)
        return None
    context = {
        "instance": fields,
        "event": event,
        "trigger": {"id": trigger.pk, "name": trigger.name},
    }
    if change:
        context["change"] = dict(change)
    key_prefix = trigger_key_prefix(
        trigger_id=trigger.pk, model=model, pk=pk, fired_at=when, window=trigger.dedupe_window,
        event_id=event_id or f"{when.timestamp()}", template_id=trigger.template_id,
    )
    with transaction.atomic():
        result = template_deliveries_plan(
            template_id=trigger.template_id,
            user_ids=user_ids,
            channels=[c for c in trigger.channels if channels is None or c in channels],
            category=trigger.category,
            key_prefix=key_prefix,
            context=context,
            trigger_id=trigger.pk,
        )
        if counted:
            SignalTrigger.objects.filter(pk=trigger.pk).update(
                fired_count=F("fired_count") + 1,
                last_fired_at=Greatest(Coalesce(F("last_fired_at"), Value(when)), Value(when)),
            )
    return result


def _current_fields(*, model: str, pk: Any) -> dict[str, Any] | None:
    entry = reg.registry.model_for(model)
    if entry is None:
        return None
    instance = entry.model._base_manager.filter(pk=pk).first()
    return reg.instance_fields(instance) if instance is not None else None


def _conditions_hold(trigger: SignalTrigger, fields: Mapping[str, Any]) -> bool:
    """The trigger's conditions against plain field values (a change seen from the other side)."""
    try:
        compiled = compile_trigger({
            "id": trigger.pk, "signal": trigger.signal, "model": trigger.model, "events": trigger.events,
            "changed_field": "", "changed_to": "", "conditions": trigger.conditions,
        })
    except TriggerConfigError:
        logger.warning("Trigger %s cannot be evaluated; skipped.", trigger.pk, exc_info=True)
        return False
    names = {c.attname: c.field for c in compiled.conditions}
    return compiled.conditions_hold(lambda attname, model_field: normalised(model_field, fields.get(names[attname])))


def trigger_recipient_ids(
    *,
    trigger: SignalTrigger,
    model: str,
    pk: Any,
    event: str,
    fields: Mapping[str, Any],
    refs: Mapping[str, list],
) -> Iterable[int] | Iterable[list[int]]:
    """The active users a firing goes to (ids, or chunks of ids for an audience)."""
    if trigger.audience_id is not None:
        from ..audiences import audience_user_ids

        return audience_user_ids(audience=trigger.audience)
    path = trigger.recipient_path
    if not path:
        return []
    entry = reg.registry.signals.get(trigger.signal)
    if entry is not None and not (entry.model_signal or entry.user_signal):
        return _ids_from_provided(path=path, fields=fields, refs=refs)
    registered = reg.registry.model_for(model)
    if registered is None:
        return []
    if event == "deleted":
        return _ids_from_snapshot(model=registered.model, path=path, fields=fields)
    return _ids_along(model=registered.model, pk=pk, path=path)


def _active(user_ids: Iterable) -> list[int]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return []
    return list(get_user_model().objects.filter(pk__in=ids, is_active=True).order_by("pk").values_list("pk", flat=True))


def _ids_along(*, model, pk: Any, path: str) -> list[int]:
    """Follow ``path`` from the row ``pk`` of ``model`` to user ids: one query, to-many included."""
    lookup = reg.recipient_lookup(model, path)
    return _active(model._base_manager.filter(pk=pk).values_list(lookup, flat=True))


def _ids_from_snapshot(*, model, path: str, fields: Mapping[str, Any]) -> list[int]:
    """Recipients of a deleted instance: start from a foreign key kept in its snapshot."""
    first, _, rest = path.partition(".")
    if path == reg.SELF:
        user_field = reg._user_relation(model)
        return _active([fields.get(user_field)]) if user_field else []
    try:
        model_field = model._meta.get_field(first)
    except Exception:  # noqa: BLE001 - an unknown path simply reaches nobody
        return []
    if not (model_field.many_to_one or model_field.one_to_one) or not model_field.concrete or first not in fields:
        logger.info("Recipient path %s of a deleted %s needs %s in its registered fields.", path, model, first)
        return []
    related_pk = fields[first]
    if related_pk is None:
        return []
    related = model_field.related_model
    if related._meta.concrete_model is get_user_model()._meta.concrete_model and not rest:
        return _active([related_pk])
    return _ids_along(model=related, pk=related_pk, path=rest or reg.SELF)


def _ids_from_provided(*, path: str, fields: Mapping[str, Any], refs: Mapping[str, list]) -> list[int]:
    """Recipients of a custom signal: the path starts at a provided argument."""
    first, _, rest = path.partition(".")
    if first in refs:
        label, ref_pk = refs[first]
        try:
            model = apps.get_model(label)
        except LookupError:
            return []
        return _ids_along(model=model, pk=ref_pk, path=rest or reg.SELF)
    value = fields.get(first)
    if not rest and isinstance(value, int) and not isinstance(value, bool):
        return _active([value])  # a user id
    return []
