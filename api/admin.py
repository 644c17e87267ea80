"""API keys in the admin: superusers make them (the key is shown once), see when each was last
used, and revoke them. Making and revoking go through ``api.keys`` (audited); a key is never
edited, only revoked and replaced. Who may: the ``apikey.manage`` action (superusers only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from accounts.roles import allows

from .keys import api_key_create, api_key_revoke
from .models import ApiKey, Scope

ACTION = "apikey.manage"


def can_manage_keys(request) -> bool:
    """The sidebar's test for the "API keys" entry."""
    return allows(request.user, ACTION)


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"), choices=Scope.choices, widget=UnfoldAdminCheckboxSelectMultipleWidget, required=False
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "rate_limit_per_minute"]


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "scope_list", "rate_limit_per_minute", "last_used_at", "state", "created_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    ordering = ["-created_at"]
    actions = ["revoke"]
    readonly_fields = ["name", "prefix", "scope_list", "rate_limit_per_minute", "created_by", "created_at",
                       "last_used_at", "revoked_at"]

    def get_fields(self, request, obj=None):
        return ["name", "scopes", "rate_limit_per_minute"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    @display(description=_("scopes"))
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes) or "—"

    @display(description=_("state"), label={_("active"): "success", _("revoked"): "danger"})
    def state(self, obj: ApiKey) -> str:
        return _("active") if obj.revoked_at is None else _("revoked")

    def save_model(self, request, obj, form, change):
        made = api_key_create(name=obj.name, scopes=form.cleaned_data["scopes"],
                              rate_limit_per_minute=obj.rate_limit_per_minute, actor=request.user)
        obj.pk, obj.prefix, obj.created_at = made.key.pk, made.key.prefix, made.key.created_at
        messages.warning(request, format_html(
            "{} <code>{}</code>", _("Copy this key now: it is shown only once."), made.secret))

    @action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        revoked = sum(api_key_revoke(key=key, actor=request.user) for key in queryset)
        messages.success(request, ngettext("%(count)d key revoked.", "%(count)d keys revoked.", revoked)
                         % {"count": revoked})

    def history_view(self, request, object_id, extra_context=None):
        # Refused before the lookup, so whether a key exists is not told to those who may not see keys.
        if not self.has_view_permission(request):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    # Superusers only (``accounts.roles``: the "apikey.manage" action).
    def has_module_permission(self, request):
        return allows(request.user, ACTION)

    def has_view_permission(self, request, obj=None):
        return allows(request.user, ACTION)

    def has_add_permission(self, request):
        return allows(request.user, ACTION)

    def has_change_permission(self, request, obj=None):
        return False  # revoke and make a new one instead

    def has_delete_permission(self, request, obj=None):
        return False  # revoked keys stay, so the audit log's calls still name them
