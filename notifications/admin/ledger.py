"""Admin for the notifications models. Ledger tables (deliveries, receipts, audit) are read-only:
they record what happened, and nobody edits history from a form."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeDateTimeFilter

from accounts.roles import allows
from channels_adapters.features import STANDARD_FEATURES
from channels_adapters.handler import channels
from channels_adapters.forms import ChatIdsAdminForm

from .. import categories
from ..receipts import tracking
from ..jsonsafe import SAFE_JSON_FORMFIELDS
from ..querysets import normalise_address, suppression_keys
from ..redaction import inert_value
from ..timezones import AdminTimeZoneWidget, TimeZoneField
from ..models import (
    AuditEntry,
    Category,
    Channel,
    Delivery,
    DeliveryEvent,
    Notification,
    Preference,
    RecipientProfile,
    Suppression,
)
from .optout_forms import CategoryForm, SuppressionForm


class ReadOnlyAdminMixin:
    """No add, change or delete for anyone: the row is a record, not a setting."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RecipientProfile)
class RecipientProfileAdmin(ModelAdmin):
    formfield_overrides = SAFE_JSON_FORMFIELDS  # chat ids: nested or huge JSON is a form error
    form = ChatIdsAdminForm  # the personal chat address is checked (SSRF) before it is saved
    list_display = ["user", "phone", "timezone", "locale", "created_at"]
    list_filter = ["locale", "timezone"]
    search_fields = ["user__username", "user__email", "user__first_name", "user__last_name", "phone"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "timezone":  # canonical zones, searchable; a stored alias reads as its zone
            return TimeZoneField(label=db_field.verbose_name, widget=AdminTimeZoneWidget, initial=db_field.default)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(Category)
class CategoryAdmin(ModelAdmin):
    """Writes through ``notifications.categories``: changes that would override opt-outs are a
    Manager's, confirmed with the number of people affected, and audited."""

    form = CategoryForm
    list_display = ["shown_name", "key", "kind", "user_can_opt_out", "default_enabled"]
    list_filter = ["kind"]
    search_fields = ["name", "name_zh_hans", "key"]
    prepopulated_fields = {"key": ["name"]}

    @admin.display(description=_("name"), ordering="name")
    def shown_name(self, obj: Category) -> str:
        return obj.display_name()

    def get_fields(self, request, obj=None):
        # The confirmation only means something when changing a category people may have left.
        return [*categories.EDITABLE_FIELDS, "confirm_override"] if obj else list(categories.EDITABLE_FIELDS)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in categories.EDITABLE_FIELDS if name in form.cleaned_data}
        if not change:
            obj.pk = categories.category_create(actor=request.user, fields=values).pk
            return
        changed = {name: value for name, value in values.items() if name in form.changed_data}
        categories.category_update(
            actor=request.user, category=obj, changes=changed,
            confirm_override=form.cleaned_data.get("confirm_override", False),
        )


