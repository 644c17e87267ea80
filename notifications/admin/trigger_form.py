"""The trigger form, laid out as a sentence: When *Order* is *updated* and *status* changes to
*paid*, send *template* to *customer.user* by *in-app, email*.

Every choice comes from the trigger registry. The page carries the registry as JSON (``schema``)
and a small script (``static/signalbox/trigger_builder.js``) narrows the field, condition and
recipient lists to the chosen model as it changes; the server narrows them the same way when it
renders, and validates everything (``trigger_config_errors``), so the script only offers.

Conditions are rows of field / operator / value (like audience rules), posted as
``conditions-<n>-field|op|value`` and turned here into the stored JSON list; a bad row is a form
error on "Conditions", never a 500 and never a JSON box.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    BASE_CLASSES,
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
)

from ..jsonsafe import json_loads_safe
from ..models import Channel, SignalTrigger
from ..triggers import registry as reg
from ..triggers.conditions import OPS, trigger_config_errors
from ..triggers.services import trigger_approval

EMPTY = [("", "—")]
MAX_CONDITION_ROWS = 20
ROW_KEY = re.compile(r"^conditions-(\d+)-(field|op|value)$")


def subject_key(signal: str, model: str) -> str:
    """What a trigger's fields and recipients come from: a model label, or ``signal:<key>``."""
    entry = reg.registry.signals.get(signal)
    if entry is None:
        return ""
    if entry.user_signal:
        return reg.model_label(get_user_model())
    if entry.model_signal:
        return model
    return f"signal:{signal}"


def _field_label(name: str, model_field: models.Field | None) -> str:
    if model_field is None:
        return name
    return str(capfirst(model_field.verbose_name))


def _subject(fields: dict[str, models.Field | None], m2m: tuple[str, ...], paths: tuple[str, ...],
             model: type[models.Model] | None) -> dict[str, Any]:
    def described(name: str, model_field: models.Field | None) -> dict[str, Any]:
        choices = [[str(k), str(v)] for k, v in (model_field.flatchoices if model_field is not None
                                                   and model_field.choices else [])]
        if isinstance(model_field, models.BooleanField):
            choices = [["true", str(_("yes"))], ["false", str(_("no"))]]
        return {"name": name, "label": _field_label(name, model_field), "choices": choices}

    m2m_fields = [described(n, model._meta.get_field(n)) for n in m2m] if model is not None else []
    return {"fields": [described(n, f) for n, f in fields.items()], "m2m": m2m_fields, "paths": list(paths)}


def builder_schema() -> dict[str, Any]:
    """The registry as the script needs it: per signal its events and subject, per subject its
    fields (with choices), many-to-many fields and recipient paths."""
    reg._builtin_signals()
    signals, subjects = {}, {}
    for label, entry in reg.registry.models.items():
        subjects[label] = _subject({n: entry.field(n) for n in entry.fields}, entry.m2m_fields,
                                   entry.recipient_paths, entry.model)
    for key, entry in reg.registry.signals.items():
        signals[key] = {"events": list(entry.events), "model_signal": entry.model_signal,
                        "m2m": key == reg.MODEL_M2M_CHANGED, "watch": key in (reg.MODEL_POST_SAVE,
                                                                               reg.MODEL_M2M_CHANGED)}
        if not entry.model_signal:
            subject = subject_key(key, "")
            signals[key]["subject"] = subject
            if not entry.user_signal:
                subjects[subject] = _subject({n: None for n in entry.provides}, (), entry.recipient_paths, None)
    return {"signals": signals, "subjects": subjects}


def _grouped_fields(key: str, *, m2m: bool = False) -> list:
    subject = builder_schema()["subjects"].get(key)
    if subject is None:
        return []
    return [(f["name"], f["label"]) for f in subject["m2m" if m2m else "fields"]]


# --- Conditions as rows ---------------------------------------------------------------------------

def _row_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_row_text(v) for v in value)
    return "" if value is None else str(value)


def _scalar(model_field: models.Field | None, text: str) -> Any:
    """Row text as the JSON value it means for the field; left as text when it does not parse
    (the condition compiler then says what is wrong with it)."""
    try:
        if isinstance(model_field, models.BooleanField):
            lowered = text.strip().lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
        elif isinstance(model_field, (models.IntegerField, models.AutoField)) or (
            model_field is not None and model_field.is_relation
        ):
            return int(text)
        elif isinstance(model_field, models.FloatField):
            return float(text)
    except ValueError:
        pass
    return text


def condition_from_row(row: dict[str, str], fields: dict[str, models.Field | None]) -> dict[str, Any]:
    """One posted row as a stored condition ``{"field", "op", "value"}``."""
    model_field = fields.get(row["field"])
    op, text = row["op"], row["value"].strip()
    if op == "is_empty":
        value: Any = _scalar(models.BooleanField(), text or "true")
    elif op == "in":
        value = [_scalar(model_field, part.strip()) for part in text.split(",") if part.strip()]
    else:
        value = _scalar(model_field, text)
    return {"field": row["field"], "op": op, "value": value}


