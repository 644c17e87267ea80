"""The shop's rows about a person, for ``notifications.privacy`` (export and erasure).

Orders stay (the shop's books and the triggers' history count them) with nothing personal on
them; the customer row keeps only the VIP flag, which the audiences count.
"""

from __future__ import annotations

from notifications.privacy.kinds import ModelKind

from .models import Customer, Order

KINDS = [
    ModelKind(
        "shop_customer", Customer, lambda person: Customer.objects.filter(user_id=person.pk),
        lambda person, queryset: queryset.update(company=""), links=("demo_shop.Customer.user",),
    ),
    ModelKind(
        "shop_orders", Order, lambda person: Order.objects.filter(customer__user_id=person.pk),
        lambda person, queryset: 0, links=("demo_shop.Order.customer",),
    ),
]