@admin.register(Preference)
class PreferenceAdmin(ModelAdmin):
    list_display = ["user", "category", "channel", "enabled", "digest", "updated_at"]
    list_filter = ["channel", "enabled", "digest", "category"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user", "category"]
    autocomplete_fields = ["user"]


@admin.register(Suppression)
class SuppressionAdmin(ModelAdmin):
    """Adding and lifting go through ``tracking`` (normalised address, audited); a suppression is
    never edited in place: lift it and add the right one."""

    form = SuppressionForm
    list_display = ["address", "channel", "reason", "user", "created_at"]
    list_filter = ["channel", "reason", ("created_at", RangeDateTimeFilter)]
    search_fields = ["address", "user__username", "user__email"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def get_search_results(self, request, queryset, search_term):
        """Searching for an address also finds it kept as an erased person's keyed hash (the row
        shows only the hash), so it can be lifted when its owner asks to be reachable again."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            hashed = Q()
            for channel in dict.fromkeys([*channels.settings, *STANDARD_FEATURES]):
                hashed |= Q(channel=channel, address__in=suppression_keys(channel, normalise_address(channel, term)))
            results = results | queryset.filter(hashed)
        return results, may_have_duplicates

    def save_model(self, request, obj, form, change):
        tracking.address_suppress(
            channel=obj.channel, address=obj.address, reason=obj.reason, user_id=obj.user_id, note=obj.note,
            actor=request.user,
        )
        obj.pk = Suppression.objects.for_address(obj.channel, obj.address).values_list("pk", flat=True).get()

    def delete_model(self, request, obj):
        tracking.suppression_lift(suppression=obj, actor=request.user, via="admin")

    def delete_queryset(self, request, queryset):
        for suppression in queryset:
            tracking.suppression_lift(suppression=suppression, actor=request.user, via="admin")


@admin.register(Notification)
class NotificationAdmin(ModelAdmin):
    list_display = ["shown_title", "recipient", "category", "created_at", "read_at"]
    list_filter = [("created_at", RangeDateTimeFilter), "category"]
    search_fields = ["title", "content__title", "recipient__username", "recipient__email"]
    list_select_related = ["recipient", "category", "content"]
    readonly_fields = ["delivery", "content", "created_at", "read_at"]
    autocomplete_fields = ["recipient"]
    show_full_result_count = False

    @admin.display(description=_("title"))
    def shown_title(self, obj: Notification) -> str:
        # A fan-out's text is stored once, in the shared content the row points at.
        return obj.shown_title


class DeliveryEventInline(ReadOnlyAdminMixin, TabularInline):
    model = DeliveryEvent
    fields = ["occurred_at", "kind", "source", "provider_event_id", "data"]
    readonly_fields = fields
    ordering = ["occurred_at", "id"]
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["id", "channel", "address", "recipient", "status", "status_reason", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "channel", "category", ("created_at", RangeDateTimeFilter)]
    search_fields = ["=idempotency_key", "=address", "=provider_message_id"]
    list_select_related = ["recipient"]
    inlines = [DeliveryEventInline]
    show_full_result_count = False

    def get_queryset(self, request):
        # Webhook posts have their own list (Webhook messages), read by those who manage webhooks.
        return super().get_queryset(request).to_people()

    def get_fields(self, request, obj=None):
        # A delivery's content and error can carry the recipient's working links (a password
        # reset sent by notify()): staff see them inert unless they may reveal (superusers).
        fields = [f.name for f in Delivery._meta.fields]
        if allows(request.user, "outbox.reveal"):
            return fields
        return [{"content": "shown_content", "last_error": "shown_last_error"}.get(f, f) for f in fields]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description=_("content"))
    def shown_content(self, obj: Delivery):
        return inert_value(obj.content)

    @admin.display(description=_("last error"))
    def shown_last_error(self, obj: Delivery) -> str:
        return inert_value(obj.last_error)


def source_label(source: str) -> str:
    """A receipt's source as people read it: a "sent" receipt's source is its channel's alias
    ("inapp"), shown by the channel's (translated) name; providers and our own trackers ("smtp",
    "pixel", "twilio") are names and stay as they are."""
    return str(dict(Channel.choices).get(source, source))


class SourceFilter(admin.SimpleListFilter):
    title = _("source")
    parameter_name = "source"

    def lookups(self, request, model_admin):
        sources = DeliveryEvent.objects.order_by().values_list("source", flat=True).distinct()
        return sorted(((s, source_label(s)) for s in sources), key=lambda pair: pair[1].casefold())

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["occurred_at", "kind", "shown_source", "delivery", "provider_event_id"]
    list_filter = ["kind", SourceFilter, ("occurred_at", RangeDateTimeFilter)]
    search_fields = ["=provider_event_id", "=delivery__id"]
    list_select_related = ["delivery"]
    show_full_result_count = False

    @admin.display(description=_("source"), ordering="source")
    def shown_source(self, obj: DeliveryEvent) -> str:
        return source_label(obj.source)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["created_at", "actor_shown", "action", "target_repr"]
    list_filter = ["action", ("created_at", RangeDateTimeFilter)]
    search_fields = ["actor_repr", "action", "target_repr"]
    fields = ["created_at", "actor", "actor_shown", "action", "target_type", "target_id", "target_repr", "changes"]
    readonly_fields = fields

    @admin.display(description=_("actor"), ordering="actor_repr")
    def actor_shown(self, obj: AuditEntry) -> str:
        return obj.actor_label
