"""The shop's customer-facing page: "My orders", the kind of page an integrator owns, with the
embeddable inbox (``{% signalbox_inbox %}``) in its header.

Paying a pending order here is the same ``order_mark_paid`` the admin action calls, so the seeded
trigger "Order paid → customer" notifies the customer and the bell updates live.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from .models import Order
from .services import order_mark_paid


def _own_orders(request: HttpRequest):
    return Order.objects.filter(customer__user=request.user)


@login_required
@require_GET
def orders(request: HttpRequest) -> HttpResponse:
    return render(request, "demo_shop/orders.html", {"orders": list(_own_orders(request)[:50])})


@login_required
@require_POST
def order_pay(request: HttpRequest, pk: int) -> HttpResponse:
    order = _own_orders(request).filter(pk=pk).first()
    if order is None:
        # Someone else's order is indistinguishable from a missing one.
        raise Http404
    order_mark_paid(order=order)
    return redirect("shop:orders")
