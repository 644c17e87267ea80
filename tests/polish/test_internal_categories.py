"""'Send a test to me' keeps its category to itself: recipients never see "Template tests"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dashboard.analytics.selectors import filter_choices
from dashboard.reports.forms import ExportForm
from notifications.models import Category
from notifications.templating.preview import TEST_CATEGORY_KEY, template_send_test
from tests.factories import CategoryFactory, MessageTemplateFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tester():
    return RecipientProfileFactory(user=UserFactory(username="maya", email="maya@example.com", is_staff=True)).user


@pytest.fixture
def recipient():
    return RecipientProfileFactory(user=UserFactory(username="grace", email="grace@example.com")).user


def test_a_test_send_adds_nothing_to_a_recipients_preference_centre(client, tester, recipient):
    CategoryFactory(key="promotions", name="Promotions", kind="marketing")
    template_send_test(template=MessageTemplateFactory(key="welcome"), to=tester)
    assert Category.objects.filter(key=TEST_CATEGORY_KEY).exists()  # the tester's own delivery needs one

    client.force_login(recipient)
    page = client.get(reverse("notifications:preferences"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Promotions" in html and "Template tests" not in html and TEST_CATEGORY_KEY not in html


def test_an_existing_template_test_category_is_not_offered_as_a_filter(client):
    """Databases from before the fix already hold the row: it is filtered out where lists are made."""
    CategoryFactory(key=TEST_CATEGORY_KEY, name="Template tests", kind="transactional", user_can_opt_out=False)
    CategoryFactory(key="orders", name="Orders", kind="transactional")
    _campaigns, categories = filter_choices()
    assert [name for _pk, name in categories] == ["Orders"]
    assert [c.key for c in ExportForm().fields["category"].queryset] == ["orders"]
