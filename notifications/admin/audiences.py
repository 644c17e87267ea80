"""Audiences in the admin: a rule builder with a live count and sample, and static member lists.

The builder is a small script (``static/signalbox/audience_builder.js``) that edits the ``rules``
textarea; the field registry is rendered into the page as JSON, so conditions an integrating app
registers appear without touching this module. Beside it, an htmx region posts the current rules
(debounced) to :meth:`AudienceAdmin.preview_view` and swaps in the count, a sample or the errors.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.fields import InvalidJSONInput
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse, reverse_lazy
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display
from unfold.views import ChangeList
from unfold.widgets import BASE_CLASSES, TEXTAREA_CLASSES, UnfoldAdminFileFieldWidget

from ..audiences import (
    MAX_IMPORT_BYTES,
    AudienceImportError,
    AudienceRuleError,
    audience_builder_schema,
    audience_members_import_csv,
    audience_preview,
    audience_rules_parse,
    audience_rules_validate,
    audience_sizes,
)
from ..jsonsafe import SafeJSONField
from ..models import Audience, AudienceMember
from .conditional import ConditionsOnlyWhenEditable

RULES_TEMPLATE = "notifications/admin/audience_rules_widget.html"
UPLOAD_TEMPLATE = "notifications/admin/audience_upload.html"


def builder_labels() -> dict[str, str]:
    """The builder's words, translated here so the script carries no strings of its own."""
    labels = {
        "match": _("Match"),
        "all": _("all"),
        "any": _("any"),
        "none": _("none"),
        "of_these": _("of these conditions"),
        "add_condition": _("Add condition"),
        "add_group": _("Add group"),
        "remove": _("Remove"),
        "remove_group": _("Remove group"),
        "field": _("Field"),
        "operator": _("Operator"),
        "value": _("Value"),
        "choose_field": _("Choose a field…"),
        "yes": _("yes"),
        "no": _("no"),
        "count": _("count"),
        "days": _("days"),
        "in_the_last": _("in the last"),
        "any_channel": _("on any channel"),
        # "[pricing] in the last [7] days": a window after a text (count_days has its own words).
        "within": pgettext_lazy("time window", "in the last"),
        "channel": _("Channel"),
        "comma_separated": _("comma-separated values"),
        "search_choices": _("Type to search"),
        "no_match": _("Nothing matches."),
        "empty": _("No conditions yet: every active user matches."),
        "edit_json": _("Edit as JSON"),
        "use_builder": _("Use the builder"),
        "cannot_show": _("These rules cannot be shown in the builder; edit them as JSON."),
        "invalid_json": _("The JSON is not valid; fix it or undo your change to go back to the builder."),
    }
    return {key: str(value) for key, value in labels.items()}


class AudienceRulesWidget(forms.Textarea):
    """The rules textarea plus the builder and the live preview region around it.

    Rendered with the project's template engine (not the form renderer, whose engine does not
    see ``templates/``), so the preview region is a ``partialdef`` the preview view can render.
    Without JavaScript it degrades to the JSON textarea.
    """

    template_name = RULES_TEMPLATE

    def __init__(self, *, preview_url: Any = None, attrs=None):
        base = {"rows": 14, "class": " ".join([*TEXTAREA_CLASSES, "font-mono", "text-xs"]), "spellcheck": "false"}
        super().__init__(attrs={**base, **(attrs or {})})
        self.preview_url = preview_url or reverse_lazy("admin:notifications_audience_preview")

    class Media:
        js = ["signalbox/timezone_picker.js", "signalbox/audience_builder.js"]
        css = {"all": ["signalbox/audience_builder.css", "signalbox/timezone_picker.css"]}

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget_id = context["widget"]["attrs"].get("id") or f"id_{name}"
        context.update(
            {
                "preview_url": str(self.preview_url),
                "builder_id": f"{widget_id}_builder",
                "builder": {
                    **audience_builder_schema(),
                    "labels": builder_labels(),
                    "classes": {
                        "input": " ".join([*BASE_CLASSES, "px-2", "py-1"]),
                        "select": " ".join([*BASE_CLASSES, "px-2", "py-1", "pr-8!"]),
                    },
                },
            }
        )
        return context

    def render(self, name, value, attrs=None, renderer=None):
        return mark_safe(render_to_string(self.template_name, self.get_context(name, value, attrs)))


class AudienceRulesField(SafeJSONField):
    """JSON text -> rule tree through ``audience_rules_parse`` (``json_loads_safe`` with the rules'
    own limits and sentences): every bad input is a form error, when cleaning and when the bound
    value is shown again.
    """

    def to_python(self, value):
        if self.disabled:
            return value
        if value in self.empty_values:
            return {}
        if not isinstance(value, str):
            return value
        try:
            return audience_rules_parse(text=value)
        except AudienceRuleError as exc:
            raise ValidationError(exc.messages, code="invalid") from None

    def bound_data(self, data, initial):
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return audience_rules_parse(text=data)
        except AudienceRuleError:
            return InvalidJSONInput(data)

    def prepare_value(self, value):
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps({} if value is None else value, ensure_ascii=False, indent=2)


