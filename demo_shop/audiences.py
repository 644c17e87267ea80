"""The shop's audience conditions: what an integrating app exposes to the audience builder.

Imported from ``DemoShopConfig.ready()``. Each condition is an ``Exists`` over the shop's tables,
so "customers with at least 2 paid orders in 90 days" never duplicates a user however many
orders they have.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.audiences import register_audience_field

from .models import Customer, Order

SHOP = _("Shop")
# A shipped order was paid first; a cancelled one no longer counts.
PAID_STATUSES = [Order.Status.PAID, Order.Status.SHIPPED]


def paid_orders_q(op: str, value: dict[str, int]) -> Q:
    """``gte``: at least ``count`` orders paid in the last ``days``; ``lt``: fewer (none included).

    One grouped ``EXISTS (... HAVING COUNT(*) >= count)`` per user; ``lt`` is its negation, so
    users who never ordered (or are not customers) are "fewer than" any count.
    """
    since = timezone.now() - timedelta(days=value["days"])
    enough = (
        Order.objects.filter(customer__user_id=OuterRef("pk"), status__in=PAID_STATUSES, paid_at__gte=since)
        .order_by()
        .values("customer_id")
        .annotate(paid=Count("pk"))
        .filter(paid__gte=value["count"])
    )
    q = Q(Exists(enough))
    return q if op == "gte" else ~q


def _customer_q(**lookups) -> Q:
    return Q(Exists(Customer.objects.filter(user_id=OuterRef("pk"), **lookups)))


register_audience_field(
    "shop.paid_orders",
    label=_("Paid orders"),
    group=SHOP,
    ops={"gte": _("at least"), "lt": _("fewer than")},
    value_type="count_days",
    to_q=paid_orders_q,
    help_text=_("Orders paid (or shipped) within the last N days."),
    saved_with={"demo_shop.order": "customer.user"},
)
register_audience_field(
    "shop.vip",
    label=_("VIP customer"),
    group=SHOP,
    ops={"is": _("is")},
    value_type="bool",
    to_q=lambda op, value: _customer_q(vip=True) if value else ~_customer_q(vip=True),
    saved_with={"demo_shop.customer": "user"},
    saved_columns=["vip", "user"],
)
register_audience_field(
    "shop.customer",
    label=_("Is a shop customer"),
    group=SHOP,
    ops={"is": _("is")},
    value_type="bool",
    to_q=lambda op, value: _customer_q() if value else ~_customer_q(),
    saved_with={"demo_shop.customer": "user"},
    saved_columns=["user"],
)
