"""The builder's editors for what is not a step: the entry with its re-entry policy, the goals and
the exit conditions (``JourneyBuilderMixin`` includes the views).

Each is a small form whose choices come from the trigger registry and are narrowed on the server:
choosing another kind of entry, signal or model re-draws the form (an htmx GET with its values),
so no script is needed. Saving builds the JSON the journey stores (the same format the "advanced"
JSON editor takes), checks it with the same functions publishing uses (``entry_problems``, the
graph's goal and exit checks) and shows their sentences on the form, then saves through
``journey_save`` (audited, ``journey.edit``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from ..journeys.entry import entry_problems
from ..journeys.graph import model_rule_problems
from ..journeys.services import journey_save
from ..models import Audience, Campaign, Journey
from ..triggers import registry as reg
from .trigger_form import EMPTY, ConditionRowsField, ConditionRowsWidget, _row_text, conditions_from_rows

USER_MODEL = "user"
RULE_LISTS = ("goals", "exits")


class JourneyConditionRowsWidget(ConditionRowsWidget):
    """The trigger form's condition rows without its script: the saved rows plus an empty one
    (a row whose field is emptied is dropped on save)."""

    template_name = "notifications/admin/_journey_condition_rows.html"


def _conditions_field() -> ConditionRowsField:
    return ConditionRowsField(label=_("Conditions"), required=False, widget=JourneyConditionRowsWidget,
                              help_text=_("All must hold. For “is one of”, separate values with commas. "
                                          "Empty a row's field to remove it."))


def _registered(label: str):
    if label == USER_MODEL:
        return reg.ensure_user_model()
    return reg.registry.model_for(label) if label else None


def _field_choices(registered, *, only=None) -> list:
    if registered is None:
        return []
    return [(name, name) for name in registered.fields if only is None or isinstance(registered.field(name), only)]


class _Redrawn(forms.Form):
    """A form re-drawn when its ``SWITCHES`` change; ``SHOWN`` names the fields each kind uses."""

    SWITCHES: tuple[str, ...] = ()

    def value(self, name: str) -> str:
        if self.is_bound:
            return str(self.data.get(name) or "")
        return str(self.initial.get(name) or "")

    def shown(self) -> list:
        return [self[name] for name in self.fields]

    def redraw(self, url: str) -> None:
        for name in self.SWITCHES:
            self.fields[name].widget.attrs.update({
                "hx-get": url, "hx-trigger": "change", "hx-include": "closest form", "hx-target": "#flow",
                "hx-swap": "outerHTML", "hx-vals": '{"redraw": "1"}', "hx-sync": "closest form:replace",
                "data-testid": f"switch-{name}",
            })


class EntryForm(_Redrawn):
    SWITCHES = ("kind", "signal", "model", "date_model")
    KINDS = [("code", _("From code (journeys.enter)")), ("signal", _("When something happens (a signal)")),
             ("audience", _("When a person starts matching an audience")),
             ("date", _("Some days before or after a date")), ("campaign", _("The people a campaign reached"))]
    SHOWN = {
        "code": (), "signal": ("signal", "model", "events", "changed_field", "changed_to", "conditions",
                               "recipient_path"),
        "audience": ("audience",), "date": ("date_model", "date_field", "offset_days", "yearly",
                                            "date_recipient_path"),
        "campaign": ("campaign",),
    }

    kind = forms.ChoiceField(label=_("People enter"), choices=KINDS, widget=UnfoldAdminSelectWidget)
    signal = forms.ChoiceField(label=_("Signal"), required=False, widget=UnfoldAdminSelectWidget)
    model = forms.ChoiceField(label=_("Model"), required=False, widget=UnfoldAdminSelectWidget)
    events = forms.MultipleChoiceField(label=_("Events"), required=False, choices=list(reg.EVENT_LABELS.items()),
                                       widget=UnfoldAdminCheckboxSelectMultipleWidget)
    changed_field = forms.ChoiceField(label=_("Field that changes"), required=False, widget=UnfoldAdminSelectWidget)
    changed_to = forms.CharField(label=_("Changes to"), required=False, max_length=200,
                                 widget=UnfoldAdminTextInputWidget(attrs={"placeholder": _("any value")}))
    conditions = _conditions_field()
    recipient_path = forms.ChoiceField(label=_("The person who enters"), required=False,
                                       widget=UnfoldAdminSelectWidget)
    audience = forms.ModelChoiceField(label=_("Audience"), required=False, queryset=Audience.objects.order_by("name"),
                                      widget=UnfoldAdminSelectWidget)
    date_model = forms.ChoiceField(label=_("Date of"), required=False, widget=UnfoldAdminSelectWidget)
    date_field = forms.ChoiceField(label=_("Date field"), required=False, widget=UnfoldAdminSelectWidget)
    offset_days = forms.IntegerField(label=_("Days after it (negative: before)"), required=False, min_value=-3650,
                                     max_value=3650, widget=UnfoldAdminIntegerFieldWidget)
    yearly = forms.BooleanField(label=_("Every year, on its anniversary (a birthday)"), required=False,
                                widget=UnfoldBooleanSwitchWidget)
    date_recipient_path = forms.ChoiceField(label=_("The person who enters"), required=False,
                                            widget=UnfoldAdminSelectWidget)
    campaign = forms.ModelChoiceField(label=_("Campaign"), required=False, queryset=Campaign.objects.order_by("name"),
                                      widget=UnfoldAdminSelectWidget)
    reentry = forms.ChoiceField(label=_("Re-entry"), choices=Journey.Reentry.choices, widget=UnfoldAdminSelectWidget)
    reentry_days = forms.IntegerField(label=_("Re-entry after (days)"), required=False, min_value=1, max_value=3650,
                                      widget=UnfoldAdminIntegerFieldWidget, help_text=_("For “once per N days”."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["signal"].choices = EMPTY + reg.signal_choices()
        self.fields["model"].choices = EMPTY + reg.model_choices()
        signal, model = self.value("signal"), self.value("model")
        fields = [(name, name) for name in reg.subject_fields(signal=signal, model=model)] if signal else []
        self.fields["changed_field"].choices = EMPTY + fields
        self.fields["conditions"].widget.field_choices = EMPTY + fields
        paths = reg.subject_recipient_paths(signal=signal, model=model) if signal else ()
        self.fields["recipient_path"].choices = EMPTY + [(p, p) for p in paths]
        self.fields["date_model"].choices = [(USER_MODEL, _("the person (user)")), *reg.model_choices()]
        dated = _registered(self.value("date_model") or USER_MODEL)
        self.fields["date_field"].choices = EMPTY + _field_choices(dated, only=(models.DateField, models.DateTimeField))
        self.fields["date_recipient_path"].choices = EMPTY + [(p, p) for p in (dated.recipient_paths if dated else ())]

    def shown(self) -> list:
        kind = self.value("kind") if self.value("kind") in self.SHOWN else "code"
        names = ("kind", *self.SHOWN[kind], "reentry", "reentry_days")
        return [self[name] for name in names]

    @classmethod
    def initial_from(cls, journey: Journey) -> dict[str, Any]:
        entry = journey.entry if isinstance(journey.entry, dict) else {"kind": "code"}
        kind = entry.get("kind") if entry.get("kind") in cls.SHOWN else "code"
        initial: dict[str, Any] = {"kind": kind, "reentry": journey.reentry, "reentry_days": journey.reentry_days}
        if kind == "signal":
            initial.update({name: entry.get(name) for name in ("signal", "model", "events", "changed_field",
                                                               "changed_to", "conditions", "recipient_path")})
            initial["changed_to"] = _row_text(entry.get("changed_to"))
        elif kind == "audience":
            initial["audience"] = entry.get("audience")
        elif kind == "campaign":
            initial["campaign"] = entry.get("campaign")
        elif kind == "date":
            initial.update({"date_model": entry.get("model") or USER_MODEL, "date_field": entry.get("field"),
                            "offset_days": entry.get("offset_days"), "yearly": bool(entry.get("yearly")),
                            "date_recipient_path": entry.get("recipient_path") or ""})
        return initial

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        kind = data.get("kind")
        if kind == "signal":
            fields = reg.subject_fields(signal=data.get("signal", ""), model=data.get("model", ""))
            data["conditions"] = conditions_from_rows(data.get("conditions"), fields)
        entry = self.as_entry(data)
        for problem in entry_problems(entry, reentry=data.get("reentry")):
            self.add_error(None, problem)
        if data.get("reentry") == Journey.Reentry.PER_PERIOD and not data.get("reentry_days"):
            self.add_error("reentry_days", _("“Once per N days” needs the number of days."))
        data["entry"] = entry
        return data

    @staticmethod
    def as_entry(data: dict) -> dict:
        kind = data.get("kind")
        if kind == "signal":
            entry = {"kind": "signal", "signal": data.get("signal", ""), "model": data.get("model", ""),
                     "events": list(data.get("events") or []), "conditions": data.get("conditions") or [],
                     "recipient_path": data.get("recipient_path", "")}
            if data.get("changed_field"):
                entry.update({"changed_field": data["changed_field"], "changed_to": data.get("changed_to", "")})
            return entry
        if kind == "audience":
            return {"kind": "audience", "audience": data["audience"].pk if data.get("audience") else None}
        if kind == "campaign":
            return {"kind": "campaign", "campaign": data["campaign"].pk if data.get("campaign") else None}
        if kind == "date":
            entry = {"kind": "date", "model": data.get("date_model") or USER_MODEL, "field": data.get("date_field", ""),
                     "offset_days": data.get("offset_days") or 0}
            if data.get("date_recipient_path"):
                entry["recipient_path"] = data["date_recipient_path"]
            if data.get("yearly"):
                entry["yearly"] = True
            return entry
        return {"kind": "code"}


class RuleForm(_Redrawn):
    """A goal, or an exit condition (opted out of the category, or a model condition)."""

    SWITCHES = ("kind", "model")
    KINDS = [("condition", _("When a record matching conditions is saved")),
             ("opted_out", _("When they opt out of the journey's category"))]

    kind = forms.ChoiceField(label=_("Exit"), choices=KINDS, required=False, widget=UnfoldAdminSelectWidget)
    name = forms.CharField(label=_("Goal name"), required=False, max_length=60, widget=UnfoldAdminTextInputWidget)
    model = forms.ChoiceField(label=_("Model"), required=False, widget=UnfoldAdminSelectWidget)
    recipient_path = forms.ChoiceField(label=_("Whose it is"), required=False, widget=UnfoldAdminSelectWidget)
    conditions = _conditions_field()
    since_field = forms.ChoiceField(
        label=_("Also checked at each step: its date field"), required=False, widget=UnfoldAdminSelectWidget,
        help_text=_("Optional: a date of the record after which it counts (e.g. paid_at), so a save before "
                    "the journey's tick is not missed."))

    def __init__(self, *args, rule_list: str = "goals", **kwargs):
        super().__init__(*args, **kwargs)
        self.rule_list = rule_list
        self.fields["model"].choices = EMPTY + reg.model_choices()
        registered = _registered(self.value("model"))
        fields = _field_choices(registered)
        self.fields["conditions"].widget.field_choices = EMPTY + fields
        self.fields["recipient_path"].choices = EMPTY + [(p, p) for p in (registered.recipient_paths
                                                                          if registered else ())]
        self.fields["since_field"].choices = EMPTY + _field_choices(registered,
                                                                    only=(models.DateField, models.DateTimeField))

    def shown(self) -> list:
        names: tuple[str, ...] = ("model", "recipient_path", "conditions", "since_field")
        if self.rule_list == "goals":
            names = ("name", *names)
        elif self.value("kind") == "opted_out":
            names = ("kind",)
        else:
            names = ("kind", *names)
        return [self[name] for name in names]

    @classmethod
    def initial_from(cls, rule: dict) -> dict[str, Any]:
        return {"kind": rule.get("kind") or "condition", "name": rule.get("name", ""), "model": rule.get("model", ""),
                "recipient_path": rule.get("recipient_path", ""), "conditions": rule.get("conditions") or [],
                "since_field": rule.get("since_field", "")}

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        rule = self.as_rule(data)
        label = _("Goal") if self.rule_list == "goals" else _("Exit condition")
        if rule.get("kind") != "opted_out":
            for problem in model_rule_problems(rule, label=str(label)):
                self.add_error(None, problem)
        data["rule"] = rule
        return data

    def as_rule(self, data: dict) -> dict:
        if self.rule_list == "exits" and data.get("kind") == "opted_out":
            return {"kind": "opted_out"}
        registered = _registered(data.get("model", ""))
        fields = {n: registered.field(n) for n in registered.fields} if registered else {}
        rule: dict[str, Any] = {
            "model": data.get("model", ""), "recipient_path": data.get("recipient_path", ""),
            "conditions": conditions_from_rows(data.get("conditions"), fields),
        }
        if data.get("since_field"):
            rule["since_field"] = data["since_field"]
        if self.rule_list == "goals":
            rule = {"name": (data.get("name") or "").strip() or data.get("model", ""), **rule}
        else:
            rule = {"kind": "condition", **rule}
        return rule


def rule_words(rule: Any, *, exit_rule: bool) -> str:
    """One sentence for a goal's or exit condition's card."""
    from ..triggers.conditions import OPS

    if not isinstance(rule, dict):
        return str(_("(not readable: edit it as JSON)"))
    if rule.get("kind") == "opted_out":
        return str(_("They opt out of the journey's category"))
    conditions = " · ".join(f"{c.get('field')} {OPS.get(c.get('op'), c.get('op'))} {_row_text(c.get('value'))}"
                            for c in rule.get("conditions") or [] if isinstance(c, dict))
    words = _("A %(model)s of theirs (%(path)s) is saved") % {"model": rule.get("model") or "?",
                                                               "path": rule.get("recipient_path") or "—"}
    if conditions:
        words += " " + _("with %(conditions)s") % {"conditions": conditions}
    if not exit_rule and rule.get("name"):
        words = f"{rule['name']}: {words}"
    return str(words)


def reentry_words(journey: Journey) -> str:
    return str(_("Re-entry: %(policy)s") % {"policy": journey.reentry_label})


class JourneyEntryEditorMixin:
    """Views of the entry, goal and exit editors; part of ``JourneyBuilderMixin``."""

    def entry_editor_urls(self) -> list:
        from django.urls import path

        view = self.admin_site.admin_view
        return [
            path("<int:pk>/builder/entry/", view(self.builder_entry_view), name="notifications_journey_builder_entry"),
            path("<int:pk>/builder/rule/", view(self.builder_rule_view), name="notifications_journey_builder_rule"),
            path("<int:pk>/builder/rule/delete/", view(self.builder_rule_delete_view),
                 name="notifications_journey_builder_rule_delete"),
        ]

    @staticmethod
    def _saved(request: HttpRequest, journey: Journey, form: forms.Form) -> bool:
        """Save the edited journey (``journey_save``). Refused: the refusal goes on the form and
        ``journey`` is reloaded as stored, so the flow beside the form shows what was kept."""
        try:
            journey_save(journey=journey, actor=request.user)
        except ValidationError as error:
            journey.refresh_from_db()
            form.add_error(None, "; ".join(error.messages))
            return False
        return True

    def _form_editor(self, form: _Redrawn, *, url: str, title: str, hidden: dict, quiet: bool) -> dict:
        form.redraw(url)
        return {"form": form, "fields": form.shown(), "url": url, "title": title, "hidden": hidden, "quiet": quiet}

    def builder_entry_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the entry and re-entry form (``redraw``: with the values it was given); POST: save it."""
        journey = self._journey(request, pk)
        self._require_edit(request, journey)
        url = reverse("admin:notifications_journey_builder_entry", args=[journey.pk])
        title = str(_("How people enter"))
        if request.method != "POST":
            form = EntryForm(request.GET) if request.GET.get("redraw") else EntryForm(
                initial=EntryForm.initial_from(journey))
            return self._render_flow(request, journey, form_editor=self._form_editor(
                form, url=url, title=title, hidden={}, quiet=True))
        form = EntryForm(request.POST)
        if form.is_valid():
            journey.entry = form.cleaned_data["entry"]
            journey.reentry = form.cleaned_data["reentry"]
            journey.reentry_days = form.cleaned_data.get("reentry_days")
            if self._saved(request, journey, form):
                return self._render_flow(request, journey, changed="entry")
        return self._render_flow(request, journey, form_editor=self._form_editor(
            form, url=url, title=title, hidden={}, quiet=False))

    def _rule_target(self, journey: Journey, data) -> tuple[str, int | None, dict | None]:
        rule_list = data.get("list", "")
        if rule_list not in RULE_LISTS:
            raise ValidationError(_("Choose goals or exit conditions."))
        graph = journey.graph if isinstance(journey.graph, dict) else {}
        rules = graph.get(rule_list) if isinstance(graph.get(rule_list), list) else []
        raw = data.get("index", "")
        if raw in ("", None):
            return rule_list, None, None
        try:
            index = int(raw)
        except ValueError:
            index = -1
        if not 0 <= index < len(rules):
            raise ValidationError(_("That goal or exit condition no longer exists."))
        return rule_list, index, rules[index] if isinstance(rules[index], dict) else {}

    def builder_rule_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the form for a new or existing goal / exit condition (``list``, ``index``); POST: save it."""
        journey = self._journey(request, pk)
        self._require_edit(request, journey)
        data = request.POST if request.method == "POST" else request.GET
        try:
            rule_list, index, existing = self._rule_target(journey, data)
        except ValidationError as error:
            return self._render_flow(request, journey, edit_error=error.messages[0])
        url = reverse("admin:notifications_journey_builder_rule", args=[journey.pk])
        hidden = {"list": rule_list, "index": "" if index is None else index}
        if rule_list == "goals":
            title = str(_("Edit goal %(n)d") % {"n": index + 1} if index is not None else _("New goal"))
        else:
            title = str(_("Edit exit condition %(n)d") % {"n": index + 1} if index is not None
                        else _("New exit condition"))
        if request.method != "POST":
            if request.GET.get("redraw"):
                form = RuleForm(request.GET, rule_list=rule_list)
            else:
                form = RuleForm(initial=RuleForm.initial_from(existing or {}), rule_list=rule_list)
            return self._render_flow(request, journey, form_editor=self._form_editor(
                form, url=url, title=title, hidden=hidden, quiet=True))
        form = RuleForm(request.POST, rule_list=rule_list)
        if form.is_valid():
            graph = dict(journey.graph if isinstance(journey.graph, dict) else {})
            rules = list(graph.get(rule_list) or [])
            if index is None:
                rules.append(form.cleaned_data["rule"])
            else:
                rules[index] = form.cleaned_data["rule"]
            graph[rule_list] = rules
            journey.graph = graph
            if self._saved(request, journey, form):
                return self._render_flow(request, journey, changed=rule_list)
        return self._render_flow(request, journey, form_editor=self._form_editor(
            form, url=url, title=title, hidden=hidden, quiet=False))

    def builder_rule_delete_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        journey = self._journey(request, pk)
        self._require_edit(request, journey)
        try:
            rule_list, index, _existing = self._rule_target(journey, request.POST)
            if index is None:
                raise ValidationError(_("That goal or exit condition no longer exists."))
        except ValidationError as error:
            return self._render_flow(request, journey, edit_error=error.messages[0])
        graph = dict(journey.graph)
        graph[rule_list] = [rule for i, rule in enumerate(graph.get(rule_list) or []) if i != index]
        journey.graph = graph
        try:
            journey_save(journey=journey, actor=request.user)
        except ValidationError as error:  # e.g. its audience was deleted since: say so, keep the rule
            journey.refresh_from_db()
            return self._render_flow(request, journey, edit_error="; ".join(error.messages))
        return self._render_flow(request, journey)