def conditions_from_rows(conditions: Any, fields: dict[str, models.Field | None]) -> list:
    """A ``ConditionRowsField``'s value as stored conditions: posted rows converted
    (``condition_from_row``), conditions already in the stored shape (a JSON list) kept."""
    return [condition_from_row(c["row"], fields) if isinstance(c, dict) and "row" in c else c
            for c in conditions or []]


class ConditionRowsWidget(forms.Widget):
    """Field / operator / value rows, plus one empty row to add to (the script adds more)."""

    template_name = "notifications/admin/trigger_condition_rows.html"

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.field_choices: list = []

    def value_from_datadict(self, data, files, name):
        rows: dict[int, dict[str, str]] = {}
        for key in data:
            match = ROW_KEY.match(key)
            if match:
                rows.setdefault(int(match.group(1)), {"field": "", "op": "", "value": ""})[match.group(2)] = data.get(key)
        if rows:
            return [rows[i] for i in sorted(rows)]
        return data.get(name)  # the stored JSON list, as code and older forms post it

    def value_omitted_from_data(self, data, files, name):
        return False

    def render(self, name, value, attrs=None, renderer=None):
        if isinstance(value, str):
            try:
                value = json_loads_safe(value)
            except (ValueError, TypeError):
                value = []
        rows = []
        for item in value if isinstance(value, list) else []:
            if isinstance(item, dict):
                rows.append({"field": str(item.get("field") or ""), "op": str(item.get("op") or "eq"),
                             "value": _row_text(item.get("value"))})
        rows.append({"field": "", "op": "eq", "value": ""})
        select = " ".join([*BASE_CLASSES, "px-3", "py-2", "pr-8!"])
        return mark_safe(render_to_string(self.template_name, {
            "name": name, "rows": rows, "field_choices": self.field_choices,
            "ops": [(key, str(label)) for key, label in OPS.items()],
            "select_class": select, "input_class": " ".join([*BASE_CLASSES, "px-3", "py-2"]),
        }))


class ConditionRowsField(forms.Field):
    """Posted rows (or a JSON list) -> a list of condition dicts, checked later against the model."""

    widget = ConditionRowsWidget

    def to_python(self, value):
        if value in (None, "", []):
            return []
        if isinstance(value, str):
            try:
                value = json_loads_safe(value)
            except (ValueError, TypeError) as exc:
                raise ValidationError(_("These conditions could not be read: %(reason)s") % {"reason": exc},
                                      code="invalid") from None
            if value is None:
                return []
            if not isinstance(value, list):
                raise ValidationError(_("Conditions must be a list of rows."), code="invalid")
            return value
        rows = [row for row in value if row.get("field") or str(row.get("value") or "").strip()]
        if len(rows) > MAX_CONDITION_ROWS:
            raise ValidationError(_("At most %(max)d conditions.") % {"max": MAX_CONDITION_ROWS}, code="max")
        for n, row in enumerate(rows, start=1):
            if not row.get("field"):
                raise ValidationError(_("Condition %(n)d: choose a field.") % {"n": n}, code="field")
            if row.get("op") not in OPS:
                raise ValidationError(_("Condition %(n)d: choose an operator.") % {"n": n}, code="op")
        return [{"row": row} for row in rows]


# --- The form -------------------------------------------------------------------------------------

def _select(**attrs):
    return UnfoldAdminSelectWidget(attrs=attrs)


