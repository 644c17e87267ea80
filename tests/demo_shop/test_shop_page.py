"""The demo shop's customer page: the signed-in customer's own orders, paying one, and the
embeddable inbox in its header."""

from __future__ import annotations

import pytest
from django.urls import reverse

from demo_shop.models import Order
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

ORDERS = reverse("shop:orders")


def test_page_needs_sign_in(client):
    assert client.get(ORDERS)["Location"].startswith(reverse("login"))


def test_page_lists_own_orders_and_carries_the_inbox(recipient_client, recipient, other_recipient):
    OrderFactory(customer=CustomerFactory(user=recipient), number="SB-MINE", status="pending")
    OrderFactory(customer=CustomerFactory(user=other_recipient), number="SB-THEIRS")
    html = recipient_client.get(ORDERS).content.decode()
    assert "SB-MINE" in html and "SB-THEIRS" not in html
    assert "<signalbox-inbox " in html and "Pay now" in html


def test_paying_someone_elses_order_is_a_404(recipient_client, recipient, other_recipient):
    mine = OrderFactory(customer=CustomerFactory(user=recipient), status="pending")
    theirs = OrderFactory(customer=CustomerFactory(user=other_recipient), status="pending")
    assert recipient_client.post(reverse("shop:order_pay", args=[theirs.pk])).status_code == 404
    assert recipient_client.get(reverse("shop:order_pay", args=[mine.pk])).status_code == 405
    assert recipient_client.post(reverse("shop:order_pay", args=[mine.pk])).status_code == 302
    assert dict(Order.objects.values_list("pk", "status")) == {mine.pk: "paid", theirs.pk: "pending"}
