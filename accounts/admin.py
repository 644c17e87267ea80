"""Sign-in lockouts in the admin (Unfold), for superusers only.

django-axes' own admin is switched off (``AXES_ENABLE_ADMIN = False``): its plain
``admin.ModelAdmin`` pages do not fit the Unfold shell and delete attempts without an audit entry.
No staff group holds an ``axes`` permission (``accounts.roles``), so only superusers see these.
"""

from __future__ import annotations

from axes.models import AccessAttempt, AccessLog
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin

from . import conf
from .lockout import lockouts_clear


@admin.register(AccessAttempt)
class LockoutAdmin(ModelAdmin):
    """Failed sign-ins per (account, address, browser). Deleting a row, or the "Unlock" action,
    forgets its failures: the account and address may try again at once."""

    list_display = ["attempt_time", "username", "ip_address", "failures_since_start", "counting", "path_info"]
    list_filter = ["attempt_time", "path_info"]
    search_fields = ["username", "ip_address"]
    date_hierarchy = "attempt_time"
    # The form data axes keeps (get_data/post_data) stays out of sight: nothing there helps unlock.
    fields = ["username", "ip_address", "user_agent", "path_info", "failures_since_start", "attempt_time"]
    readonly_fields = fields
    actions = ["unlock"]

    @admin.display(description=_("counting towards a lockout"), boolean=True)
    def counting(self, obj: AccessAttempt) -> bool:
        return obj.attempt_time >= timezone.now() - conf.login_cooloff()

    @admin.action(description=_("Unlock: forget these failed sign-ins"), permissions=["delete"])
    def unlock(self, request, queryset):
        removed = lockouts_clear(attempts=queryset, actor=request.user)
        self.message_user(
            request,
            ngettext("Forgot %(count)d failed sign-in record.", "Forgot %(count)d failed sign-in records.", removed)
            % {"count": removed},
            messages.SUCCESS,
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        lockouts_clear(attempts=[obj], actor=request.user)

    def delete_queryset(self, request, queryset):
        lockouts_clear(attempts=queryset, actor=request.user)


@admin.register(AccessLog)
class SignInLogAdmin(ModelAdmin):
    """Successful sign-ins and sign-outs, as axes records them: read only."""

    list_display = ["attempt_time", "logout_time", "username", "ip_address", "path_info"]
    list_filter = ["attempt_time", "path_info"]
    search_fields = ["username", "ip_address"]
    date_hierarchy = "attempt_time"
    fields = ["username", "ip_address", "user_agent", "path_info", "attempt_time", "logout_time"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
