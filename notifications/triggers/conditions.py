"""Trigger matching without the database: event filter, "field X changed to Y", field conditions.

A trigger row is compiled once per cache reload into a ``CompiledTrigger`` whose condition values
already have the field's Python type (``Decimal("100")`` for a ``DecimalField``, an aware
``datetime``...), so the per-save check is a few comparisons. ``trigger_config_errors`` uses the
same code to tell a marketer what is wrong with a trigger before it is saved.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import registry as reg

OPS = {
    "eq": gettext_lazy("equals"),
    "ne": gettext_lazy("does not equal"),
    "gt": gettext_lazy("is greater than"),
    "gte": gettext_lazy("is at least"),
    "lt": gettext_lazy("is less than"),
    "lte": gettext_lazy("is at most"),
    "in": gettext_lazy("is one of"),
    "contains": gettext_lazy("contains"),
    "is_empty": gettext_lazy("is empty (true) or not (false)"),
}
ORDERED_OPS = frozenset({"gt", "gte", "lt", "lte"})
MISSING = object()
TEXT_FIELDS = (models.CharField, models.TextField)
UNORDERED_FIELDS = (models.BooleanField, models.JSONField)


class TriggerConfigError(ValueError):
    """A trigger that cannot be evaluated; ``field`` names the form field at fault."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Condition:
    field: str
    attname: str
    op: str
    value: Any
    model_field: models.Field | None  # None: a custom signal's argument, typed at run time


@dataclass(frozen=True)
class CompiledTrigger:
    """An active trigger, ready to be checked against a signal. Built by ``compile_trigger``."""

    id: int
    signal: str
    model: str
    events: frozenset[str]
    changed_field: str
    changed_attname: str
    changed_any: bool  # "field X changed" (to anything)
    changed_to: Any
    changed_model_field: models.Field | None
    conditions: tuple[Condition, ...]
    # Set when the binding is a journey's (its signal entry, a goal or an exit condition;
    # ``journeys.entry``): a match is handed to the journey, not sent as a message.
    journey_id: int | None = None
    journey_role: str = ""
    journey_version_id: int | None = None
    journey_rule: int = 0
    # A journey's audience entry: the saved model's fields its audience reads. An update whose
    # ``update_fields`` names none of them cannot change who matches (``last_login`` at sign-in).
    saved_columns: frozenset[str] = frozenset()

    def event_matches(self, *, event: str, m2m_field: str = "") -> bool:
        """The event filter alone (and, for a many-to-many change, which relation changed)."""
        if self.events and event not in self.events:
            return False
        return not (m2m_field and self.changed_field and m2m_field != self.changed_field)

    def matches(
        self,
        *,
        event: str,
        get: Callable[[str, models.Field | None], Any],
        old: Mapping[str, Any] | None = None,
        update_fields: Sequence[str] | None = None,
        m2m_field: str = "",
    ) -> bool:
        """Whether this trigger fires for ``event`` on a subject whose values ``get`` returns.

        ``old`` holds the values read before the save for watched fields (``None``: not read,
        treated as changed); ``m2m_field`` names the relation a ``m2m_changed`` event is about.
        """
        if not self.event_matches(event=event, m2m_field=m2m_field):
            return False
        if (self.saved_columns and event == "updated" and update_fields is not None
                and self.saved_columns.isdisjoint(update_fields)):
            return False
        if self.changed_field and not m2m_field and event in ("created", "updated"):
            if update_fields is not None and self.changed_field not in update_fields:
                return False
            new = get(self.changed_attname, self.changed_model_field)
            if not self.changed_any and not _equal(new, self.changed_to):
                return False
            if event == "updated" and old is not None:
                before = old.get(self.changed_attname, MISSING)
                if before is not MISSING and _equal(before, new):
                    return False
        return self.conditions_hold(get)

    def conditions_hold(self, get: Callable[[str, models.Field | None], Any]) -> bool:
        return all(condition_holds(c.op, get(c.attname, c.model_field), c.value, typed=c.model_field is not None)
                   for c in self.conditions)


