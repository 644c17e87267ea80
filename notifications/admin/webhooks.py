"""Outbound webhooks in the admin: endpoints (secret shown once, rotatable, a test event, enable
again after a disable) and the delivery log per endpoint with "resend". Writes go through
``notifications.webhooks.services``; who may: the ``webhook.manage`` action (Managers, superusers)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from accounts.roles import allows

from ..models import Delivery, WebhookAttempt, WebhookEndpoint, WebhookEvent, WebhookMessage
from ..models.webhooks import TEST_EVENT
from ..webhooks.services import (
    webhook_endpoint_delete,
    webhook_endpoint_enable,
    webhook_endpoint_save,
    webhook_messages_resend,
    webhook_secret_rotate,
    webhook_test_send,
    webhook_url_check,
)

ACTION = "webhook.manage"
CONFIRM_TEMPLATE = "notifications/admin/webhook_confirm.html"


def can_manage_webhooks(request) -> bool:
    """The sidebar's test for the "Webhooks" entry."""
    return allows(request.user, ACTION)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(label=_("events"), choices=WebhookEvent.choices, required=True,
                                       widget=UnfoldAdminCheckboxSelectMultipleWidget)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "enabled"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            webhook_url_check(url)
        except ValidationError as error:
            raise ValidationError(error.messages) from error
        return url


