"""The campaign composer: the guided parts of the campaign page beyond the plain form.

Audience (live size, a sample, whether approval will be needed) -> content (a value for each
variable the template declares, a per-locale preview) -> channels and schedule -> pre-flight
-> submit or launch. Every panel is a GET that changes nothing; duplicating is a POST through
``campaign_duplicate``. The rules live in ``notifications.campaigns`` (preflight, values,
services); this module only gathers what the panels show.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.admin import action as admin_action
from django.contrib.admin import display as admin_display
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from unfold.widgets import UnfoldAdminTextInputWidget

from .. import conf
from ..audiences import AudienceRuleError, audience_preview
from ..campaigns import services
from ..campaigns.preflight import campaign_content_preview, campaign_preflight
from ..campaigns.services import CampaignError
from ..campaigns.values import declared_variables, template_values_clean
from ..models import Audience, Campaign, MessageTemplate
from ..templating.preview import CHANNEL_LABELS

VALUE_PREFIX = "value__"
PANELS = "notifications/admin/campaign_composer.html"


def by_id(model, value):
    """The row with primary key ``value`` (typed text), or None."""
    text = str(value or "").strip()
    return model.objects.filter(pk=int(text)).first() if text.isdigit() else None


def value_field_names(template: MessageTemplate | None) -> list[str]:
    return [VALUE_PREFIX + name for name in declared_variables(template)]


def template_from(form: forms.ModelForm) -> MessageTemplate | None:
    """The template the form is about: the one posted, else the campaign's."""
    if form.is_bound and form.data.get("template"):
        return by_id(MessageTemplate, form.data.get("template"))
    return form.instance.template if form.instance.template_id else None


def add_value_fields(form: forms.ModelForm) -> None:
    """A text field per declared variable, prefilled with the campaign's stored value."""
    stored = form.instance.template_values or {}
    for name in declared_variables(template_from(form)):
        form.fields[VALUE_PREFIX + name] = forms.CharField(
            label=_("Value of “%(name)s”") % {"name": name}, required=False, initial=stored.get(name, ""),
            widget=UnfoldAdminTextInputWidget(), help_text=_("Every recipient's message shows this value."),
        )


def clean_values(form: forms.ModelForm, data: dict) -> None:
    given = {name[len(VALUE_PREFIX):]: data.get(name) for name in form.fields if name.startswith(VALUE_PREFIX)}
    try:
        data["template_values"] = template_values_clean(template=data.get("template"), values=given)
    except ValueError as error:
        form.add_error("template", str(error))


# The states whose campaign the form edits: a draft, one sent back with changes requested, and an
# approved one (the edit voids the approval: services.campaign_update). Waiting for a Manager, and
# from launch on, its page is read-only: state, progress and the actions of that state (the buttons).
FORM_EDITS = (Campaign.Status.DRAFT, Campaign.Status.CHANGES_REQUESTED, Campaign.Status.APPROVED)
FORM_DELETES = (Campaign.Status.DRAFT, Campaign.Status.CHANGES_REQUESTED)


def _read_only(obj) -> bool:
    return obj is not None and obj.status not in FORM_EDITS


