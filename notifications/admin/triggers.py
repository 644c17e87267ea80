"""Signal triggers in the admin: build "when X happens, send template T to Y" without a deploy.

Every choice the form offers comes from the trigger registry (``notifications.triggers``), so a
model or signal an integrating app registers appears here without touching this module. Saving,
deleting, enabling and disabling go through the trigger services: each is audited and takes effect
in every running process on its next save, with no restart.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin
from unfold.decorators import action, display
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
)

from accounts.roles import allows

from ..jsonsafe import SafeJSONField
from ..models import Channel, SignalTrigger
from ..triggers import registry as trigger_registry
from ..triggers.conditions import OPS, trigger_config_errors
from ..triggers.services import (
    trigger_approval,
    trigger_approve,
    trigger_create,
    trigger_delete,
    trigger_set_active,
    trigger_update,
)

EMPTY = [("", "—")]


def _signal_choices():
    return EMPTY + trigger_registry.signal_choices()


def _model_choices():
    return EMPTY + trigger_registry.model_choices()


def _field_choices():
    return EMPTY + trigger_registry.field_choices()


def _recipient_path_choices():
    return EMPTY + trigger_registry.recipient_path_choices()


class SignalTriggerForm(forms.ModelForm):
    """The trigger form. Cross-field rules live in ``trigger_config_errors``, shared with the services."""

    signal = forms.ChoiceField(label=_("signal"), choices=_signal_choices, widget=UnfoldAdminSelectWidget)
    model = forms.ChoiceField(
        label=_("model"), choices=_model_choices, required=False, widget=UnfoldAdminSelectWidget,
        help_text=_("For model signals: the model whose saves, deletes or relations you watch."),
    )
    events = forms.MultipleChoiceField(
        label=_("events"), choices=SignalTrigger.Event.choices, required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_("Model signals: created / updated / deleted. Other signals: signal sent."),
    )
    changed_field = forms.ChoiceField(
        label=_("when field"), choices=_field_choices, required=False, widget=UnfoldAdminSelectWidget,
        help_text=_("Fire only when this field changes (to the value below, or to anything if that is empty)."),
    )
    recipient_path = forms.ChoiceField(
        label=_("recipients"), choices=_recipient_path_choices, required=False, widget=UnfoldAdminSelectWidget,
        help_text=_("Who gets the message, starting from the instance; or choose an audience instead."),
    )
    channels = forms.MultipleChoiceField(
        label=_("channels"), choices=Channel.choices, widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    conditions = SafeJSONField(  # nested or huge JSON is a form error, not a 500
        label=_("conditions"), required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 4, "class": "font-mono text-xs", "spellcheck": "false"}),
        error_messages={"invalid": _('Conditions are not valid JSON. Example: [{"field": "total", "op": "gte", '
                                     '"value": 100}].')},
    )

    class Meta:
        model = SignalTrigger
        fields = [
            "name", "is_active", "signal", "model", "events", "changed_field", "changed_to", "conditions",
            "recipient_path", "audience", "max_recipients", "template", "category", "channels", "dedupe_window",
        ]

    max_recipients = forms.IntegerField(
        label=_("most recipients per event"), required=False, min_value=1,
        help_text=_("An event that would reach more people than this is held, not sent. "
                    "Above the approval threshold, a Manager must approve the trigger."),
    )

    def clean_max_recipients(self):
        value = self.cleaned_data.get("max_recipients")
        return value or SignalTrigger._meta.get_field("max_recipients").get_default()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ops = ", ".join(f"{op} ({label})" for op, label in OPS.items())
        self.fields["conditions"].help_text = _(
            'All must hold. A list of {"field", "op", "value"}; op is one of: %(ops)s.'
        ) % {"ops": ops}

    def clean_conditions(self):
        return self.cleaned_data.get("conditions") or []

    def clean(self):
        cleaned = super().clean()
        needed = ("signal", "model", "events", "changed_field", "changed_to", "conditions", "recipient_path",
                  "channels", "dedupe_window")
        if any(name in self.errors for name in needed):
            return cleaned  # the field's own error says what to fix first
        errors = trigger_config_errors(
            signal=cleaned.get("signal", ""),
            model=cleaned.get("model", ""),
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


@admin.register(SignalTrigger)
class SignalTriggerAdmin(ModelAdmin):
    form = SignalTriggerForm
    list_display = ["name", "signal", "model", "active_badge", "fired_count", "last_fired_at", "updated_at"]
    list_filter = ["is_active", "signal", "model"]
    search_fields = ["name"]
    list_select_related = ["template", "category"]
    readonly_fields = [
        "approval_state", "approved_by", "approved_at", "approved_size", "fired_count", "last_fired_at",
        "held_count", "last_held_at", "last_held_reason", "created_by", "created_at", "updated_at",
    ]
    actions = ["enable", "disable"]
    actions_detail = ["approve"]
    fieldsets = [
        (None, {"fields": ["name", "is_active"]}),
        (_("When"), {"fields": ["signal", "model", "events", "changed_field", "changed_to", "conditions"]}),
        (_("Who"), {"fields": ["recipient_path", "audience", "max_recipients"]}),
        (_("What"), {"fields": ["template", "category", "channels", "dedupe_window"]}),
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
