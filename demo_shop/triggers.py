"""The shop's models, offered to the trigger builder. Imported from ``DemoShopConfig.ready()``.

The field lists are the allow-list a marketer's conditions and templates may use; a customer's
contact details stay out of it (templates get the recipient's own name from ``recipient``).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from notifications.triggers import register_model

from .models import Customer, Order

register_model(
    Customer,
    fields=["user", "company", "vip", "created_at"],
    recipient_paths=["user"],
    label=_("Shop customer"),
)
register_model(
    Order,
    fields=["customer", "number", "status", "total", "currency", "created_at", "paid_at"],
    recipient_paths=["customer.user"],
    label=_("Shop order"),
)
