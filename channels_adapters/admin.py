"""Admin for web push subscriptions: a read-mostly list. Browsers create the rows; staff may
only look, and delete one (e.g. a device a user reports as lost)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display

from accounts.roles import allows
from notifications.admin import ReadOnlyAdminMixin
from notifications.redaction import inert_value, without_open_pixels

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


class ChannelFilter(admin.SimpleListFilter):
    """The channels by name, in the reader's language (the column stores the alias, "email")."""

    title = _("channel")
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        from notifications.models import Channel

        return Channel.choices

    def queryset(self, request, queryset):
        return queryset.filter(channel=self.value()) if self.value() else queryset


@admin.register(CapturedMessage)
class OutboxAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """What the capture channel kept: read it, never edit it.

    Captured messages carry their recipients' working links (unsubscribe, preferences, password
    reset). Staff see them inert (``notifications.redaction``); only ``outbox.reveal``
    (superusers, who may set any password anyway) see the message exactly as it was sent.
    """

    list_display = ["created_at", "channel_shown", "address", "subject"]
    list_filter = [ChannelFilter, "created_at"]
    search_fields = ["address", "subject", "=delivery_id"]
    fields = ["created_at", "channel_shown", "address", "subject", "shown_text", "shown_html", "shown_url",
              "shown_headers", "delivery_id"]
    readonly_fields = [*fields, "shown_email"]
    show_full_result_count = False

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._reveal = allows(request.user, "outbox.reveal")
        return obj

    @display(description=_("channel"), ordering="channel")
    def channel_shown(self, obj: CapturedMessage) -> str:
        """The channel's name in the reader's language ("email" is stored)."""
        from notifications.models import Channel

        return Channel(obj.channel).label if obj.channel in Channel.values else obj.channel

    def get_fields(self, request, obj=None):
        if obj is not None and obj.html:  # an email: rendered beside its text part, source folded
            return ["created_at", "channel_shown", "address", "subject", "shown_email", "shown_url", "shown_headers",
                    "delivery_id"]
        return self.fields

    @staticmethod
    def _shown(obj: CapturedMessage, value):
        return value if getattr(obj, "_reveal", False) else inert_value(value)

    @display(description=_("text"))
    def shown_text(self, obj: CapturedMessage) -> str:
        return self._shown(obj, obj.text)

    @display(description=_("HTML"))
    def shown_html(self, obj: CapturedMessage) -> str:
        return self._shown(obj, obj.html)

    @display(description=_("Email"))
    def shown_email(self, obj: CapturedMessage) -> str:
        """The email as a mail client shows it, in an iframe whose ``sandbox`` runs no script and
        gives it no origin (the admin's CSP still applies to it), beside its plain-text part."""
        html = self._shown(obj, obj.html)
        return format_html(
            '<div class="grid gap-4 w-full xl:grid-cols-2" data-testid="outbox-email">'
            '<iframe sandbox="" srcdoc="{}" title="{}" data-testid="outbox-rendered" '
            'class="bg-white border border-base-200 rounded-default w-full dark:border-base-800" '
            'style="min-height: 560px"></iframe>'
            '<div class="flex flex-col gap-3 min-w-0">'
            '<h3 class="font-semibold">{}</h3>'
            '<pre class="font-mono text-sm whitespace-pre-wrap" data-testid="outbox-text">{}</pre>'
            '<details><summary class="cursor-pointer font-medium">{}</summary>'
            '<pre class="font-mono mt-2 text-sm whitespace-pre-wrap break-all" data-testid="outbox-source">{}</pre>'
            '</details></div></div>',
            without_open_pixels(html), _("Email preview"), _("Plain-text part"), self._shown(obj, obj.text),
            _("HTML source"), html,
        )

    @display(description=_("link"))
    def shown_url(self, obj: CapturedMessage) -> str:
        return self._shown(obj, obj.url)

    @display(description=_("headers"))
    def shown_headers(self, obj: CapturedMessage):
        return self._shown(obj, obj.headers)