def _equal(a: Any, b: Any) -> bool:
    try:
        return a == b
    except TypeError:
        return False


def condition_holds(op: str, actual: Any, value: Any, *, typed: bool = True) -> bool:
    """Evaluate one condition; a comparison between incompatible types is simply false."""
    if not typed and op not in ("is_empty", "contains"):
        value = [_like(actual, v) for v in value] if op == "in" and isinstance(value, list) else _like(actual, value)
    try:
        if op == "eq":
            return actual == value
        if op == "ne":
            return actual != value
        if op == "is_empty":
            return (actual is None or actual == "" or actual == [] or actual == {}) == bool(value)
        if op == "in":
            return actual in value
        if op == "contains":
            if isinstance(actual, str):
                return str(value).casefold() in actual.casefold()
            return isinstance(actual, (list, tuple, dict, set)) and value in actual
        if actual is None or value is None:
            return False
        if op == "gt":
            return actual > value
        if op == "gte":
            return actual >= value
        if op == "lt":
            return actual < value
        if op == "lte":
            return actual <= value
    except TypeError:
        return False
    return False


def _like(actual: Any, value: Any) -> Any:
    """``value`` converted to the type of ``actual`` (custom signal arguments carry no field types)."""
    try:
        if isinstance(actual, bool):
            return _to_bool(value)
        if isinstance(actual, int):
            return int(value)
        if isinstance(actual, float):
            return float(value)
        if isinstance(actual, decimal.Decimal):
            return decimal.Decimal(str(value))
        if isinstance(actual, datetime.datetime):
            parsed = parse_datetime(str(value))
            return timezone.make_aware(parsed) if parsed and timezone.is_naive(parsed) else parsed
        if isinstance(actual, datetime.date):
            return parse_date(str(value))
        if isinstance(actual, str) and isinstance(value, (int, float, decimal.Decimal)):
            return str(value)
    except (ValueError, TypeError, decimal.InvalidOperation):
        return value
    return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "t", "1", "yes", "on"):
        return True
    if text in ("false", "f", "0", "no", "off", ""):
        return False
    raise ValueError(_("%(value)s is not true or false.") % {"value": value})


def coerce(model_field: models.Field | None, value: Any) -> Any:
    """A JSON (or form text) value as ``model_field``'s Python type; ``ValueError`` with a reason."""
    if model_field is None:
        return value
    if isinstance(model_field, models.BooleanField):
        return _to_bool(value)
    if isinstance(value, (list, dict)) and not isinstance(model_field, models.JSONField):
        raise ValueError(_("a single value is expected here, not a list"))
    try:
        python = model_field.to_python(value)
    except ValidationError as exc:
        raise ValueError(" ".join(str(m) for m in exc.messages)) from None
    if isinstance(python, datetime.datetime) and timezone.is_naive(python):
        python = timezone.make_aware(python)
    return python


def normalised(model_field: models.Field | None, raw: Any) -> Any:
    """An instance attribute as its field's Python type (``Order(total="10")`` holds a str)."""
    if model_field is None or raw is None:
        return raw
    try:
        value = model_field.to_python(raw)
    except (ValidationError, TypeError, ValueError):
        return raw
    if isinstance(value, datetime.datetime) and timezone.is_naive(value) and isinstance(raw, str):
        value = timezone.make_aware(value)
    return value


