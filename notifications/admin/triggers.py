"""Signal triggers in the admin: build "when X happens, send template T to Y" without a deploy.

Every choice the form offers comes from the trigger registry (``notifications.triggers``), so a
model or signal an integrating app registers appears here without touching this module. Saving,
deleting, enabling and disabling go through the trigger services: each is audited and takes effect
in every running process on its next save, with no restart.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from accounts.roles import allows

from ..models import SignalTrigger
from ..triggers.dryrun import DryRunError, trigger_dry_run, trigger_instance_choices, trigger_subject_model
from ..triggers.overlaps import trigger_overlaps
from ..triggers.services import (
    trigger_approval,
    trigger_approve,
    trigger_create,
    trigger_delete,
    trigger_set_active,
    trigger_update,
)
from .trigger_form import SignalTriggerForm, builder_schema, draft_trigger

CHANGE_FORM_TEMPLATE = "notifications/admin/trigger_change_form.html"
CHECK_TEMPLATE = "notifications/admin/trigger_sentence.html#check"
TEST_TEMPLATE = "notifications/admin/trigger_test.html"


def overlap_message(overlaps) -> str:
    """The warning about other active triggers covering the same event and recipients."""
    names = ", ".join(f"“{o.other.name}”" for o in overlaps)
    if all(o.same_template for o in overlaps):
        return str(_("Another active trigger covers the same event and recipients with the same template: %(names)s. "
                     "Each person still gets it once per event, but one of the triggers is redundant.")
                   % {"names": names})
    return str(_("Another active trigger covers the same event and recipients: %(names)s. "
                 "The same people will get two messages for one event.") % {"names": names})


@admin.register(SignalTrigger)
class SignalTriggerAdmin(ModelAdmin):
    form = SignalTriggerForm
    change_form_template = CHANGE_FORM_TEMPLATE
    list_display = ["name", "signal", "model", "active_badge", "fired_count", "last_fired_at", "updated_at"]
    list_filter = ["is_active", "signal", "model"]
    search_fields = ["name"]
    list_select_related = ["template", "category"]
    readonly_fields = [
        "approval_state", "approved_by", "approved_at", "approved_size", "fired_count", "last_fired_at",
        "held_count", "last_held_at", "last_held_reason", "created_by", "created_at", "updated_at",
    ]
    actions = ["enable", "disable"]
    actions_detail = ["test_with_instance", "approve"]
    # The first fieldset is drawn as a sentence (trigger_sentence.html); the rest as usual.
    fieldsets = [
        (None, {"fields": ["name", "is_active", "signal", "model", "events", "changed_field", "changed_to",
                           "conditions", "recipient_path", "audience", "template", "channels"]}),
        (_("Limits and delivery"), {"fields": ["category", "max_recipients", "dedupe_window"]}),
        (_("Approval"), {"fields": ["approval_state", "approved_by", "approved_at", "approved_size"]}),
        (_("History"), {"fields": [
            "fired_count", "last_fired_at", "held_count", "last_held_at", "last_held_reason", "created_by",
            "created_at", "updated_at",
        ]}),
    ]

    # Building or enabling a trigger is launching it: the admin asks the same rule as the services.
    def has_add_permission(self, request):
        return super().has_add_permission(request) and allows(request.user, "trigger.edit")

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and allows(request.user, "trigger.edit")

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and allows(request.user, "trigger.edit")

    def has_approve_permission(self, request, object_id=None):
        return allows(request.user, "campaign.approve")

    @display(description=_("approval"))
    def approval_state(self, obj: SignalTrigger) -> str:
        if obj.pk is None:
            return "—"
        approval = trigger_approval(trigger=obj)
        if approval.needed:
            return approval.reason
        if approval.approved and not approval.changed:
            return _("Approved for up to %(limit)d recipients per event.") % {"limit": approval.limit}
        return _("Not needed: it reaches at most %(size)d people per event.") % {"size": approval.size}

    @action(description=_("Approve"), url_path="approve", icon="verified", permissions=["approve"])
    def approve(self, request: HttpRequest, object_id: str) -> HttpResponse:
        trigger = self.get_object(request, object_id)
        if trigger is None:
            raise PermissionDenied
        change_url = reverse("admin:notifications_signaltrigger_change", args=[trigger.pk])
        if request.method != "POST":
            # The action is a link: a GET only asks for confirmation; approving is a POST.
            return TemplateResponse(request, "notifications/admin/trigger_approve.html", {
                **self.admin_site.each_context(request), "opts": self.model._meta, "original": trigger,
                "title": _("Approve %(trigger)s") % {"trigger": trigger}, "trigger": trigger,
                "approval": trigger_approval(trigger=trigger), "change_url": change_url,
            })
        try:
            trigger_approve(trigger=trigger, actor=request.user)
        except PermissionDenied as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(request, _("Approved. It can be enabled now."), messages.SUCCESS)
        return HttpResponseRedirect(change_url)

    @display(description=_("active"), label={True: "success", False: "danger"})
    def active_badge(self, obj: SignalTrigger):
        return obj.is_active, _("active") if obj.is_active else _("inactive")

    def save_model(self, request, obj, form, change):
        if change:
            trigger_update(trigger=obj, actor=request.user)
        else:
            trigger_create(trigger=obj, actor=request.user)
        overlaps = trigger_overlaps(trigger=obj)
        if overlaps:
            self.message_user(request, overlap_message(overlaps), messages.WARNING)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The warning is on the form from the start: for the trigger as saved, or as just posted.
        form = context["adminform"].form
        if form.is_bound:
            overlaps = trigger_overlaps(trigger=draft_trigger(form.data, instance=obj))
        else:
            overlaps = trigger_overlaps(trigger=obj) if obj is not None else []
        context.update({
            # View permission only: every field is read-only, shown as the usual fieldsets.
            "sentence": "signal" in form.fields and "signal" not in context["adminform"].readonly_fields,
            "trigger_schema": builder_schema(),
            "check_url": reverse("admin:notifications_signaltrigger_check") + (f"?trigger={obj.pk}" if obj else ""),
            "overlaps": overlaps,
            "overlap_message": overlap_message(overlaps) if overlaps else "",
        })
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def get_urls(self):
        return [
            path("check/", self.admin_site.admin_view(self.check_view), name="notifications_signaltrigger_check"),
            path("<path:object_id>/test/", self.admin_site.admin_view(self.test_view),
                 name="notifications_signaltrigger_test"),
            *super().get_urls(),
        ]

    def check_view(self, request: HttpRequest) -> HttpResponse:
        """The live warnings for the trigger being built (POST: the whole form)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not allows(request.user, "trigger.edit"):
            raise PermissionDenied
        instance = None
        pk = request.GET.get("trigger", "")
        if pk.isdigit():
            instance = SignalTrigger.objects.filter(pk=int(pk)).first()
        overlaps = trigger_overlaps(trigger=draft_trigger(request.POST, instance=instance))
        return TemplateResponse(request, CHECK_TEMPLATE, {
            "overlaps": overlaps, "overlap_message": overlap_message(overlaps) if overlaps else "",
        })

    def has_test_with_instance_permission(self, request: HttpRequest, object_id: str | None = None) -> bool:
        return allows(request.user, "trigger.dry_run")

    @action(description=_("Test with a real instance"), url_path="try", icon="science",
            permissions=["test_with_instance"])
    def test_with_instance(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:notifications_signaltrigger_test", args=[object_id]))

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: try the trigger on an instance (dry run: would it fire, to whom, saying what).
        POST (``trigger.edit``): send that message to yourself, marked as a test."""
        if not allows(request.user, "trigger.dry_run"):
            raise PermissionDenied
        trigger = self.get_object(request, unquote(object_id))
        if trigger is None:
            raise Http404
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        if request.method == "POST" and not allows(request.user, "trigger.edit"):
            raise PermissionDenied  # before any dry run: a refused send costs nothing
        params = request.POST if request.method == "POST" else request.GET
        pk, search = str(params.get("instance", "")).strip(), str(params.get("q", ""))
        run, error = None, ""
        if pk:
            try:
                run = trigger_dry_run(trigger=trigger, pk=pk)
            except DryRunError as exc:
                error = str(exc)
        if request.method == "POST":
            if run is not None:
                self._send_test(request, trigger, run)
            url = reverse("admin:notifications_signaltrigger_test", args=[trigger.pk])
            return HttpResponseRedirect(f"{url}?instance={pk}" if pk else url)
        registered = trigger_subject_model(trigger)
        return TemplateResponse(request, TEST_TEMPLATE, {
            **self.admin_site.each_context(request),
            "opts": self.model._meta, "original": trigger,
            "title": _("Test %(trigger)s with a real instance") % {"trigger": trigger},
            "trigger": trigger, "run": run, "error": error, "instance_pk": pk, "search": search,
            "model_name": registered.verbose_name if registered else "",
            "choices": trigger_instance_choices(trigger=trigger, search=search) if registered else [],
            "can_send": allows(request.user, "trigger.edit"),
            "change_url": reverse("admin:notifications_signaltrigger_change", args=[trigger.pk]),
        })

    def _send_test(self, request: HttpRequest, trigger: SignalTrigger, run) -> None:
        from ..templating.preview import template_send_test

        recipient = run.recipients[0] if run.recipients else None
        result = template_send_test(template=trigger.template, to=request.user, recipient=recipient,
                                    instance=run.instance)
        if result.sent:
            self.message_user(request, _("Test sent to you: %(channels)s.") % {"channels": ", ".join(result.sent)},
                              messages.SUCCESS)
        if result.suppressed:
            self.message_user(request, _("Not sent (you cannot receive it there): %(channels)s.")
                              % {"channels": ", ".join(result.suppressed)}, messages.WARNING)
        for message in result.errors:
            self.message_user(request, message, messages.ERROR)

    def delete_model(self, request, obj):
        trigger_delete(trigger=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for trigger in queryset:
            trigger_delete(trigger=trigger, actor=request.user)

    @admin.action(description=_("Enable selected triggers"), permissions=["change"])
    def enable(self, request, queryset):
        self._set_active(request, queryset, active=True)

    @admin.action(description=_("Disable selected triggers"), permissions=["change"])
    def disable(self, request, queryset):
        self._set_active(request, queryset, active=False)

    def _set_active(self, request, queryset, *, active: bool) -> None:
        changed = 0
        for trigger in queryset.order_by("pk"):
            try:
                changed += trigger_set_active(trigger=trigger, active=active, actor=request.user)
            except ValidationError as exc:
                details = "; ".join(str(m) for m in exc.messages)
                self.message_user(
                    request,
                    _("%(trigger)s cannot be enabled: %(reason)s") % {"trigger": trigger, "reason": details},
                    messages.ERROR,
                )
        if active:
            text = ngettext("%(count)d trigger enabled.", "%(count)d triggers enabled.", changed)
        else:
            text = ngettext("%(count)d trigger disabled.", "%(count)d triggers disabled.", changed)
        self.message_user(request, text % {"count": changed}, messages.SUCCESS)