class AudienceAdminForm(forms.ModelForm):
    class Meta:
        model = Audience
        fields = ["name", "description", "kind", "rules"]
        field_classes = {"rules": AudienceRulesField}
        widgets = {"rules": AudienceRulesWidget()}

    def clean(self):
        cleaned = super().clean()
        # A static audience ignores its rules, so only a rule audience must have a valid tree.
        if cleaned.get("kind") == Audience.Kind.RULES and "rules" in cleaned:
            for message in audience_rules_validate(rules=cleaned["rules"]):
                self.add_error("rules", message)
        return cleaned


class AudienceUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        widget=UnfoldAdminFileFieldWidget,
        help_text=_("One email address or username per row (a header row “email” or “username” is optional). "
                    "UTF-8 or GBK."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise ValidationError(
                _("The file is larger than %(max)d MB."), params={"max": MAX_IMPORT_BYTES // (1024 * 1024)}
            )
        return upload


class AudienceMemberInline(TabularInline):
    model = AudienceMember
    fields = ["user", "added_at"]
    readonly_fields = ["added_at"]
    autocomplete_fields = ["user"]
    ordering = ["-added_at", "-pk"]
    extra = 0
    per_page = 25

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


class AudienceChangeList(ChangeList):
    """Attaches each listed audience's live size, computed for the whole page in two queries."""

    def get_results(self, request):
        super().get_results(request)
        sizes = audience_sizes(audiences=self.result_list)
        for audience in self.result_list:
            audience.live_size = sizes.get(audience.pk)


@admin.register(Audience)
class AudienceAdmin(ConditionsOnlyWhenEditable, ModelAdmin):
    form = AudienceAdminForm
    list_display = ["name", "kind", "member_count", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name", "description"]
    readonly_fields = ["live_size", "created_by", "created_at", "updated_at"]
    conditional_fields = {"rules": "kind == 'rules'"}
    actions_detail = ["upload_members"]
    list_per_page = 25

    def get_fieldsets(self, request, obj=None):
        main = ["name", "description", "kind", "rules"]
        if obj is not None and obj.kind == Audience.Kind.STATIC:
            main.append("live_size")
        fieldsets = [(None, {"fields": main})]
        if obj is not None:
            fieldsets.append((_("History"), {"fields": ["created_by", "created_at", "updated_at"]}))
        return fieldsets

    def get_inlines(self, request, obj):
        if obj is not None and obj.kind == Audience.Kind.STATIC:
            return [AudienceMemberInline]
        return []

    def get_changelist(self, request, **kwargs):
        return AudienceChangeList

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if change and "rules" in form.changed_data:
            from ..journeys.entries import audience_rules_changed

            audience_rules_changed(audience_id=obj.pk)

    @display(description=_("Members"))
    def member_count(self, obj: Audience) -> str:
        size = getattr(obj, "live_size", None)
        return _("invalid rules") if size is None else intcomma(size)

    @display(description=_("Active members now"))
    def live_size(self, obj: Audience) -> str:
        return intcomma(audience_preview(audience=obj, sample_size=0).count)

    def get_urls(self):
        return [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="notifications_audience_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """The live count and sample for the rules being edited (POST: the rules may be long)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        preview, errors = None, []
        try:
            preview = audience_preview(rules=audience_rules_parse(text=request.POST.get("rules")))
        except AudienceRuleError as exc:
            errors = exc.messages
        return TemplateResponse(request, f"{RULES_TEMPLATE}#preview", {"preview": preview, "errors": errors})

    def has_upload_members_permission(self, request: HttpRequest, object_id: str | None = None) -> bool:
        if not self.has_change_permission(request):
            return False
        if object_id is None:
            return True
        try:
            pk = int(unquote(str(object_id)))
        except ValueError:
            return False
        return Audience.objects.filter(pk=pk, kind=Audience.Kind.STATIC).exists()

    @action(
        description=_("Upload members"), url_path="upload-members", icon="upload_file",
        permissions=["upload_members"],
    )
    def upload_members(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Add users from a CSV of emails or usernames; rows that match no one are listed back."""
        audience = self.get_object(request, unquote(object_id))
        if audience is None:
            raise Http404
        form = AudienceUploadForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = audience_members_import_csv(
                    audience=audience, data=form.cleaned_data["file"].read(), actor=request.user
                )
            except AudienceImportError as exc:
                form.add_error("file", str(exc))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": audience,
            "title": _("Upload members to %(audience)s") % {"audience": audience},
            "form": form,
            "result": result,
            "change_url": reverse("admin:notifications_audience_change", args=[audience.pk]),
            "max_megabytes": MAX_IMPORT_BYTES // (1024 * 1024),
        }
        template = f"{UPLOAD_TEMPLATE}#upload" if request.htmx else UPLOAD_TEMPLATE
        return TemplateResponse(request, template, context)