def _secret_message(request, secret: str) -> None:
    messages.warning(request, format_html(
        '{} <code data-testid="webhook-secret">{}</code>', _("Copy this signing secret now: it is shown only once."),
        secret))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["__str__", "url", "event_list", "health", "log_link", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "description"]
    readonly_fields = ["masked_secret", "health", "disabled_reason", "failing_since", "created_by", "created_at",
                       "log_link"]
    actions_detail = ["send_test", "rotate_secret", "enable"]

    def get_fields(self, request, obj=None):
        fields = ["url", "description", "events", "enabled"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    @display(description=_("events"))
    def event_list(self, obj: WebhookEndpoint) -> str:
        labels = dict(WebhookEvent.choices)
        return ", ".join(str(labels.get(e, e)) for e in obj.events) or "—"

    @display(description=_("signing secret"))
    def masked_secret(self, obj: WebhookEndpoint) -> str:
        return f"{obj.secret[:10]}…" if obj.secret else "—"

    @display(description=_("health"), label={_("enabled"): "success", _("failing"): "warning", _("disabled"): "danger"})
    def health(self, obj: WebhookEndpoint) -> str:
        if not obj.enabled:
            return _("disabled")
        return _("failing") if obj.failing_since else _("enabled")

    @display(description=_("delivery log"))
    def log_link(self, obj: WebhookEndpoint):
        if obj is None or obj.pk is None:
            return "—"
        url = reverse("admin:notifications_webhookmessage_changelist") + f"?webhook_endpoint__id__exact={obj.pk}"
        return format_html('<a class="text-primary-600" data-testid="webhook-log" href="{}">{}</a>', url,
                           _("Delivery log"))

    def save_model(self, request, obj, form, change):
        shown = webhook_endpoint_save(endpoint=obj, actor=request.user)
        if shown is not None:
            _secret_message(request, shown.secret)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Its messages and their log belong to the endpoint and go with it. Their own admin refuses to
        # delete a single message (the log stays whole), which must not forbid deleting the endpoint.
        # (They are collected as the ledger's deliveries, whose admin refuses deletes too.)
        owned = {str(model._meta.verbose_name) for model in (Delivery, WebhookMessage, WebhookAttempt)}
        return deleted, counts, {name for name in perms_needed if str(name) not in owned}, protected

    def delete_model(self, request, obj):
        webhook_endpoint_delete(endpoint=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_delete(endpoint=endpoint, actor=request.user)

    # Managers and superusers (``accounts.roles``: "webhook.manage"); reading with the view permission.
    def has_add_permission(self, request):
        return allows(request.user, ACTION)

    def has_change_permission(self, request, obj=None):
        return allows(request.user, ACTION)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and allows(request.user, ACTION)

    def has_manage_permission(self, request, object_id=None):
        return allows(request.user, ACTION)

    def history_view(self, request, object_id, extra_context=None):
        # Refused before the lookup, so whether a row exists is not told to those who may not see it.
        if not self.has_view_permission(request):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    # --- The verbs: a GET says what will happen, a POST does it -------------------------------------

    def _verb(self, request: HttpRequest, object_id: str, *, verb: str, question, run) -> HttpResponse:
        endpoint = self.get_object(request, object_id)
        if endpoint is None or not allows(request.user, ACTION):
            raise PermissionDenied
        change_url = reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])
        if request.method != "POST":
            return TemplateResponse(request, CONFIRM_TEMPLATE, {
                **self.admin_site.each_context(request), "opts": self.model._meta, "original": endpoint,
                "title": question % {"endpoint": endpoint}, "endpoint": endpoint, "verb": verb,
                "change_url": change_url,
                "rotation_in_grace": bool(endpoint.previous_secret and endpoint.previous_secret_expires_at
                                          and endpoint.previous_secret_expires_at > timezone.now()),
            })
        run(endpoint)
        return HttpResponseRedirect(change_url)

    @action(description=_("Send test event"), url_path="send_test", icon="send", permissions=["manage"])
    def send_test(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def run(endpoint):
            message = webhook_test_send(endpoint=endpoint, actor=request.user)
            attempt = message.webhook_attempts.order_by("-pk").first()
            if message.status == WebhookMessage.Status.SENT:
                self.message_user(request, _("The test event was accepted (HTTP %(code)s in %(ms)s ms).")
                                  % {"code": attempt.response_code, "ms": attempt.latency_ms}, messages.SUCCESS)
            else:
                self.message_user(request, _("The test event was not accepted: %(error)s")
                                  % {"error": message.last_error or message.get_status_display()}, messages.ERROR)
        return self._verb(request, object_id, verb="send_test", question=_("Send a test event to %(endpoint)s?"),
                          run=run)

    @action(description=_("Rotate secret"), url_path="rotate_secret", icon="key", permissions=["manage"])
    def rotate_secret(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def run(endpoint):
            _secret_message(request, webhook_secret_rotate(endpoint=endpoint, actor=request.user).secret)
        return self._verb(request, object_id, verb="rotate_secret",
                          question=_("Rotate the signing secret of %(endpoint)s?"), run=run)

    @action(description=_("Enable again"), url_path="enable", icon="play_arrow", permissions=["manage"])
    def enable(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def run(endpoint):
            if webhook_endpoint_enable(endpoint=endpoint, actor=request.user):
                self.message_user(request, _("Enabled: what waited in its outbox is sent now."), messages.SUCCESS)
            else:
                self.message_user(request, _("This endpoint is already enabled."), messages.WARNING)
        return self._verb(request, object_id, verb="enable", question=_("Enable %(endpoint)s again?"), run=run)


class WebhookAttemptInline(TabularInline):
    model = WebhookAttempt
    fields = ["attempted_at", "outcome", "response_code", "latency_ms", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EventTypeFilter(admin.SimpleListFilter):
    title = _("event")
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [*WebhookEvent.choices, (TEST_EVENT, _("Test event"))]

    def queryset(self, request, queryset):
        return queryset.filter(content__event_type=self.value()) if self.value() else queryset


@admin.register(WebhookMessage)
class WebhookMessageAdmin(ModelAdmin):
    list_display = ["shown_webhook_id", "webhook_endpoint", "shown_event_type", "status_badge", "attempts",
                    "response_code", "latency_ms", "short_error", "next_attempt_at", "created_at"]
    list_filter = ["status", EventTypeFilter, "webhook_endpoint"]
    search_fields = ["provider_message_id", "idempotency_key"]
    list_select_related = ["webhook_endpoint"]
    readonly_fields = ["shown_webhook_id", "webhook_endpoint", "shown_event_type", "idempotency_key", "address",
                       "status_badge", "status_reason", "attempts", "response_code", "latency_ms", "last_error",
                       "next_attempt_at", "sent_at", "failed_at", "created_at", "shown_payload"]
    fields = readonly_fields
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def get_queryset(self, request):
        # The last POST's answer, beside each message (one subquery per column, on the attempt log's key).
        last = WebhookAttempt.objects.filter(delivery_id=OuterRef("pk")).order_by("-pk")
        return super().get_queryset(request).annotate(
            last_code=Subquery(last.values("response_code")[:1]), last_latency=Subquery(last.values("latency_ms")[:1]))

    @display(description=_("webhook id"), ordering="provider_message_id")
    def shown_webhook_id(self, obj: WebhookMessage) -> str:
        return obj.webhook_id

    @display(description=_("event"))
    def shown_event_type(self, obj: WebhookMessage) -> str:
        return obj.event_type

    @display(description=_("payload"))
    def shown_payload(self, obj: WebhookMessage):
        return format_html("<pre class=\"whitespace-pre-wrap\">{}</pre>",
                           json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @display(description=_("response code"))
    def response_code(self, obj: WebhookMessage):
        return obj.last_code

    @display(description=_("latency (ms)"))
    def latency_ms(self, obj: WebhookMessage):
        return obj.last_latency

    @display(description=_("status"), label={"sent": "success", "planned": "info", "sending": "info",
                                              "deferred": "warning", "failed": "danger", "unknown": "warning"})
    def status_badge(self, obj: WebhookMessage):
        return obj.status, obj.get_status_display()

    @display(description=_("last error"))
    def short_error(self, obj: WebhookMessage) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else (obj.last_error or "—")

    @admin.action(description=_("Resend the selected messages"), permissions=["resend"])
    def resend(self, request, queryset):
        count = webhook_messages_resend(messages=queryset, actor=request.user)
        messages.success(request, ngettext("%(count)d message queued again.", "%(count)d messages queued again.",
                                           count) % {"count": count})

    def has_resend_permission(self, request):
        return allows(request.user, ACTION)

    def history_view(self, request, object_id, extra_context=None):
        # Refused before the lookup, so whether a row exists is not told to those who may not see it.
        if not self.has_view_permission(request):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