def compile_condition(index: int, raw: Any, fields: Mapping[str, models.Field | None]) -> Condition:
    """One ``{"field", "op", "value"}`` as a ``Condition``; ``ValueError`` with a friendly message."""
    n = index + 1
    if not isinstance(raw, dict):
        raise ValueError(_("Condition %(n)d must be an object with field, op and value.") % {"n": n})
    unknown = set(raw) - {"field", "op", "value"}
    if unknown:
        raise ValueError(
            _("Condition %(n)d has unknown keys: %(keys)s. Use field, op and value.")
            % {"n": n, "keys": ", ".join(sorted(map(str, unknown)))}
        )
    name, op = raw.get("field"), raw.get("op")
    if not isinstance(name, str) or name not in fields:
        raise ValueError(
            _("Condition %(n)d: %(field)s is not a field you can test here. Choose one of: %(fields)s.")
            % {"n": n, "field": name if name is not None else "—", "fields": ", ".join(fields) or "—"}
        )
    if op not in OPS:
        raise ValueError(
            _("Condition %(n)d: op must be one of %(ops)s.") % {"n": n, "ops": ", ".join(OPS)}
        )
    if "value" not in raw:
        raise ValueError(_("Condition %(n)d needs a value.") % {"n": n})
    model_field = fields[name]
    value = raw["value"]
    try:
        if op == "is_empty":
            value = _to_bool(value)
        elif op == "in":
            if not isinstance(value, list) or not value:
                raise ValueError(_("the value of “is one of” must be a non-empty list"))
            value = [coerce(model_field, v) for v in value]
        elif op == "contains":
            if model_field is not None and not isinstance(model_field, (*TEXT_FIELDS, models.JSONField)):
                raise ValueError(_("“contains” works on text and list fields only"))
            if isinstance(value, (list, dict)):
                raise ValueError(_("a single value is expected here, not a list"))
        else:
            if op in ORDERED_OPS and isinstance(model_field, UNORDERED_FIELDS):
                raise ValueError(_("this field cannot be compared with greater or less than"))
            value = coerce(model_field, value)
    except ValueError as exc:
        raise ValueError(
            _("Condition %(n)d (%(field)s): %(reason)s.") % {"n": n, "field": name, "reason": str(exc).rstrip(".")}
        ) from None
    if model_field is not None and model_field.choices and op in ("eq", "ne", "in"):
        allowed = {str(k) for k, _label in model_field.flatchoices}
        for candidate in value if op == "in" else [value]:
            if str(candidate) not in allowed:
                raise ValueError(
                    _("Condition %(n)d (%(field)s): %(value)s is not one of %(choices)s.")
                    % {"n": n, "field": name, "value": candidate, "choices": ", ".join(sorted(allowed))}
                )
    attname = model_field.attname if model_field is not None else name
    return Condition(field=name, attname=attname, op=op, value=value, model_field=model_field)


def compile_trigger(row: Mapping[str, Any]) -> CompiledTrigger:
    """Compile a trigger row (``SignalTrigger`` values) for matching; ``TriggerConfigError`` if it cannot."""
    signal = reg.registry.signals.get(row["signal"])
    if signal is None:
        raise TriggerConfigError(
            _("%(signal)s is not a registered signal.") % {"signal": row["signal"]}, field="signal"
        )
    model = row["model"] if signal.model_signal else ""
    if signal.model_signal and reg.registry.model_for(model) is None:
        raise TriggerConfigError(_("%(model)s is not a registered model.") % {"model": model}, field="model")
    fields = reg.subject_fields(signal=signal.key, model=model)
    try:
        conditions = tuple(compile_condition(i, raw, fields) for i, raw in enumerate(row.get("conditions") or []))
    except ValueError as exc:
        raise TriggerConfigError(str(exc), field="conditions") from None
    changed_field = row.get("changed_field") or ""
    changed_model_field, changed_attname, changed_to = None, "", None
    if changed_field:
        registered = reg.registry.model_for(model)
        if signal.key == reg.MODEL_M2M_CHANGED:
            if not registered or changed_field not in registered.m2m_fields:
                raise TriggerConfigError(
                    _("%(field)s is not a registered many-to-many field.") % {"field": changed_field},
                    field="changed_field",
                )
        elif signal.key == reg.MODEL_POST_SAVE:
            if changed_field not in fields:
                raise TriggerConfigError(
                    _("%(field)s is not a field you can watch here.") % {"field": changed_field}, field="changed_field"
                )
            changed_model_field = fields[changed_field]
            changed_attname = changed_model_field.attname if changed_model_field is not None else changed_field
            if row.get("changed_to", "") != "":
                try:
                    changed_to = coerce(changed_model_field, row["changed_to"])
                except ValueError as exc:
                    raise TriggerConfigError(
                        _("“Changes to” %(value)s is not a valid %(field)s: %(reason)s.")
                        % {"value": row["changed_to"], "field": changed_field, "reason": str(exc).rstrip(".")},
                        field="changed_to",
                    ) from None
        else:
            raise TriggerConfigError(
                _("“When field changes” applies to saves and many-to-many changes only."), field="changed_field"
            )
    return CompiledTrigger(
        id=row["id"],
        signal=signal.key,
        model=model,
        events=frozenset(row.get("events") or ()),
        changed_field=changed_field,
        changed_attname=changed_attname,
        changed_any=bool(changed_field) and row.get("changed_to", "") == "",
        changed_to=changed_to,
        changed_model_field=changed_model_field,
        conditions=conditions,
    )


