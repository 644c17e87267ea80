"""A trigger tried against a real instance, without sending: would it fire, to whom, saying what.

``trigger_dry_run`` takes the instance as it is now and asks, step by step, what the receiver
and the task would: does the event filter take it, is the watched field at the value the
trigger waits for, do the conditions hold; then it resolves the recipients exactly as a firing
would (``services.trigger_recipient_ids``) and renders the template for the first of them with
the instance's allow-listed fields (``templating.preview``). Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from ..models import SignalTrigger
from . import registry as reg
from .conditions import OPS, TriggerConfigError, compile_trigger, condition_holds, normalised

RECIPIENTS_SHOWN = 20


class DryRunError(ValueError):
    """The trigger cannot be tried this way (not a model trigger, no such instance)."""


@dataclass(frozen=True)
class DryRunCheck:
    label: str
    ok: bool


@dataclass
class DryRun:
    instance: models.Model
    event: str
    checks: list[DryRunCheck]
    recipients: list[Any] = field(default_factory=list)  # the first RECIPIENTS_SHOWN users
    recipient_count: int = 0
    preview: Any = None  # templating.preview.TemplatePreview for the first recipient
    listens_for: str = ""  # which event the test stands in for, in words

    @property
    def fires(self) -> bool:
        return all(check.ok for check in self.checks) and self.recipient_count > 0


def trigger_subject_model(trigger: SignalTrigger) -> reg.RegisteredModel | None:
    """The registered model whose instances a trigger can be tried on (``None`` for custom signals)."""
    entry = reg.registry.signals.get(trigger.signal)
    if entry is None:
        return None
    if entry.user_signal:
        return reg.registry.model_for(reg.model_label(get_user_model()))
    if entry.model_signal:
        return reg.registry.model_for(trigger.model)
    return None


def trigger_instance_choices(*, trigger: SignalTrigger, search: str = "", limit: int = 20) -> list[tuple[Any, str]]:
    """Recent instances to try the trigger on, optionally found by id or by their text."""
    registered = trigger_subject_model(trigger)
    if registered is None:
        return []
    queryset = registered.model._base_manager.all()
    search = search.strip()
    if search:
        text_fields = [name for name in registered.fields
                       if isinstance(registered.field(name), (models.CharField, models.TextField))]
        query = models.Q()
        for name in text_fields:
            query |= models.Q(**{f"{name}__icontains": search})
        if search.isdigit():
            query |= models.Q(pk=int(search))
        queryset = queryset.filter(query) if query else queryset.none()
    return [(obj.pk, f"#{obj.pk} · {obj}") for obj in queryset.order_by("-pk")[:limit]]


def _event_for(trigger: SignalTrigger) -> str:
    entry = reg.registry.signals.get(trigger.signal)
    if entry is not None and not entry.model_signal:
        return "fired"
    events = list(trigger.events or [])
    for event in ("updated", "created", "deleted"):
        if event in events:
            return event
    return events[0] if events else "updated"


def _label(model_field: models.Field | None, name: str) -> str:
    return str(capfirst(model_field.verbose_name)) if model_field is not None else name


def trigger_dry_run(*, trigger: SignalTrigger, pk: Any) -> DryRun:
    """What firing ``trigger`` for the instance ``pk`` would do now; sends nothing."""
    from ..audiences import audience_users
    from ..templating.preview import TemplatePreview, template_preview
    from .services import fanout_problem, trigger_recipient_ids

    registered = trigger_subject_model(trigger)
    if registered is None:
        raise DryRunError(_("Only triggers on a model's saves or deletes, or on a user, can be tried on an instance."))
    try:
        instance = registered.model._base_manager.filter(pk=pk).first()
    except (TypeError, ValueError):
        instance = None
    if instance is None:
        raise DryRunError(_("There is no %(model)s with id %(pk)s.") % {"model": registered.verbose_name, "pk": pk})
    try:
        compiled = compile_trigger({
            "id": trigger.pk or 0, "signal": trigger.signal, "model": trigger.model, "events": trigger.events,
            "changed_field": trigger.changed_field, "changed_to": trigger.changed_to,
            "conditions": trigger.conditions,
        })
    except TriggerConfigError as exc:
        raise DryRunError(str(exc)) from None
    event = _event_for(trigger)

    def value(attname: str, model_field: models.Field | None) -> Any:
        return normalised(model_field, getattr(instance, attname, None))

    # The event the test stands in for is a statement, not a check: it is chosen from the trigger.
    checks: list[DryRunCheck] = []
    if compiled.changed_field and compiled.changed_model_field is not None:
        current = value(compiled.changed_attname, compiled.changed_model_field)
        if compiled.changed_any:
            checks.append(DryRunCheck(
                _("%(field)s changes (assumed: the test cannot see the previous value).")
                % {"field": _label(compiled.changed_model_field, compiled.changed_field)}, True,
            ))
        else:
            checks.append(DryRunCheck(
                _("%(field)s is %(value)s now; the trigger waits for %(wanted)s.")
                % {"field": _label(compiled.changed_model_field, compiled.changed_field), "value": current,
                   "wanted": compiled.changed_to},
                current == compiled.changed_to,
            ))
    for condition in compiled.conditions:
        actual = value(condition.attname, condition.model_field)
        checks.append(DryRunCheck(
            _("%(field)s %(op)s %(value)s (it is %(actual)s).")
            % {"field": _label(condition.model_field, condition.field), "op": OPS[condition.op],
               "value": condition.value, "actual": actual},
            condition_holds(condition.op, actual, condition.value, typed=condition.model_field is not None),
        ))
    fields = reg.instance_fields(instance)
    if trigger.audience_id is not None:
        # Counted, and the first few read, as trigger_fire counts: never the audience in memory.
        audience = audience_users(audience=trigger.audience)
        count = audience.count()
        users = list(audience.order_by("pk")[:RECIPIENTS_SHOWN])
    else:
        ids = list(trigger_recipient_ids(trigger=trigger, model=registered.label, pk=instance.pk, event=event,
                                         fields=fields, refs={}))
        count = len(ids)
        users = list(get_user_model().objects.filter(pk__in=ids[:RECIPIENTS_SHOWN]).order_by("pk"))
    # What would hold a real firing of this size (its per-event limit, an approval it needs).
    problem = fanout_problem(trigger, count)
    checks.append(DryRunCheck(problem or _("%(count)s recipients are within the trigger's limits.") % {"count": count},
                              not problem))
    run = DryRun(instance=instance, event=event, checks=checks, recipients=users, recipient_count=count,
                 listens_for=_("The trigger listens for “%(event)s”.") % {"event": reg.EVENT_LABELS[event]})
    if users:
        preview = template_preview(template=trigger.template, user=users[0], instance=instance)
        # Only what this trigger sends: the template may have parts for channels it does not use.
        run.preview = TemplatePreview(locale=preview.locale, channels=[
            c for c in preview.channels if c.channel in (trigger.channels or [])])
    return run
