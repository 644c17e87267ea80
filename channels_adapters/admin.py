"""Admin for web push subscriptions: a read-mostly list. Browsers create the rows; staff may
only look, and delete one (e.g. a device a user reports as lost)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from notifications.admin import ReadOnlyAdminMixin

from .models import CapturedMessage, WebPushSubscription


@admin.register(WebPushSubscription)
class WebPushSubscriptionAdmin(ModelAdmin):
    list_display = ["user", "push_service", "user_agent", "created_at", "last_used_at"]
    list_filter = ["created_at", "last_used_at"]
    search_fields = ["user__username", "user__email", "endpoint", "user_agent"]
    list_select_related = ["user"]
    readonly_fields = ["user", "endpoint", "p256dh", "auth", "user_agent", "created_at", "last_used_at"]
    date_hierarchy = "created_at"

    @admin.display(description=_("push service"))
    def push_service(self, obj: WebPushSubscription) -> str:
        # The full endpoint is a capability URL; the list shows only its host.
        return urlsplit(obj.endpoint).hostname or ""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CapturedMessage)
class OutboxAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """What the capture channel kept: read it, never edit it."""

    list_display = ["created_at", "channel", "address", "subject"]
    list_filter = ["channel", "created_at"]
    search_fields = ["address", "subject", "=delivery_id"]
    readonly_fields = ["created_at", "channel", "address", "subject", "text", "html", "url", "headers", "delivery_id"]
    show_full_result_count = False
