"""Demo wiring for ``make run``: "order paid -> notify the customer (in-app + email)" out of the box.

``demo_triggers_ensure()`` is called by the seed command. It creates what is missing and leaves
alone what exists, so a trigger a user edited or disabled in the admin stays as they left it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction

from notifications.models import Category, MessageTemplate, MessageTemplateVariant, SignalTrigger
from notifications.services import category_ensure
from notifications.triggers.registry import MODEL_POST_SAVE
from notifications.triggers.services import trigger_create

from .models import Customer, Order

ORDER_PAID_TEMPLATE = "order-paid"
ORDER_PAID_TRIGGER = "Order paid → customer"
# The transactional category the demo data uses for order messages (demo_shop/seeding/data.py).
ORDER_CATEGORY = ("order-updates", "Order updates")

ORDER_PAID_EN = {
    "inapp_title": "Payment received for order {{ instance.number }}",
    "inapp_body": "Thanks, {{ recipient.first_name }}! We received {{ instance.total }} {{ instance.currency }} "
                  "for order {{ instance.number }}.",
    "inapp_url": "/notifications/",
    "email_subject": "Payment received: order {{ instance.number }}",
    "email_body": (
        "Hi {{ recipient.first_name }},\n\n"
        "we received your payment of **{{ instance.total }} {{ instance.currency }}** for order "
        "**{{ instance.number }}**. We will let you know when it ships.\n\n"
        "Thank you for shopping with us."
    ),
}
ORDER_PAID_ZH = {
    "inapp_title": "订单 {{ instance.number }} 已付款",
    "inapp_body": "{{ recipient.first_name }}，您好！我们已收到订单 {{ instance.number }} 的付款 "
                  "{{ instance.total }} {{ instance.currency }}。",
    "inapp_url": "/notifications/",
    "email_subject": "已收到付款：订单 {{ instance.number }}",
    "email_body": (
        "{{ recipient.first_name }}，您好：\n\n"
        "我们已收到订单 **{{ instance.number }}** 的付款 **{{ instance.total }} {{ instance.currency }}**。"
        "发货后我们会再通知您。\n\n"
        "感谢您的惠顾。"
    ),
}


# A pending order of the demo login's, for "Mark as paid" in the admin: its inbox shows the result.
DEMO_PENDING_ORDER = ("SB-DEMO-3", Decimal("42.00"))


@dataclass(frozen=True)
class DemoTriggers:
    template: MessageTemplate
    trigger: SignalTrigger
    created: bool


def demo_triggers_ensure() -> DemoTriggers:
    """The "order-paid" template (English and Simplified Chinese), its active trigger, and a pending
    order of the demo login's (when the demo recipient exists) to try it on."""
    with transaction.atomic():
        key, name = ORDER_CATEGORY
        category = Category.objects.filter(key=key).first() or category_ensure(
            key=key, name=name, kind=Category.Kind.TRANSACTIONAL, user_can_opt_out=False
        )
        template, _created = MessageTemplate.objects.get_or_create(
            key=ORDER_PAID_TEMPLATE,
            defaults={"name": "Order paid", "locale": "en", "category": category,
                      "variables": [], **ORDER_PAID_EN},
        )
        MessageTemplateVariant.objects.get_or_create(template=template, locale="zh-hans", defaults=ORDER_PAID_ZH)
        _demo_pending_order_ensure()
        trigger = SignalTrigger.objects.filter(name=ORDER_PAID_TRIGGER).first()
        if trigger is not None:
            return DemoTriggers(template=template, trigger=trigger, created=False)
        trigger = trigger_create(
            trigger=SignalTrigger(
                name=ORDER_PAID_TRIGGER,
                signal=MODEL_POST_SAVE,
                model="demo_shop.order",
                events=["updated", "created"],
                changed_field="status",
                changed_to="paid",
                recipient_path="customer.user",
                template=template,
                category=category,
                # WeChat and the app push reach the demo login (its openid and phone, seeded), so
                # paying its order shows them in the Outbox beside the email.
                channels=["inapp", "email", "wechat", "mobilepush"],
                dedupe_window=timedelta(0),
                is_active=True,
            ),
            actor=None,
        )
    return DemoTriggers(template=template, trigger=trigger, created=True)


def _demo_pending_order_ensure() -> None:
    """Created pending (which fires nothing) and never reset: once paid, it stays paid."""
    from demo_shop.seeding.data import DEMO_RECIPIENT

    customer = Customer.objects.filter(user__username=DEMO_RECIPIENT.username).first()
    if customer is None:
        return
    number, total = DEMO_PENDING_ORDER
    Order.objects.get_or_create(number=number, defaults={"customer": customer, "total": total,
                                                         "status": Order.Status.PENDING})
