"""Broadcasts in the admin: an announcement to every inbox (or a category's subscribers).

The add page is the "send" form: saving calls ``services.broadcast_send`` (one row whatever the
audience, audited, open inboxes told at once). A sent broadcast is not edited; deleting it
withdraws it from every inbox (``services.broadcast_withdraw``, audited). Who may do what is
the ``broadcast.send`` action (send, withdraw) and viewing inbox notifications (read); the
same rules are in ``accounts.url_policy`` for these pages.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display

from accounts.roles import allows

from ..inbox import services
from ..models import Broadcast

VIEW_PERMISSION = "notifications.view_notification"


class BroadcastForm(forms.ModelForm):
    class Meta:
        model = Broadcast
        fields = ["title", "body", "url", "category"]

    def clean(self):
        cleaned = super().clean()
        problems = services.broadcast_problems(title=cleaned.get("title") or "", url=cleaned.get("url") or "")
        for field, messages in problems.items():
            for message in messages:
                self.add_error(field, message)
        return cleaned


@admin.register(Broadcast)
class BroadcastAdmin(ModelAdmin):
    form = BroadcastForm
    list_display = ["title", "audience", "created_at", "created_by", "reads"]
    list_filter = ["category"]
    search_fields = ["title"]
    list_select_related = ["category", "created_by"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(read_count=Count("reads"))

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["title", "body", "url", "category", "created_by", "created_at", "reads"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["title", "body", "url", "category"]
        return ["title", "body", "url", "category", "created_by", "created_at", "reads"]

    @display(description=_("audience"))
    def audience(self, obj: Broadcast) -> str:
        if obj.category_id is None:
            return _("Everyone")
        return _("Subscribers of %(category)s") % {"category": obj.category}

    @display(description=_("read by"))
    def reads(self, obj: Broadcast) -> int:
        count = getattr(obj, "read_count", None)
        return obj.reads.count() if count is None else count

    # Permissions: the broadcast rules, not the stock model permissions (see the module docstring).
    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(VIEW_PERMISSION) or allows(request.user, services.BROADCAST_ACTION)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return allows(request.user, services.BROADCAST_ACTION)

    def has_change_permission(self, request, obj=None):
        return False  # an announcement that went out is not rewritten; withdraw it instead

    def has_delete_permission(self, request, obj=None):
        return allows(request.user, services.BROADCAST_ACTION)

    def history_view(self, request, object_id, extra_context=None):
        # Django looks the object up before the permission here; refuse first, as the other pages
        # do, so whether a broadcast exists is not told to someone who may not see broadcasts.
        if not self.has_view_permission(request):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    def save_model(self, request, obj, form, change):
        sent = services.broadcast_send(
            title=obj.title, body=obj.body, url=obj.url, category=obj.category, actor=request.user
        )
        obj.pk, obj.created_at, obj.created_by = sent.pk, sent.created_at, sent.created_by

    def delete_model(self, request, obj):
        services.broadcast_withdraw(broadcast=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for broadcast in queryset:
            services.broadcast_withdraw(broadcast=broadcast, actor=request.user)
