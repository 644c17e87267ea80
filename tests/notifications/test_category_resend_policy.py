"""A category's resend policy: what happens to a message that was with the provider when its
worker died. Chosen in the category admin form; a new category gets what its kind suggests."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.roles import roles_ensure
from notifications.models import Category
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_client(client):
    roles_ensure()
    user = UserFactory(username="maya", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(user)
    return client


def add(client, **fields):
    data = {"name": fields.get("key", "x").title(), "default_enabled": "on", "user_can_opt_out": "on", **fields}
    return client.post(reverse("admin:notifications_category_add"), data)


def test_the_add_form_offers_the_policy_with_the_kind_default_preselected(marketer_client):
    page = marketer_client.get(reverse("admin:notifications_category_add"))

    assert page.status_code == 200
    field = page.context["adminform"].form["resend_policy"]
    assert [value for value, _label in field.field.choices] == ["", "at_most_once", "at_least_once"]
    assert field.value() == ""
    assert "Outcome unknown" in page.content.decode()  # the help text says what at most once means


@pytest.mark.parametrize(("kind", "policy"), [
    ("transactional", "at_least_once"), ("marketing", "at_most_once"), ("system", "at_most_once"),
])
def test_a_new_category_gets_what_its_kind_suggests_unless_someone_chooses(marketer_client, kind, policy):
    response = add(marketer_client, key=f"{kind}-news", kind=kind, resend_policy="")

    assert response.status_code == 302
    assert Category.objects.get(key=f"{kind}-news").resend_policy == policy


def test_a_chosen_policy_is_kept(marketer_client):
    response = add(marketer_client, key="receipts", kind="transactional", resend_policy="at_most_once")

    assert response.status_code == 302
    assert Category.objects.get(key="receipts").resend_policy == "at_most_once"


def test_the_policy_can_be_changed_and_a_bad_value_is_a_form_error(marketer_client):
    category = Category.objects.create(key="tips", name="Tips", kind="marketing")
    url = reverse("admin:notifications_category_change", args=[category.pk])
    data = {"name": "Tips", "key": "tips", "kind": "marketing", "user_can_opt_out": "on", "default_enabled": "on"}

    bad = marketer_client.post(url, {**data, "resend_policy": "twice"})
    assert bad.status_code == 200 and "resend_policy" in bad.context["adminform"].form.errors
    good = marketer_client.post(url, {**data, "resend_policy": "at_least_once"})
    assert good.status_code == 302
    category.refresh_from_db()
    assert category.resend_policy == "at_least_once"