class SignalTriggerForm(forms.ModelForm):
    """The trigger form. Cross-field rules live in ``trigger_config_errors``, shared with the services."""

    signal = forms.ChoiceField(
        label=_("Signal"), choices=lambda: EMPTY + reg.signal_choices(),
        widget=_select(**{"data-trigger": "signal"}),
    )
    model = forms.ChoiceField(
        label=_("Model"), choices=lambda: EMPTY + reg.model_choices(), required=False,
        widget=_select(**{"data-trigger": "model"}),
        help_text=_("For model signals: the model whose saves, deletes or relations you watch."),
    )
    events = forms.MultipleChoiceField(
        label=_("Events"), choices=list(reg.EVENT_LABELS.items()), required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget(attrs={"data-trigger": "events"}),
    )
    changed_field = forms.CharField(
        label=_("Field that changes"), required=False, widget=_select(**{"data-trigger": "changed_field"}),
        help_text=_("Fire only when this field changes (to the value after it, or to anything if that is empty)."),
    )
    changed_to = forms.CharField(
        label=_("Changes to"), required=False, max_length=200,
        widget=UnfoldAdminTextInputWidget(attrs={"data-trigger": "changed_to", "list": "sb-trigger-values",
                                                 "placeholder": _("any value")}),
    )
    conditions = ConditionRowsField(label=_("Conditions"), required=False)
    recipient_path = forms.CharField(
        label=_("Recipients"), required=False, widget=_select(**{"data-trigger": "recipient_path"}),
        help_text=_("Who gets the message, starting from the instance; or choose an audience instead."),
    )
    channels = forms.MultipleChoiceField(
        label=_("Channels"), choices=Channel.choices,
        widget=UnfoldAdminCheckboxSelectMultipleWidget(attrs={"data-trigger": "channels"}),
    )
    max_recipients = forms.IntegerField(
        label=_("Most recipients per event"), required=False, min_value=1,
        help_text=_("An event that would reach more people than this is held, not sent. "
                    "Above the approval threshold, a Manager must approve the trigger."),
    )

    class Meta:
        model = SignalTrigger
        fields = [
            "name", "is_active", "signal", "model", "events", "changed_field", "changed_to", "conditions",
            "recipient_path", "audience", "max_recipients", "template", "category", "channels", "dedupe_window",
        ]
        labels = {
            "name": _("Name"), "is_active": _("Active"), "audience": _("Audience"), "template": _("Template"),
            "category": _("Category"), "dedupe_window": _("Dedupe window"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        signal = self._current("signal")
        model = self._current("model")
        key = subject_key(signal, model)
        m2m = signal == reg.MODEL_M2M_CHANGED
        fields = _grouped_fields(key)
        self.fields["changed_field"].widget.choices = EMPTY + (_grouped_fields(key, m2m=True) if m2m else fields)
        self.fields["conditions"].widget.field_choices = EMPTY + fields
        paths = builder_schema()["subjects"].get(key, {}).get("paths", [])
        self.fields["recipient_path"].widget.choices = EMPTY + [(p, p) for p in paths]
        self.fields["conditions"].help_text = _("All must hold. For “is one of”, separate values with commas.")
        self.subject = key

    def _current(self, name: str) -> str:
        if self.is_bound:
            return str(self.data.get(self.add_prefix(name)) or "")
        value = self.initial.get(name, getattr(self.instance, name, ""))
        return str(value or "")

    def clean_max_recipients(self):
        value = self.cleaned_data.get("max_recipients")
        return value or SignalTrigger._meta.get_field("max_recipients").get_default()

    def clean(self):
        cleaned = super().clean()
        signal, model = cleaned.get("signal", ""), cleaned.get("model", "")
        entry = reg.registry.signals.get(signal)
        fields = reg.subject_fields(signal=signal, model=model if entry and entry.model_signal else "")
        conditions = cleaned.get("conditions")
        if isinstance(conditions, list):
            cleaned["conditions"] = conditions_from_rows(conditions, fields)
        needed = ("signal", "model", "events", "changed_field", "changed_to", "conditions", "recipient_path",
                  "channels", "dedupe_window")
        if any(name in self.errors for name in needed):
            return cleaned  # the field's own error says what to fix first
        errors = trigger_config_errors(
            signal=signal,
            model=model,
            events=list(cleaned.get("events") or []),
            changed_field=cleaned.get("changed_field", ""),
            changed_to=cleaned.get("changed_to", ""),
            conditions=cleaned.get("conditions", []),
            recipient_path=cleaned.get("recipient_path", ""),
            has_audience=cleaned.get("audience") is not None,
            channels=list(cleaned.get("channels") or []),
            dedupe_window=cleaned.get("dedupe_window"),
        )
        for name, field_errors in errors.items():
            for message in field_errors:
                self.add_error(name if name in self.fields else None, message)
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        # An active trigger that can reach more people than the approval threshold needs a
        # Manager's approval of exactly this configuration: said here, on the form.
        if not self.errors and self.instance.is_active:
            approval = trigger_approval(trigger=self.instance)
            if approval.needed:
                self.add_error("is_active", approval.reason + " " + str(
                    _("Save it inactive; once a Manager has approved it, enable it.")))


def draft_trigger(data, *, instance: SignalTrigger | None = None) -> SignalTrigger:
    """The trigger as the form describes it so far, for the live overlap check (never saved).

    Read leniently: a half-filled form still says enough to find the triggers it would duplicate.
    """
    form = SignalTriggerForm(data, instance=instance)
    form.is_valid()
    cleaned = form.cleaned_data
    draft = SignalTrigger(pk=instance.pk if instance else None)
    draft.signal = str(data.get("signal") or "")
    draft.model = str(data.get("model") or "")
    draft.events = [e for e in data.getlist("events") if e in SignalTrigger.Event.values] if hasattr(
        data, "getlist") else list(data.get("events") or [])
    draft.changed_field = str(data.get("changed_field") or "")
    draft.changed_to = str(data.get("changed_to") or "")
    draft.recipient_path = str(data.get("recipient_path") or "")
    draft.audience_id = cleaned["audience"].pk if cleaned.get("audience") else None
    draft.template_id = cleaned["template"].pk if cleaned.get("template") else None
    conditions = cleaned.get("conditions")
    draft.conditions = conditions if isinstance(conditions, list) and all(
        isinstance(c, dict) and "row" not in c for c in conditions) else []
    return draft