class ComposerMixin:
    """Panels, read-only displays, duplicate: mixed into ``CampaignAdmin``."""

    actions = ["duplicate_selected"]

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not _read_only(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.status in FORM_DELETES)

    def get_readonly_fields(self, request, obj=None):
        if _read_only(obj):
            return [f for _name, opts in self.get_fieldsets(request, obj) for f in opts["fields"]]
        return ["audience_summary", "content_preview"]

    def get_fieldsets(self, request, obj=None):
        if _read_only(obj):
            swap = {"channel_1": ["channels_display"], "channel_2": [], "channel_3": [], "audience_summary": [],
                    "content_preview": ["template_values_display"]}
            return [(name, {"fields": [g for f in opts["fields"] for g in swap.get(f, [f])]})
                    for name, opts in self.fieldsets]
        posted = request.POST.get("template") if request.method == "POST" else None
        template = by_id(MessageTemplate, posted) if posted else getattr(obj, "template", None)
        values = value_field_names(template)
        return [(name, {"fields": [g for f in opts["fields"]
                                   for g in ([*values, f] if f == "content_preview" else [f])]})
                for name, opts in self.fieldsets]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The value fields are added by the form itself (they depend on the posted template).
        fields = kwargs.get("fields")
        if fields is None:
            fields = [f for _name, opts in self.get_fieldsets(request, obj) for f in opts["fields"]]
        kwargs["fields"] = [f for f in fields if not f.startswith(VALUE_PREFIX)]
        return super().get_form(request, obj, change=change, **kwargs)

    @admin_display(description=_("Audience size"))
    def audience_summary(self, obj):
        # The form's audience when the page has one to edit; a read-only page has no such input,
        # so the campaign's own audience (``campaign``) is asked about instead.
        return format_html(
            '<div data-testid="composer-audience" hx-get="{}" hx-trigger="load, change from:#id_audience" '
            'hx-include="#campaign_form" hx-vals=\'{{"campaign": "{}"}}\' hx-swap="innerHTML" class="text-sm">…</div>',
            reverse("admin:notifications_campaign_composer_audience"), obj.pk if obj is not None and obj.pk else "",
        )

    @admin_display(description=_("Preview"))
    def content_preview(self, obj):
        return format_html(
            '<div data-testid="composer-content" hx-get="{}" hx-trigger="load, change from:#campaign_form" '
            'hx-include="#campaign_form" hx-swap="innerHTML" class="text-sm w-full">…</div>',
            reverse("admin:notifications_campaign_composer_content"),
        )

    @admin_display(description=_("Channels"))
    def channels_display(self, obj):
        names = [str(CHANNEL_LABELS.get(c, c)) for c in (obj.channels or [])] if obj else []
        return ", ".join(names) or "—"

    @admin_display(description=_("Template values"))
    def template_values_display(self, obj):
        values = (obj.template_values or {}) if obj else {}
        return "; ".join(f"{name} = {value}" for name, value in values.items()) or "—"

    def composer_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/preflight/", view(self.preflight_view), name="notifications_campaign_preflight"),
            path("<int:pk>/duplicate/", view(self.duplicate_view), name="notifications_campaign_duplicate"),
            path("composer/audience/", view(self.composer_audience_view), name="notifications_campaign_composer_audience"),
            path("composer/content/", view(self.composer_content_view), name="notifications_campaign_composer_content"),
        ]

    def composer_audience_view(self, request: HttpRequest) -> HttpResponse:
        """The chosen audience's live size and first recipients, and whether that size needs approval."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if "audience" in request.GET:
            audience = by_id(Audience, request.GET["audience"])
        else:
            campaign = by_id(Campaign, request.GET.get("campaign"))
            audience = campaign.audience if campaign is not None else None
        preview, broken = None, ""
        try:
            preview = audience_preview(audience=audience, sample_size=5) if audience else None
        except AudienceRuleError as error:
            broken = str(error)
        threshold = conf.approval_threshold()
        return TemplateResponse(request, f"{PANELS}#audience", {
            "preview": preview, "threshold": threshold, "broken": broken,
            "needs_approval": bool(preview and preview.count > threshold),
        })

    def composer_content_view(self, request: HttpRequest) -> HttpResponse:
        """The campaign as being edited, rendered for one real recipient per locale of its audience."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        query = request.GET
        template = by_id(MessageTemplate, query.get("template"))
        audience = by_id(Audience, query.get("audience"))
        context = {"template": template, "samples": [], "problems": [], "unsaved_names": []}
        if template is not None:
            names = declared_variables(template)
            context["unsaved_names"] = [n for n in names if VALUE_PREFIX + n not in query]
            if audience is not None:
                channels = [c for c in (query.get(f"channel_{i}") for i in (1, 2, 3)) if c in CHANNEL_LABELS]
                values = {n: query.get(VALUE_PREFIX + n, "") for n in names}
                campaign = Campaign(audience=audience, template=template, name=query.get("name", ""),
                                    channels=list(dict.fromkeys(channels)),
                                    template_values={k: v for k, v in values.items() if v.strip()})
                context["samples"], context["problems"] = campaign_content_preview(campaign=campaign)
        return TemplateResponse(request, f"{PANELS}#content", context)

    def preflight_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign.objects.select_related("audience", "template", "category"), pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        actions = [a for a in self._status_context(request, campaign)["campaign_actions"] if a[0] in ("submit", "launch")]
        return TemplateResponse(request, f"{PANELS}#preflight", {
            "campaign": campaign, "report": campaign_preflight(campaign=campaign), "campaign_actions": actions,
        })

    def duplicate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_POST(self._duplicate)(request, pk)

    def _duplicate(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=pk)
        try:
            copy = services.campaign_duplicate(campaign=campaign, actor=request.user)
        except CampaignError as error:
            raise PermissionDenied(str(error)) from error
        self.message_user(request, _("Duplicated as a new draft: change what differs, then run pre-flight."),
                          level=messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:notifications_campaign_change", args=[copy.pk]))

    @admin_action(description=_("Duplicate selected campaigns as drafts"), permissions=["add"])
    def duplicate_selected(self, request: HttpRequest, queryset) -> None:
        try:
            copies = [services.campaign_duplicate(campaign=c, actor=request.user) for c in queryset]
        except CampaignError as error:
            raise PermissionDenied(str(error)) from error
        self.message_user(request, _("%(n)d new drafts.") % {"n": len(copies)}, level=messages.SUCCESS)
