from django.contrib import admin
from unfold.admin import ModelAdmin

from .models import Customer, Order


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
