"""The journey builder: the draft graph as a vertical flow of cards, edited with htmx.

Every edit (add a step below a card or on an arm, edit a card, delete one) is a POST that applies
one change to the draft JSON (``journeys.builder``), saves it through ``journey_save`` (audited,
``journey.edit``) and re-renders the flow with ``graph_problems`` shown on the cards they concern.
"Publish" goes through ``journey_publish`` (``journey.publish``), which refuses a draft with
problems whatever the page showed. The simulate panel and the counters only read. The raw JSON
stays on the journey's change page (the "advanced" editor).
"""

from __future__ import annotations

import json
import math

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from accounts.roles import allows

from ..journeys.builder import (
    MAX_ARMS,
    GraphEditError,
    Slot,
    dom_id,
    entry_words,
    flow,
    send_step_ids,
    step_delete,
    step_insert,
    step_update,
)
from ..journeys.graph import RECEIPT_EVENTS, STEP_ID, parse_time_of_day, steps_by_id
from ..journeys.selectors import journey_card_counts
from ..journeys.approvals import journey_publish_or_ask
from .journey_entry_editor import JourneyEntryEditorMixin, reentry_words, rule_words
from ..journeys.services import journey_problems, journey_save
from ..journeys.simulate import journey_simulate
from ..models import Category, Channel, Journey, MessageTemplate
from ..triggers.conditions import OPS

PAGE = "notifications/admin/journey_builder.html"
KINDS = {"send": _("Send a message"), "wait": _("Wait"), "branch": _("Branch (yes / no)"),
         "split": _("A/B split"), "exit": _("Exit")}
COUNTER_SECONDS = 5
SEARCH_LIMIT = 8


# --- One small form per kind of step --------------------------------------------------------------

