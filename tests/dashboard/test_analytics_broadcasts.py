"""The analytics page counts broadcasts: one row each, however many inboxes show it, and its reads."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.api import broadcast
from notifications.models import BroadcastRead
from tests.factories import CategoryFactory, UserFactory

pytestmark = pytest.mark.django_db

ANALYTICS = reverse("dashboard:analytics")


def test_the_period_s_broadcasts_are_listed_with_their_reads(manager_client):
    news = CategoryFactory(key="news", name="News", kind="marketing")
    everyone = broadcast(title="Maintenance tonight")
    broadcast(title="What is new", category=news)
    for reader in (UserFactory(), UserFactory()):
        BroadcastRead.objects.create(broadcast=everyone, user=reader)

    html = manager_client.get(ANALYTICS).content.decode()

    assert 'data-testid="broadcasts-panel"' in html
    assert "2 broadcasts, read 2 times" in html
    assert html.index("What is new") < html.index("Maintenance tonight")  # newest first
    assert html.count('data-testid="broadcast-row"') == 2


def test_broadcasts_are_left_out_when_the_filters_exclude_the_inbox(manager_client):
    broadcast(title="Maintenance tonight")
    assert "Maintenance tonight" not in manager_client.get(ANALYTICS, {"channel": "email"}).content.decode()
    assert "Maintenance tonight" in manager_client.get(ANALYTICS, {"channel": "inapp"}).content.decode()