def trigger_config_errors(
    *,
    signal: str,
    model: str,
    events: Any,
    changed_field: str,
    changed_to: str,
    conditions: Any,
    recipient_path: str,
    has_audience: bool,
    channels: Any,
    dedupe_window: datetime.timedelta | None,
) -> dict[str, list[str]]:
    """Everything wrong with a trigger's configuration, by form field; empty when it can be saved.

    Shared by the admin form and the services, so a trigger saved from anywhere is one the
    receivers can evaluate.
    """
    from ..models import Channel

    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    reg._builtin_signals()
    entry = reg.registry.signals.get(signal)
    if entry is None:
        add("signal", _("Choose a signal from the list."))
        return errors
    if entry.model_signal:
        if not model:
            add("model", _("This signal needs a model."))
        elif reg.registry.model_for(model) is None:
            add("model", _("%(model)s is not a model registered for triggers.") % {"model": model})
    elif model:
        add("model", _("Leave the model empty for this signal."))
    if not isinstance(events, list) or any(e not in entry.events for e in events):
        add("events", _("For this signal choose among: %(events)s.") % {"events": ", ".join(entry.events)})
    elif entry.model_signal and not events:
        add("events", _("Choose at least one event."))
    if changed_to and not changed_field:
        add("changed_to", _("Choose the field that changes first."))
    if errors:
        return errors
    fields = reg.subject_fields(signal=signal, model=model if entry.model_signal else "")
    if not isinstance(conditions, list):
        add("conditions", _('Conditions must be a list, e.g. [{"field": "total", "op": "gte", "value": 100}].'))
    else:
        for index, raw in enumerate(conditions):
            try:
                compile_condition(index, raw, fields)
            except ValueError as exc:
                add("conditions", str(exc))
    if changed_field:
        try:
            compile_trigger({"id": 0, "signal": signal, "model": model, "events": events, "conditions": [],
                             "changed_field": changed_field, "changed_to": changed_to})
        except TriggerConfigError as exc:
            add(exc.field or "changed_field", str(exc))
    if recipient_path and has_audience:
        add("recipient_path", _("Choose recipients by path or by audience, not both."))
    elif not recipient_path and not has_audience:
        add("recipient_path", _("Choose who gets the message: a recipient path or an audience."))
    elif recipient_path:
        offered = reg.subject_recipient_paths(signal=signal, model=model)
        if recipient_path not in offered:
            add("recipient_path", _("Choose one of the offered paths: %(paths)s.")
                % {"paths": ", ".join(offered) or "—"})
    if not isinstance(channels, list) or not channels:
        add("channels", _("Choose at least one channel."))
    elif set(channels) - set(Channel.values):
        unknown = ", ".join(sorted(set(channels) - set(Channel.values)))
        add("channels", _("Unknown channel: %(channels)s.") % {"channels": unknown})
    if dedupe_window is not None and dedupe_window < datetime.timedelta(0):
        add("dedupe_window", _("The dedupe window cannot be negative."))
    return errors