class SendStepForm(forms.Form):
    template = forms.ChoiceField(label=_("Template"), widget=UnfoldAdminSelectWidget)
    channels = forms.MultipleChoiceField(label=_("Channels, in order"), choices=Channel.choices,
                                         widget=UnfoldAdminCheckboxSelectMultipleWidget)
    fallback = forms.BooleanField(label=_("Only the first channel that reaches them"), required=False,
                                  widget=UnfoldBooleanSwitchWidget)
    category = forms.ChoiceField(label=_("Category"), required=False, widget=UnfoldAdminSelectWidget,
                                 help_text=_("Empty: the journey's category."))

    def __init__(self, *args, graph=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [("", "—"), *MessageTemplate.objects.order_by("name").values_list("key", "name")]
        self.fields["category"].choices = [("", "—"), *Category.objects.order_by("name").values_list("key", "name")]

    def as_step(self) -> dict:
        data = self.cleaned_data
        step = {"type": "send", "template": data["template"], "channels": list(data["channels"])}
        if data["fallback"]:
            step["fallback"] = True
        if data["category"]:
            step["category"] = data["category"]
        return step

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        return {"template": step.get("template"), "channels": step.get("channels") or [],
                "fallback": bool(step.get("fallback")), "category": step.get("category") or ""}


class WaitStepForm(forms.Form):
    # The fields each way of waiting uses (the others are hidden; choosing another re-draws the form).
    SWITCH = "mode"
    SHOWN = {"duration": ("mode", "days", "hours", "minutes"), "time": ("mode", "until_time"),
             "date": ("mode", "until_field", "offset_days")}
    MODES = [("duration", _("For a while")), ("time", _("Until a time of day (their zone)")),
             ("date", _("Until a date field"))]
    mode = forms.ChoiceField(label=_("Wait"), choices=MODES, widget=UnfoldAdminSelectWidget)
    days = forms.IntegerField(label=_("Days"), min_value=0, max_value=3650, required=False,
                              widget=UnfoldAdminIntegerFieldWidget)
    hours = forms.IntegerField(label=_("Hours"), min_value=0, max_value=10000, required=False,
                               widget=UnfoldAdminIntegerFieldWidget)
    minutes = forms.IntegerField(label=_("Minutes"), min_value=0, max_value=100000, required=False,
                                 widget=UnfoldAdminIntegerFieldWidget)
    until_time = forms.CharField(label=_("Time of day (HH:MM)"), required=False, max_length=5,
                                 widget=UnfoldAdminTextInputWidget)
    until_field = forms.CharField(label=_("Date field"), required=False, max_length=100,
                                  widget=UnfoldAdminTextInputWidget,
                                  help_text=_("user.<field>, profile.<field> or context.<key>"))
    offset_days = forms.IntegerField(label=_("Days after it (negative: before)"), required=False,
                                     min_value=-3650, max_value=3650, widget=UnfoldAdminIntegerFieldWidget)

    def __init__(self, *args, graph=None, **kwargs):
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        mode = data.get("mode")
        if mode == "duration" and not any(data.get(u) for u in ("days", "hours", "minutes")):
            self.add_error("days", _("Give days, hours or minutes."))
        if mode == "time" and parse_time_of_day(data.get("until_time")) is None:
            self.add_error("until_time", _("A time of day such as 09:30."))
        if mode == "date":
            source, _dot, name = (data.get("until_field") or "").partition(".")
            if source not in ("user", "profile", "context") or not name:
                self.add_error("until_field", _("Write user.<field>, profile.<field> or context.<key>."))
        return data

    def as_step(self) -> dict:
        data = self.cleaned_data
        step: dict = {"type": "wait"}
        if data["mode"] == "duration":
            step.update({u: data[u] for u in ("days", "hours", "minutes") if data.get(u)})
        elif data["mode"] == "time":
            step["until_time"] = data["until_time"]
        else:
            step["until_field"] = data["until_field"]
            if data.get("offset_days"):
                step["offset_days"] = data["offset_days"]
        return step

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        mode = "time" if "until_time" in step else "date" if "until_field" in step else "duration"
        return {"mode": mode, **{k: step.get(k) for k in ("days", "hours", "minutes", "until_time", "until_field",
                                                         "offset_days")}}


class BranchStepForm(forms.Form):
    SWITCH = "on"
    SHOWN = {"field": ("on", "field", "op", "value"), "receipt": ("on", "step", "event", "within_hours")}
    ON = [("field", _("A field of the person or of what brought them in")),
          ("receipt", _("What they did with an earlier message"))]
    on = forms.ChoiceField(label=_("Branch on"), choices=ON, widget=UnfoldAdminSelectWidget)
    field = forms.CharField(label=_("Field"), required=False, max_length=100, widget=UnfoldAdminTextInputWidget,
                            help_text=_("user.<field>, profile.<field> or context.<key>, e.g. context.instance.total"))
    op = forms.ChoiceField(label=_("Test"), required=False, choices=list(OPS.items()), widget=UnfoldAdminSelectWidget)
    value = forms.CharField(label=_("Value"), required=False, max_length=500, widget=UnfoldAdminTextInputWidget,
                            help_text=_("Numbers, true/false and [lists] are read as JSON; anything else as text."))
    step = forms.ChoiceField(label=_("Message of step"), required=False, widget=UnfoldAdminSelectWidget)
    event = forms.ChoiceField(label=_("was"), required=False, widget=UnfoldAdminSelectWidget,
                              choices=[(e, e) for e in RECEIPT_EVENTS])
    within_hours = forms.IntegerField(label=_("within (hours)"), required=False, min_value=1, max_value=24 * 365,
                                      widget=UnfoldAdminIntegerFieldWidget)

    def __init__(self, *args, graph=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].choices = [("delivered", _("delivered")), ("opened", _("opened")),
                                        ("clicked", _("clicked")), ("read", _("read"))]
        self.fields["step"].choices = [("", "—"), *((s, s) for s in send_step_ids(graph or {}))]

    def clean(self):
        data = super().clean()
        if data.get("on") == "receipt":
            if not data.get("step"):
                self.add_error("step", _("Choose the send step whose message it asks about."))
            if not data.get("event"):
                self.add_error("event", _("Choose what happened."))
        elif data.get("on") == "field":
            source, _dot, name = (data.get("field") or "").partition(".")
            if source not in ("user", "profile", "context") or not name:
                self.add_error("field", _("Write user.<field>, profile.<field> or context.<key>."))
            if not data.get("op"):
                self.add_error("op", _("Choose a test."))
        return data

    def as_step(self) -> dict:
        data = self.cleaned_data
        if data["on"] == "receipt":
            condition = {"step": data["step"], "event": data["event"]}
            if data.get("within_hours"):
                condition["within_hours"] = data["within_hours"]
        else:
            raw = data.get("value", "")
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            if isinstance(value, float) and not math.isfinite(value):
                value = raw  # "1e999": no JSON column stores infinity
            condition = {"field": data["field"], "op": data["op"], "value": value}
        return {"type": "branch", "if": condition}

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        condition = step.get("if") or {}
        if "step" in condition:
            return {"on": "receipt", "step": condition.get("step"), "event": condition.get("event"),
                    "within_hours": condition.get("within_hours")}
        value = condition.get("value")
        return {"on": "field", "field": condition.get("field"), "op": condition.get("op"),
                "value": value if isinstance(value, str) else json.dumps(value)}


class SplitStepForm(forms.Form):
    def __init__(self, *args, graph=None, **kwargs):
        super().__init__(*args, **kwargs)
        for i in range(1, MAX_ARMS + 1):
            self.fields[f"arm_{i}_name"] = forms.CharField(label=_("Arm %(n)d name") % {"n": i}, required=i <= 2,
                                                           max_length=30, widget=UnfoldAdminTextInputWidget)
            self.fields[f"arm_{i}_percent"] = forms.IntegerField(label=_("Arm %(n)d %%") % {"n": i}, required=i <= 2,
                                                                 min_value=1, max_value=99,
                                                                 widget=UnfoldAdminIntegerFieldWidget)

    def clean(self):
        data = super().clean()
        arms, names = [], set()
        for i in range(1, MAX_ARMS + 1):
            name, percent = (data.get(f"arm_{i}_name") or "").strip(), data.get(f"arm_{i}_percent")
            if not name and percent is None:
                continue
            if not name or percent is None:
                self.add_error(f"arm_{i}_name", _("An arm needs a name and a percent."))
                continue
            if name in names:
                self.add_error(f"arm_{i}_name", _("Two arms have this name."))
            names.add(name)
            arms.append({"name": name, "percent": percent})
        if arms and len(arms) == len(names) and sum(a["percent"] for a in arms) != 100:
            self.add_error(None, _("The arms add up to %(total)d %%, not 100 %%.") % {
                "total": sum(a["percent"] for a in arms)})
        data["arms"] = arms
        return data

    def as_step(self) -> dict:
        return {"type": "split", "arms": self.cleaned_data["arms"]}

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        initial = {}
        for i, arm in enumerate(step.get("arms") or [], start=1):
            if isinstance(arm, dict):
                initial[f"arm_{i}_name"], initial[f"arm_{i}_percent"] = arm.get("name"), arm.get("percent")
        return initial


class ExitStepForm(forms.Form):
    def __init__(self, *args, graph=None, **kwargs):
        super().__init__(*args, **kwargs)

    def as_step(self) -> dict:
        return {"type": "exit"}

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        return {}


FORMS = {"send": SendStepForm, "wait": WaitStepForm, "branch": BranchStepForm, "split": SplitStepForm,
         "exit": ExitStepForm}


class SimulateForm(forms.Form):
    person = forms.CharField(label=_("Person (username or email)"), max_length=150, widget=UnfoldAdminTextInputWidget)
    context = forms.CharField(label=_("Context values (JSON, optional)"), required=False, max_length=5000,
                              widget=forms.Textarea(attrs={"rows": 3,
                                                           "class": "border rounded-default w-full p-2 font-mono text-sm"}),
                              help_text=_("What the entry would bring, e.g. {\"instance\": {\"total\": \"120.00\"}}"))
    engaged = forms.BooleanField(label=_("Assume they open and click each message"), required=False,
                                 widget=UnfoldBooleanSwitchWidget)
    assume = forms.ChoiceField(label=_("While they wait"), required=False, widget=UnfoldAdminSelectWidget,
                               help_text=_("A goal or exit condition is met by a save while they wait."))

    def __init__(self, *args, graph=None, **kwargs):
        super().__init__(*args, **kwargs)
        graph = graph if isinstance(graph, dict) else {}
        choices = [("", _("nothing happens"))]
        for i, goal in enumerate(graph.get("goals") or []):
            if isinstance(goal, dict):
                choices.append((f"goal:{i}", _("they reach the goal “%(name)s”") % {
                    "name": goal.get("name") or goal.get("model") or i + 1}))
        for i, rule in enumerate(graph.get("exits") or []):
            if isinstance(rule, dict) and rule.get("kind") == "condition":
                choices.append((f"exit:{i}", _("exit condition %(n)d holds") % {"n": i + 1}))
        self.fields["assume"].choices = choices

    def clean_context(self):
        raw = (self.cleaned_data.get("context") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            raise ValidationError(_("This is not JSON.")) from None
        if not isinstance(value, dict):
            raise ValidationError(_("Give an object: {\"key\": value}."))
        return value


def people_matching(text: str):
    User = get_user_model()
    text = (text or "").strip()
    if not text:
        return User.objects.none()
    return User.objects.filter(Q(username__iexact=text) | Q(email__iexact=text) | Q(username__icontains=text)
                               | Q(email__icontains=text)).order_by("username")


def _initial_from_query(form_class, query, *, graph: dict) -> dict:
    """The values a half-filled step form had, to draw it again after its switch changed."""
    probe = form_class(graph=graph, prefix="step")
    initial = {}
    for name, field in probe.fields.items():
        key = probe.add_prefix(name)
        if isinstance(field, forms.MultipleChoiceField):
            initial[name] = query.getlist(key)
        elif isinstance(field, forms.BooleanField):
            initial[name] = key in query
        elif key in query:
            initial[name] = query.get(key)
    return initial


# --- The views ------------------------------------------------------------------------------------

class JourneyBuilderMixin(JourneyEntryEditorMixin):
    """The builder pages of ``JourneyAdmin``."""

    def builder_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/builder/", view(self.builder_view), name="notifications_journey_builder"),
            path("<int:pk>/builder/step/", view(self.builder_step_view), name="notifications_journey_builder_step"),
            path("<int:pk>/builder/delete/", view(self.builder_delete_view), name="notifications_journey_builder_delete"),
            path("<int:pk>/builder/publish/", view(self.builder_publish_view),
                 name="notifications_journey_builder_publish"),
            path("<int:pk>/builder/counters/", view(self.builder_counters_view),
                 name="notifications_journey_builder_counters"),
            path("<int:pk>/builder/simulate/", view(self.builder_simulate_view),
                 name="notifications_journey_builder_simulate"),
            *self.entry_editor_urls(),
        ]

    def _journey(self, request: HttpRequest, pk: int) -> Journey:
        journey = get_object_or_404(Journey.objects.select_related("category", "current_version"), pk=pk)
        if not self.has_view_permission(request, journey):
            raise PermissionDenied
        return journey

    def _flow_context(self, request: HttpRequest, journey: Journey, **extra) -> dict:
        graph = journey.graph if isinstance(journey.graph, dict) else {}
        problems = journey_problems(journey=journey)
        keys = {s.get("template") for s in steps_by_id(graph).values() if s.get("type") == "send"}
        templates = dict(MessageTemplate.objects.filter(key__in=keys).values_list("key", "name"))
        categories = dict(Category.objects.values_list("key", "name"))
        can_edit = allows(request.user, "journey.edit") and journey.status != Journey.Status.STOPPED
        cards = flow(graph, problems=problems, templates=templates, categories=categories)
        counts = journey_card_counts(journey=journey)
        for card in cards.cards():
            card.counts = counts.get(card.id)
        rules = {name: graph.get(name) if isinstance(graph.get(name), list) else [] for name in ("goals", "exits")}
        goals = [(i, rule_words(rule, exit_rule=False)) for i, rule in enumerate(rules["goals"])]
        exits = [(i, rule_words(rule, exit_rule=True)) for i, rule in enumerate(rules["exits"])]
        return {"journey": journey, "flow": cards, "entry_words": entry_words(journey.entry),
                "reentry_words": reentry_words(journey),
                "rule_sections": [
                    ("goals", _("Goals (the person converts and leaves)"), goals, _("Add a goal"),
                     _("No goal: nobody converts.")),
                    ("exits", _("Exit conditions (the person leaves)"), exits, _("Add an exit condition"),
                     _("No exit condition.")),
                ],
                "problems": problems, "can_edit": can_edit,
                "can_publish": allows(request.user, "journey.publish") and journey.status != Journey.Status.STOPPED,
                "kinds": list(KINDS.items()), "poll_seconds": COUNTER_SECONDS,
                "live": journey.current_version_id is not None, **extra}

    def builder_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        journey = self._journey(request, pk)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": journey,
                   "title": _("Build “%(name)s”") % {"name": journey.name},
                   "change_url": reverse("admin:notifications_journey_change", args=[journey.pk]),
                   "simulate_form": SimulateForm(graph=journey.graph), **self._flow_context(request, journey)}
        return TemplateResponse(request, PAGE, context)

    def _render_flow(self, request, journey, **extra) -> HttpResponse:
        # Refusals and form errors are 200s too: htmx swaps only successful answers, and the
        # person must see why nothing changed.
        return TemplateResponse(request, f"{PAGE}#flow", self._flow_context(request, journey, **extra))

    def _require_edit(self, request: HttpRequest, journey: Journey) -> None:
        if not allows(request.user, "journey.edit"):
            raise PermissionDenied
        if journey.status == Journey.Status.STOPPED:
            raise PermissionDenied

    def builder_step_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the form for a new step (``kind``, ``parent``, ``arm``) or for editing ``step``;
        POST: apply it and re-render the flow (or the form with its errors)."""
        journey = self._journey(request, pk)
        self._require_edit(request, journey)
        data = request.POST if request.method == "POST" else request.GET
        graph = journey.graph if isinstance(journey.graph, dict) else {"start": "", "steps": []}
        editing = data.get("step", "")
        existing = steps_by_id(graph).get(editing) if editing else None
        if editing and existing is None:
            return self._render_flow(request, journey, edit_error=_("That step no longer exists."))
        kind = existing.get("type") if existing else data.get("kind", "")
        if kind not in FORMS:
            return self._render_flow(request, journey, edit_error=_("Choose a kind of step."))
        slot = Slot(parent=data.get("parent", ""), arm=data.get("arm", ""))
        if slot.parent and not STEP_ID.match(slot.parent):
            return self._render_flow(request, journey, edit_error=_("That step no longer exists."))
        form_class = FORMS[kind]
        if request.method != "POST":
            if any(key.startswith("step-") for key in request.GET):
                initial = _initial_from_query(form_class, request.GET, graph=graph)  # the switch changed
            else:
                initial = form_class.initial_from(existing) if existing else {}
            form = form_class(initial=initial, graph=graph, prefix="step")
            return self._render_flow(request, journey, editor=self._editor(journey, form, kind=kind, step=editing,
                                                                           slot=slot))
        form = form_class(request.POST, graph=graph, prefix="step")
        if form.is_valid():
            try:
                if existing:
                    new_graph = step_update(graph, step_id=editing, fields=form.as_step())
                else:
                    published = journey.current_version.graph if journey.current_version_id else {}
                    new_graph, editing = step_insert(graph, slot=slot, fields=form.as_step(),
                                                     reserved=frozenset(steps_by_id(published or {})))
            except GraphEditError as error:
                form.add_error(None, str(error))
            else:
                journey.graph = new_graph
                if self._saved(request, journey, form):
                    return self._render_flow(request, journey, changed=editing)
        return self._render_flow(request, journey, editor=self._editor(journey, form, kind=kind, step=editing,
                                                                       slot=slot))

    def _editor(self, journey: Journey, form: forms.Form, *, kind: str, step: str, slot: Slot) -> dict:
        """The step form, showing only the fields its switch (a wait's mode, a branch's "on") uses;
        changing the switch re-draws it (a GET with the form's values)."""
        fields = list(form)
        switch = getattr(form, "SWITCH", None)
        if switch:
            current = (form.data.get(form.add_prefix(switch)) if form.is_bound else form.initial.get(switch))
            current = current if current in form.SHOWN else next(iter(form.SHOWN))
            fields = [form[name] for name in form.SHOWN[current]]
            form.fields[switch].initial = current
            form.fields[switch].widget.attrs.update({
                "hx-get": reverse("admin:notifications_journey_builder_step", args=[journey.pk]),
                "hx-trigger": "change", "hx-include": "closest form", "hx-target": "#flow", "hx-swap": "outerHTML",
                "hx-sync": "closest form:replace", "data-testid": "step-switch",
            })
        return {"form": form, "fields": fields, "kind": kind, "kind_label": KINDS[kind], "step": step, "slot": slot}

    def builder_delete_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        journey = self._journey(request, pk)
        self._require_edit(request, journey)
        try:
            journey.graph = step_delete(journey.graph if isinstance(journey.graph, dict) else {},
                                        step_id=request.POST.get("step", ""))
        except GraphEditError as error:
            return self._render_flow(request, journey, edit_error=str(error))
        try:
            journey_save(journey=journey, actor=request.user)
        except ValidationError as error:  # e.g. its audience was deleted since: say so, keep the step
            journey.refresh_from_db()
            return self._render_flow(request, journey, edit_error="; ".join(error.messages))
        return self._render_flow(request, journey)

    def builder_publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        journey = self._journey(request, pk)
        try:
            version = journey_publish_or_ask(journey=journey, actor=request.user)
        except PermissionDenied:
            raise
        except ValidationError as error:
            return self._render_flow(request, journey, publish_error=error.messages)
        journey.refresh_from_db()
        return self._render_flow(request, journey, published=version.number)

    def builder_counters_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The live counters of every card, swapped out of band (a fixed number of queries)."""
        journey = get_object_or_404(Journey.objects.only("pk", "current_version_id", "graph"), pk=pk)
        if not self.has_view_permission(request, journey):
            raise PermissionDenied
        counts = journey_card_counts(journey=journey)
        return TemplateResponse(request, f"{PAGE}#counters",
                                {"counts": [(dom_id(step_id), c) for step_id, c in counts.items()]})

    def builder_simulate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        journey = self._journey(request, pk)
        form = SimulateForm(request.GET or None, graph=journey.graph)
        context = {"simulate_form": form, "journey": journey}
        if form.is_valid():
            people = list(people_matching(form.cleaned_data["person"]).select_related("recipient_profile")[:SEARCH_LIMIT])
            exact = [p for p in people if form.cleaned_data["person"].strip().lower() in
                     (p.username.lower(), (p.email or "").lower())]
            if len(exact) == 1 or len(people) == 1:
                person = exact[0] if len(exact) == 1 else people[0]
                context["simulation"] = journey_simulate(journey=journey, user=person,
                                                         context=form.cleaned_data["context"],
                                                         assume_engaged=form.cleaned_data["engaged"],
                                                         assume=form.cleaned_data.get("assume") or "")
            elif people:
                context["candidates"] = people
            else:
                form.add_error("person", _("Nobody has this username or email."))
        return TemplateResponse(request, f"{PAGE}#simulate", context)
