from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin

from .models import Customer, Order
from .services import order_mark_paid


@admin.register(Customer)
class CustomerAdmin(ModelAdmin):
    list_display = ["__str__", "company", "vip", "created_at"]
    list_filter = ["vip"]
    search_fields = ["user__username", "user__email", "user__first_name", "user__last_name", "company"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]


@admin.register(Order)
class OrderAdmin(ModelAdmin):
    list_display = ["number", "customer", "status", "total", "currency", "created_at", "paid_at"]
    list_filter = ["status", "currency"]
    search_fields = ["number", "customer__user__username", "customer__user__email"]
    list_select_related = ["customer__user"]
    autocomplete_fields = ["customer"]
    actions = ["mark_paid"]

    @admin.action(description=_("Mark as paid"), permissions=["change"])
    def mark_paid(self, request, queryset):
        """Pending orders become paid through ``order_mark_paid`` (signal triggers react to it)."""
        orders = list(queryset.order_by("pk"))
        paid = sum(order_mark_paid(order=order) for order in orders)
        skipped = len(orders) - paid
        self.message_user(
            request,
            ngettext("%(count)d order marked as paid.", "%(count)d orders marked as paid.", paid) % {"count": paid},
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(
                request,
                ngettext("%(count)d order was not pending and was left as it was.",
                         "%(count)d orders were not pending and were left as they were.", skipped)
                % {"count": skipped},
                messages.WARNING,
            )
