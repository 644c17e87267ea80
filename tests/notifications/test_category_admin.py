"""Category changes that would send to people who opted out: a Manager's, confirmed with the count,
audited. Everything else stays as it was for whoever may change categories."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.roles import roles_ensure
from notifications import categories
from notifications.api import notify
from notifications.models import AuditEntry, Category, Delivery, Preference
from tests.factories import CategoryFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


def staff(username: str, group: str):
    roles_ensure()
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def marketer():
    return staff("maya", "Marketers")


@pytest.fixture
def manager():
    return staff("manny", "Managers")


@pytest.fixture
def newsletter():
    """A marketing category three people left (one of them on two channels) and one kept."""
    category = CategoryFactory(key="newsletter", name="Newsletter", kind="marketing")
    for i in range(3):
        user = RecipientProfileFactory(user=UserFactory(username=f"out{i}")).user
        Preference.objects.create(user=user, category=category, channel="email", enabled=False)
    Preference.objects.create(user=user, category=category, channel="sms", enabled=False)
    kept = RecipientProfileFactory(user=UserFactory(username="kept")).user
    Preference.objects.create(user=kept, category=category, channel="email", enabled=True)
    return category


def change(client, category, **fields):
    data = {
        "name": category.name, "key": category.key, "description": category.description, "kind": category.kind,
        "default_enabled": "on" if category.default_enabled else "",
        "user_can_opt_out": "on" if category.user_can_opt_out else "", "resend_policy": category.resend_policy,
        "_save": "Save", **fields,
    }
    data = {name: value for name, value in data.items() if value != ""}
    return client.post(reverse("admin:notifications_category_change", args=[category.pk]), data)


def errors(response) -> str:
    form = response.context["adminform"].form
    return " ".join(str(e) for field_errors in form.errors.values() for e in field_errors)


@pytest.mark.parametrize("fields", [{"kind": "transactional"}, {"user_can_opt_out": ""}],
                         ids=["transactional", "not-leavable"])
def test_a_marketer_cannot_override_opt_outs_and_is_told_a_manager_must(client, marketer, newsletter, fields):
    client.force_login(marketer)
    response = change(client, newsletter, **fields, confirm_override="on")
    assert response.status_code == 200
    assert "This category has 3 people who opted out" in errors(response)
    assert "Only a Manager can make this change." in errors(response)
    newsletter.refresh_from_db()
    assert (newsletter.kind, newsletter.user_can_opt_out) == ("marketing", True)
    assert not AuditEntry.objects.filter(action__startswith="category.").exists()


def test_a_manager_must_confirm_and_sees_the_number(client, manager, newsletter):
    client.force_login(manager)
    response = change(client, newsletter, kind="transactional")
    assert response.status_code == 200
    assert "This category has 3 people who opted out; making it transactional will send to them." in errors(response)
    newsletter.refresh_from_db()
    assert newsletter.kind == "marketing"


def test_a_managers_confirmed_override_is_saved_and_audited_with_the_count(client, manager, newsletter):
    client.force_login(manager)
    response = change(client, newsletter, kind="transactional", confirm_override="on")
    assert response.status_code == 302
    newsletter.refresh_from_db()
    assert newsletter.kind == "transactional"
    entry = AuditEntry.objects.get(action="category.override_optouts")
    assert entry.actor == manager
    assert entry.changes == {"kind": ["marketing", "transactional"], "opted_out": 3}


def test_other_changes_stay_open_to_marketers_and_are_audited(client, marketer, newsletter):
    client.force_login(marketer)
    response = change(client, newsletter, name="Monthly newsletter", description="Once a month.")
    assert response.status_code == 302
    newsletter.refresh_from_db()
    assert newsletter.name == "Monthly newsletter"
    assert AuditEntry.objects.get(action="category.update").changes["name"] == ["Newsletter", "Monthly newsletter"]


def test_a_change_that_overrides_nobody_is_allowed_to_a_marketer(client, marketer):
    nobody_left = CategoryFactory(key="tips", name="Tips", kind="marketing")
    client.force_login(marketer)
    assert change(client, nobody_left, kind="transactional").status_code == 302
    nobody_left.refresh_from_db()
    assert nobody_left.kind == "transactional"


def test_creating_a_category_goes_through_the_service(client, marketer):
    client.force_login(marketer)
    response = client.post(reverse("admin:notifications_category_add"), {
        "name": "Product news", "key": "product-news", "kind": "marketing", "user_can_opt_out": "on",
        "default_enabled": "on", "_save": "Save",
    })
    assert response.status_code == 302
    created = Category.objects.get(key="product-news")
    assert AuditEntry.objects.get(action="category.create").target_id == str(created.pk)


def test_the_service_refuses_a_marketer_even_with_confirmation(marketer, newsletter):
    with pytest.raises(categories.CategoryChangeRefused):
        categories.category_update(actor=marketer, category=newsletter, changes={"kind": "transactional"},
                                   confirm_override=True)
    newsletter.refresh_from_db()
    assert newsletter.kind == "marketing"


def test_an_opt_in_category_counts_everyone_not_fully_in(newsletter):
    """Off by default: people who never turned it on are out too, and making it transactional reaches them."""
    newsletter.default_enabled = False
    newsletter.save()
    everyone = UserFactory._meta.model.objects.filter(is_active=True).count()
    assert categories.category_optouts_count(category=newsletter) == everyone  # nobody is on for every channel


def test_opted_out_people_stay_out_while_the_change_is_refused(client, marketer, newsletter):
    client.force_login(marketer)
    change(client, newsletter, kind="transactional", confirm_override="on")
    out = UserFactory._meta.model.objects.get(username="out0")
    notify([out], title="Big sale", channels=["email"], category=newsletter)
    assert Delivery.objects.get().status_reason == "suppressed:opted_out"
