"""Concurrent pixel hits over real HTTP (a threaded live server): still one receipt, every hit counted."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pytest

from notifications.receipts import tracking
from notifications.models import DeliveryEvent
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db(transaction=True)

SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"


def test_simultaneous_opens_make_one_receipt(live_server):
    delivery = DeliveryFactory(status="sent")
    pixel = live_server.url + urlsplit(tracking.open_pixel_url(delivery)).path

    def hit(_):
        with urlopen(Request(pixel, headers={"User-Agent": SAFARI}), timeout=30) as response:
            return response.status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(hit, range(24)))
    assert statuses == [200] * 24
    event = DeliveryEvent.objects.get(delivery=delivery)
    assert (event.kind, event.hits) == ("opened", 24)
