"""Journeys in the admin: the list with counts, the draft edited as JSON, publish/pause/resume/stop.

A minimal admin until the visual builder comes: the draft graph (steps, goals, exits) and the
entry are JSON fields whose problems (``journeys.graph.graph_problems``, the entry's) are form
errors, so what is saved can be published. Saving goes through ``journey_save`` (audited) and
never changes what runs; publishing freezes the draft as a new version. The four verbs are POST
only (a GET shows what they will do) and go through the services, which check ``journey.edit``
and ``journey.publish`` (``accounts.roles``).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from accounts.roles import allows

from ..journeys.entry import entry_problems
from ..journeys.graph import graph_problems
from ..journeys.selectors import version_step_counts
from ..journeys.approvals import journey_publish_or_ask
from ..journeys.services import (
    journey_move_in_flight, journey_move_preview, journey_pause, journey_resume, journey_save, journey_stop,
)
from ..jsonsafe import SAFE_JSON_FORMFIELDS
from .journey_builder import JourneyBuilderMixin
from ..models import Journey, JourneyEnrollment

CONFIRM_TEMPLATE = "notifications/admin/journey_confirm.html"
State = JourneyEnrollment.State


def _no_steps_yet(graph) -> bool:
    return isinstance(graph, dict) and graph.get("steps") in (None, []) and not graph.get("start")


class JourneyForm(forms.ModelForm):
    class Meta:
        model = Journey
        fields = ["key", "name", "category", "reentry", "reentry_days", "entry", "graph"]

    def clean(self):
        cleaned = super().clean()
        # A journey without steps yet is saved as it is: its steps are built in the builder.
        if "graph" in cleaned and not _no_steps_yet(cleaned["graph"]):
            for problem in graph_problems(cleaned["graph"]):
                self.add_error("graph", problem)
        if "entry" in cleaned:
            for problem in entry_problems(cleaned["entry"]):
                self.add_error("entry", problem)
        if cleaned.get("reentry") == Journey.Reentry.PER_PERIOD and not cleaned.get("reentry_days"):
            self.add_error("reentry_days", _("“Once per N days” needs the number of days."))
        return cleaned


@admin.register(Journey)
class JourneyAdmin(JourneyBuilderMixin, ModelAdmin):
    form = JourneyForm
    formfield_overrides = SAFE_JSON_FORMFIELDS  # nested or huge JSON is a form error, never a 500
    list_display = ["name", "key", "status_badge", "version_number", "active", "completed", "converted", "exited"]
    list_filter = ["status"]
    search_fields = ["name", "key"]
    list_select_related = ["current_version", "category"]
    readonly_fields = ["builder_link", "approval_state", "status", "version_number", "step_counts", "created_by", "created_at", "updated_at"]
    actions_detail = ["publish", "move", "pause", "resume", "stop"]
    fieldsets = [
        (None, {"fields": ["builder_link", "name", "key", "status", "approval_state", "version_number", "category",
                           "reentry", "reentry_days"]}),
        (_("Published version, step by step"), {"fields": ["step_counts"]}),
        (_("Entry"), {"fields": ["entry"]}),
        (_("Advanced: steps, goals and exit conditions as JSON (draft)"), {"fields": ["graph"],
                                                                            "classes": ["collapse"]}),
        (_("History"), {"fields": ["created_by", "created_at", "updated_at"]}),
    ]

    def get_urls(self):
        return self.builder_urls() + super().get_urls()

    @display(description=_("builder"))
    def builder_link(self, obj: Journey):
        if obj is None or obj.pk is None:
            return _("Save the journey first, then build its steps.")
        return format_html('<a class="font-medium text-primary-600" data-testid="open-builder" href="{}">{}</a>',
                           reverse("admin:notifications_journey_builder", args=[obj.pk]), _("Open the builder"))

    @display(description=_("approval"))
    def approval_state(self, obj: Journey):
        if obj is None or obj.pk is None:
            return "—"
        from ..journeys.approvals import awaiting_journeys

        if awaiting_journeys().filter(pk=obj.pk).exists():
            words = _("Waiting on the approval desk")
        elif obj.status_note and obj.approval_requested_at is None:
            words = _("Changes requested: %(comment)s") % {"comment": obj.status_note}
        elif obj.approved_by_id:
            words = _("Approved")
        else:
            words = _("Not asked for (publishing asks when its reach needs one)")
        return format_html('<a class="text-primary-600" data-testid="journey-approval-link" href="{}">{}</a>',
                           reverse("dashboard:journey_approval", args=[obj.pk]), words)

    def get_queryset(self, request):
        counts = {
            f"n_{state}": Count("enrollments", filter=Q(enrollments__state=state))
            for state in (State.ACTIVE, State.COMPLETED, State.CONVERTED, State.EXITED)
        }
        return super().get_queryset(request).annotate(**counts)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and allows(request.user, "journey.edit")

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and allows(request.user, "journey.edit")

    def has_publish_permission(self, request, object_id=None):
        return allows(request.user, "journey.publish")

    @display(description=_("status"), label={"draft": "info", "live": "success", "paused": "warning",
                                              "stopped": "danger"})
    def status_badge(self, obj: Journey):
        return obj.status, obj.get_status_display()

    @display(description=_("version"))
    def version_number(self, obj: Journey):
        return obj.current_version.number if obj.current_version_id else "—"

    @display(description=_("in it now"))
    def active(self, obj: Journey) -> int:
        return getattr(obj, "n_active", 0)

    @display(description=_("completed"))
    def completed(self, obj: Journey) -> int:
        return getattr(obj, "n_completed", 0)

    @display(description=_("converted"))
    def converted(self, obj: Journey) -> int:
        return getattr(obj, "n_converted", 0)

    @display(description=_("exited"))
    def exited(self, obj: Journey) -> int:
        return getattr(obj, "n_exited", 0)

    @display(description=_("people per step"))
    def step_counts(self, obj: Journey):
        if obj.pk is None or obj.current_version_id is None:
            return "—"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (step_id, c.now, c.passed, c.exited, c.converted)
            for step_id, c in version_step_counts(version=obj.current_version).items()
        ))
        return format_html(
            "<table data-testid='journey-steps'><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("step"), _("in it now"), _("passed"), _("exited"), _("converted"), rows,
        )

    def save_model(self, request, obj, form, change):
        journey_save(journey=obj, actor=request.user)

    def response_add(self, request, obj, post_url_continue=None):
        # A new journey without steps goes straight to the builder, where its steps are made.
        if _no_steps_yet(obj.graph) and "_addanother" not in request.POST:
            return HttpResponseRedirect(reverse("admin:notifications_journey_builder", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    # --- The verbs: a GET says what will happen, a POST does it -------------------------------------

    def _verb(self, request: HttpRequest, object_id: str, *, verb: str, question, run, preview=None) -> HttpResponse:
        journey = self.get_object(request, object_id)
        if journey is None:
            raise PermissionDenied
        change_url = reverse("admin:notifications_journey_change", args=[journey.pk])
        if request.method != "POST":
            return TemplateResponse(request, CONFIRM_TEMPLATE, {
                **self.admin_site.each_context(request), "opts": self.model._meta, "original": journey,
                "title": question % {"journey": journey}, "journey": journey, "verb": verb, "change_url": change_url,
                "preview": preview(journey) if preview else None,
            })
        try:
            message = run(journey)
        except PermissionDenied as error:
            self.message_user(request, str(error), messages.ERROR)
        except ValidationError as error:
            for problem in error.messages:
                self.message_user(request, problem, messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS if message else messages.WARNING)
        return HttpResponseRedirect(change_url)

    @action(description=_("Publish"), url_path="publish", icon="publish", permissions=["publish"])
    def publish(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def run(journey):
            version = journey_publish_or_ask(journey=journey, actor=request.user)
            return _("Version %(number)d is published: new entries take it; people already in the journey "
                     "finish on theirs.") % {"number": version.number}
        return self._verb(request, object_id, verb="publish", question=_("Publish %(journey)s?"), run=run)

    @action(description=_("Move people in flight"), url_path="move", icon="move_down", permissions=["publish"])
    def move(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def preview(journey):
            found = journey_move_preview(journey=journey)
            rows = [(number, step, lands, n) for (number, step), (lands, n) in sorted(found.lands.items())]
            return {"to_version": found.to_version, "rows": rows, "moving": found.moving, "stay": found.stay}

        def run(journey):
            moved = journey_move_in_flight(journey=journey, actor=request.user)
            return ngettext("%(count)d person in flight now runs on the published version.",
                            "%(count)d people in flight now run on the published version.", moved) % {"count": moved}
        return self._verb(request, object_id, verb="move", question=_("Move the people in flight of %(journey)s?"),
                          run=run, preview=preview)

    @action(description=_("Pause"), url_path="pause", icon="pause", permissions=["publish"])
    def pause(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def run(journey):
            return _("Paused: nobody moves on and nobody enters until it is resumed.") if journey_pause(
                journey=journey, actor=request.user) else _("Only a live journey can be paused.")
        return self._verb(request, object_id, verb="pause", question=_("Pause %(journey)s?"), run=run)

    @action(description=_("Resume"), url_path="resume", icon="play_arrow", permissions=["publish"])
    def resume(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def run(journey):
            return _("Resumed: overdue steps run on the next tick.") if journey_resume(
                journey=journey, actor=request.user) else _("Only a paused journey can be resumed.")
        return self._verb(request, object_id, verb="resume", question=_("Resume %(journey)s?"), run=run)

    @action(description=_("Stop"), url_path="stop", icon="stop_circle", permissions=["publish"])
    def stop(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def run(journey):
            ended = journey_stop(journey=journey, actor=request.user)
            return _("Stopped for good; %(count)d people still in it were taken out.") % {"count": ended}
        return self._verb(request, object_id, verb="stop", question=_("Stop %(journey)s for good?"), run=run)
