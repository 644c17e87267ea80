"""Message templates in the admin: per-channel parts and locale variants, checked on save, with a
preview for a real recipient (and instance) and a "send a test to me" button.

The form shows every problem ``template_problems`` finds on the part it belongs to, as
"Line N: message", and renders each part once with sample data so a runaway loop is caught here
rather than in a send. All rendering is ``notifications.templating``; this module only collects
input and shows results.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, StackedInline
from unfold.decorators import action, display
from unfold.widgets import (
    TEXTAREA_CLASSES,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from ..jsonsafe import JSONInputError, json_loads_safe
from ..models import Channel, MessageParts, MessageTemplate, MessageTemplateVariant
from ..models.campaigns import LOCALE_CHOICES
from ..services import audit_record
from ..templating import (
    BASE_NAMES,
    RECIPIENT_FIELDS,
    template_problems,
    template_trial_problems,
)
from ..templating.compiled import channels_written
from ..templating.preview import template_preview, template_send_test
from ..templating.sandbox import environment

PREVIEW_TEMPLATE = "notifications/admin/template_preview.html"
PART_FIELDS = MessageParts.PART_FIELDS
RECIPIENT_CHOICES_LIMIT = 200
MAX_VARIABLES_JSON = 10_000
MAX_VARIABLES_DEPTH = 16
CODE_TEXTAREA = {"class": " ".join([*TEXTAREA_CLASSES, "font-mono", "text-sm"]), "rows": 4, "spellcheck": "false"}
BODY_TEXTAREA = {**CODE_TEXTAREA, "rows": 14}


def _part_widgets() -> dict[str, forms.Widget]:
    widgets: dict[str, forms.Widget] = {}
    for name in PART_FIELDS:
        if name in ("email_body", "inapp_body", "sms_text", "chat_text"):
            widgets[name] = UnfoldAdminTextareaWidget(attrs=BODY_TEXTAREA if name == "email_body" else CODE_TEXTAREA)
        else:
            widgets[name] = UnfoldAdminTextInputWidget(attrs={"class": "font-mono", "spellcheck": "false"})
    return widgets


def add_problems(form: forms.BaseForm, parts: dict[str, str], allowed_names: set[str]) -> None:
    """Put each template problem on the field of its part; trial renders only for clean parts."""
    problems = template_problems(parts=parts, allowed_names=allowed_names)
    for problem in problems:
        form.add_error(problem.part, str(problem))
    clean = {part: text for part, text in parts.items() if part not in {p.part for p in problems}}
    for problem in template_trial_problems(parts=clean):
        form.add_error(problem.part, str(problem))


class DeclaredVariablesField(forms.CharField):
    """Declared variables typed as "order_number, coupon" and stored as a JSON list of names."""

    def __init__(self, *, encoder: Any = None, decoder: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # the model's JSONField offers its encoder; a list of names needs none

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(name) for name in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        text = super().to_python(value) or ""
        names = [name for name in text.replace(",", " ").split() if name]
        reserved = BASE_NAMES | set(environment("text").globals)
        for name in names:
            if not name.isidentifier() or name.startswith("_"):
                raise ValidationError(_("“%(name)s” is not a valid variable name."), params={"name": name})
            if name in reserved:
                raise ValidationError(
                    _("“%(name)s” is always available; it need not be declared."), params={"name": name}
                )
        return list(dict.fromkeys(names))


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["name", "key", "locale", "category", "variables", *PART_FIELDS]
        field_classes = {"variables": DeclaredVariablesField}
        widgets = {"variables": UnfoldAdminTextInputWidget(attrs={"class": "font-mono"}), **_part_widgets()}

    def clean(self):
        cleaned = super().clean()
        parts = {part: cleaned.get(part) or "" for part in PART_FIELDS}
        add_problems(self, parts, set(BASE_NAMES) | set(cleaned.get("variables") or []))
        return cleaned


class MessageTemplateVariantForm(forms.ModelForm):
    class Meta:
        model = MessageTemplateVariant
        fields = ["locale", *PART_FIELDS]
        widgets = _part_widgets()

    def __init__(self, *args: Any, allowed_names: Callable[[], set[str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed_names = allowed_names or (lambda: set(BASE_NAMES))

    def clean(self):
        cleaned = super().clean()
        if self.cleaned_data.get("DELETE"):
            return cleaned
        parts = {part: cleaned.get(part) or "" for part in PART_FIELDS}
        add_problems(self, parts, self.allowed_names())
        return cleaned


class VariantFormSet(BaseInlineFormSet):
    """Gives each variant form the names its template declares, as submitted with this save.

    Read when the variant is cleaned (after the template form), not when the form is built:
    Unfold builds the forms before the template form has been validated.
    """

    def get_form_kwargs(self, index):
        kwargs = super().get_form_kwargs(index)
        kwargs["allowed_names"] = lambda: set(BASE_NAMES) | set(self.instance.variables or [])
        return kwargs

    def clean(self):
        super().clean()
        for form in self.forms:
            if getattr(form, "cleaned_data", None) and not form.cleaned_data.get("DELETE"):
                if form.cleaned_data.get("locale") == self.instance.locale:
                    form.add_error("locale", _("This is the template's own locale: edit the template's parts instead."))


class MessageTemplateVariantInline(StackedInline):
    model = MessageTemplateVariant
    form = MessageTemplateVariantForm
    formset = VariantFormSet
    extra = 0
    fieldsets = [
        (None, {"fields": ["locale"]}),
        (_("Email"), {"fields": ["email_subject", "email_body"]}),
        (_("SMS and chat"), {"fields": ["sms_text", "chat_text"]}),
        (_("Push"), {"fields": ["push_title", "push_body"]}),
        (_("In-app"), {"fields": ["inapp_title", "inapp_body", "inapp_url"]}),
    ]


# --- The preview form ----------------------------------------------------------------------------

def _trigger_models() -> list[tuple[str, Any]]:
    """Registered trigger models, if the trigger registry is installed."""
    try:
        registry = importlib.import_module("notifications.triggers.registry")
    except ImportError:
        return []
    choices = getattr(registry, "model_choices", None)
    return list(choices()) if choices else []


class TemplatePreviewForm(forms.Form):
    recipient = forms.CharField(
        label=_("Recipient"), required=False, max_length=150,
        widget=UnfoldAdminTextInputWidget(attrs={"list": "sb-preview-recipients", "autocomplete": "off"}),
        help_text=_("A username or user id. Empty: yourself."),
    )
    locale = forms.ChoiceField(
        label=_("Locale"), required=False, choices=[("", _("The recipient's own")), *LOCALE_CHOICES],
        widget=UnfoldAdminSelectWidget,
    )
    instance_model = forms.ChoiceField(label=_("Instance model"), required=False, widget=UnfoldAdminSelectWidget,
                                       help_text=_("For trigger templates: the kind of record that fires it."))
    instance_id = forms.CharField(label=_("Instance id"), required=False, max_length=64,
                                  widget=UnfoldAdminTextInputWidget)
    variables = forms.CharField(
        label=_("Declared variables"), required=False, max_length=MAX_VARIABLES_JSON,
        widget=UnfoldAdminTextareaWidget(attrs={**CODE_TEXTAREA, "rows": 3}),
        help_text=_('Values as JSON, e.g. {"coupon": "SPRING"}. Missing ones show as [name].'),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["instance_model"].choices = [("", "—"), *_trigger_models()]

    def clean_recipient(self):
        value = (self.cleaned_data.get("recipient") or "").strip()
        if not value:
            return self.user
        users = get_user_model().objects.select_related("recipient_profile")
        found = users.filter(pk=int(value)).first() if value.isdigit() else None
        found = found or users.filter(**{get_user_model().USERNAME_FIELD: value}).first()
        if found is None:
            raise ValidationError(_("No user “%(value)s”."), params={"value": value})
        return found

    def clean_variables(self):
        text = (self.cleaned_data.get("variables") or "").strip()
        if not text:
            return {}
        try:
            # Nested or huge JSON is a form error here, never a RecursionError in the render.
            value = json_loads_safe(text, max_chars=MAX_VARIABLES_JSON, max_depth=MAX_VARIABLES_DEPTH)
        except JSONInputError as exc:
            raise ValidationError(exc.message) from None
        if not isinstance(value, dict):
            raise ValidationError(_('Give an object, e.g. {"coupon": "SPRING"}.'))
        return value

    def clean(self):
        cleaned = super().clean()
        label, pk = cleaned.get("instance_model"), (cleaned.get("instance_id") or "").strip()
        cleaned["instance"] = None
        if label and pk:
            model = apps.get_model(label)
            try:
                cleaned["instance"] = model._default_manager.filter(pk=pk).first()
            except (ValueError, ValidationError):
                cleaned["instance"] = None
            if cleaned["instance"] is None:
                self.add_error("instance_id", _("No %(model)s with id %(id)s.") % {"model": label, "id": pk})
        elif pk:
            self.add_error("instance_model", _("Choose the model of the instance."))
        return cleaned

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {"recipient": data["recipient"], "instance": data.get("instance"), "variables": data["variables"],
                "locale": data.get("locale") or None}


# --- The admin -----------------------------------------------------------------------------------

@admin.register(MessageTemplate)
class MessageTemplateAdmin(ModelAdmin):
    form = MessageTemplateForm
    inlines = [MessageTemplateVariantInline]
    list_display = ["name", "key", "locale", "category", "channels", "updated_at", "updated_by"]
    list_filter = ["locale", "category"]
    search_fields = ["name", "key"]
    list_select_related = ["category", "updated_by"]
    prepopulated_fields = {"key": ["name"]}
    readonly_fields = ["updated_by", "created_at", "updated_at"]
    actions_detail = ["open_preview"]
    list_per_page = 50

    def get_fieldsets(self, request, obj=None):
        names = ", ".join([
            *(f"recipient.{f}" for f in RECIPIENT_FIELDS), "campaign.name", "instance.… (trigger templates)",
            "site_url", "unsubscribe_url", "preferences_url",
        ])
        fieldsets = [
            (None, {
                "fields": ["name", "key", "locale", "category", "variables"],
                "description": _("Parts are Jinja2 templates. Always available: %(names)s.") % {"names": names},
            }),
            (_("Email"), {"fields": ["email_subject", "email_body"]}),
            (_("SMS and chat"), {"fields": ["sms_text", "chat_text"]}),
            (_("Push"), {"fields": ["push_title", "push_body"],
                         "description": _("Empty push parts use the in-app title and body.")}),
            (_("In-app"), {"fields": ["inapp_title", "inapp_body", "inapp_url"]}),
        ]
        if obj is not None:
            fieldsets.append((_("History"), {"fields": ["updated_by", "created_at", "updated_at"]}))
        return fieldsets

    @display(description=_("Channels"))
    def channels(self, obj: MessageTemplate) -> str:
        labels = dict(Channel.choices)  # the channels' names in the reader's language, not their keys
        return ", ".join(str(labels.get(c, c)) for c in channels_written(obj.parts())) or "—"

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        """Saves the variants, then records one audit entry naming every changed field."""
        super().save_related(request, form, formsets, change)
        changes: dict[str, Any] = {"fields": list(form.changed_data)}
        variants: dict[str, Any] = {}
        for formset in formsets:
            for variant in getattr(formset, "new_objects", []):
                variants[variant.locale] = "added"
            for variant, fields in getattr(formset, "changed_objects", []):
                variants[variant.locale] = list(fields)
            for variant in getattr(formset, "deleted_objects", []):
                variants[variant.locale] = "deleted"
        if variants:
            changes["variants"] = variants
        if not change:
            audit_record(actor=request.user, action="message_template.create", target=form.instance, changes=changes)
        elif form.changed_data or variants:
            audit_record(actor=request.user, action="message_template.edit", target=form.instance, changes=changes)

    # --- Preview and test sends ------------------------------------------------------------------

    def get_urls(self):
        return [
            path("<path:object_id>/preview/", self.admin_site.admin_view(self.preview_view),
                 name="notifications_messagetemplate_preview"),
            *super().get_urls(),
        ]

    @action(description=_("Preview"), url_path="open-preview", icon="visibility", permissions=["view"])
    def open_preview(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:notifications_messagetemplate_preview", args=[object_id]))

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: the template rendered for a chosen recipient on every channel it has.
        POST (change permission): send that rendering to yourself as a test."""
        template = self.get_object(request, unquote(object_id))
        if template is None:
            raise Http404
        if request.method == "POST":
            if not self.has_change_permission(request, template):
                raise PermissionDenied
            form = TemplatePreviewForm(request.POST, user=request.user)
            if form.is_valid():
                result = template_send_test(template=template, to=request.user, **form.service_kwargs())
                self._report_test(request, result)
                query = urlencode({k: v for k, v in request.POST.items() if k in form.fields and v})
                url = reverse("admin:notifications_messagetemplate_preview", args=[template.pk])
                return HttpResponseRedirect(f"{url}?{query}" if query else url)
        elif request.method == "GET":
            if not self.has_view_permission(request, template):
                raise PermissionDenied
            form = TemplatePreviewForm(request.GET, user=request.user)
        else:
            return HttpResponse(status=405, headers={"Allow": "GET, POST"})
        preview = None
        if form.is_valid():
            data = form.service_kwargs()
            preview = template_preview(template=template, user=data.pop("recipient"), **data)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": template,
            "title": _("Preview of %(template)s") % {"template": template},
            "form": form,
            "preview": preview,
            "recipient": form.cleaned_data.get("recipient") if form.is_valid() else None,
            "recipient_choices": self._recipient_choices(),
            "can_send_test": self.has_change_permission(request, template),
            "test_fields": [(name, value) for name, value in form.data.items() if name in form.fields],
            "change_url": reverse("admin:notifications_messagetemplate_change", args=[template.pk]),
            "has_instance_models": len(form.fields["instance_model"].choices) > 1,
        }
        return TemplateResponse(request, PREVIEW_TEMPLATE, context)

    @staticmethod
    def _recipient_choices() -> list[tuple[int, str]]:
        return list(
            get_user_model().objects.filter(recipient_profile__isnull=False).order_by("pk")
            .values_list("pk", get_user_model().USERNAME_FIELD)[:RECIPIENT_CHOICES_LIMIT]
        )

    @staticmethod
    def _report_test(request: HttpRequest, result) -> None:
        if result.sent:
            messages.success(request, _("Test sent to you: %(channels)s.") % {"channels": ", ".join(result.sent)})
        if result.suppressed:
            messages.warning(request, _("Not sent (you cannot receive it there): %(channels)s.")
                             % {"channels": ", ".join(result.suppressed)})
        for error in result.errors:
            messages.error(request, error)
        if not (result.sent or result.suppressed or result.errors):
            messages.warning(request, _("This template has no email or in-app message to send."))
