"""Shop services: the writes the demo shop's admin makes."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .models import Order


def order_mark_paid(*, order: Order, now: datetime | None = None) -> bool:
    """Mark a pending order paid; ``False`` (and no save) if it is not pending.

    A plain ``save()`` on purpose: it is the kind of save an integrating app makes, and signal
    triggers ("order paid -> notify the customer") react to it.
    """
    with transaction.atomic():
        current = Order.objects.select_for_update().filter(pk=order.pk).values_list("status", flat=True).first()
        if current != Order.Status.PENDING:
            return False
        order.status = Order.Status.PAID
        order.paid_at = now or timezone.now()
        order.save(update_fields=["status", "paid_at"])
    return True
