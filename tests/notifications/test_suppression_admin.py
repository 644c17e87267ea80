"""The Suppression admin writes through ``tracking``: one normalised address form, audited adds and lifts."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.roles import roles_ensure
from notifications.api import notify
from notifications.models import AuditEntry, Category, Delivery, Suppression
from tests.factories import CategoryFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:notifications_suppression_add")


@pytest.fixture
def operator():
    roles_ensure()
    user = UserFactory(username="otto", is_staff=True)
    user.groups.add(Group.objects.get(name="Operators"))
    return user


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


def add(client, **fields):
    data = {"channel": "email", "address": "", "reason": "manual", "user": "", "note": "", "_save": "Save", **fields}
    return client.post(ADD, data)


def test_an_operators_mixed_case_suppression_stops_mail_to_the_lower_case_address(operator_client, operator):
    ada = RecipientProfileFactory(user=UserFactory(username="ada", email="ada@example.com")).user
    response = add(operator_client, address="  Ada@Example.com ", note="asked by phone")
    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address, suppression.reason) == ("email", "ada@example.com", "manual")
    entry = AuditEntry.objects.get(action="suppression.create")
    assert entry.actor == operator and entry.changes["address"] == "ada@example.com"

    orders = CategoryFactory(key="orders", kind=Category.Kind.TRANSACTIONAL, user_can_opt_out=False)
    notify([ada], title="Your order", channels=["email"], category=orders)
    assert Delivery.objects.get().status_reason == "suppressed:manual"


def test_a_phone_suppression_is_stored_in_e164(operator_client, settings):
    assert add(operator_client, channel="sms", address="+1 (415) 555-0102").status_code == 302
    settings.SIGNALBOX_IMPORT_PHONE_REGION = "GB"
    assert add(operator_client, channel="sms", address="020 7946 0000").status_code == 302
    assert set(Suppression.objects.values_list("address", flat=True)) == {"+14155550102", "+442079460000"}


@pytest.mark.parametrize(
    ("channel", "address", "message"),
    [
        ("email", "not-an-email", "Enter a valid email address."),
        ("sms", "12345", "Enter a valid phone number"),
        ("sms", "020 7946 0000", "Enter a valid phone number"),  # national, with no region set
    ],
)
def test_an_invalid_address_is_a_form_error(operator_client, channel, address, message):
    response = add(operator_client, channel=channel, address=address)
    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors["address"])
    assert not Suppression.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="suppression.").exists()


def test_the_same_address_in_another_case_is_a_duplicate(operator_client):
    add(operator_client, address="ada@example.com")
    response = add(operator_client, address="ADA@EXAMPLE.COM")
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert Suppression.objects.count() == 1


def test_lifting_in_the_admin_is_audited(operator_client, operator):
    add(operator_client, address="ada@example.com")
    suppression = Suppression.objects.get()
    url = reverse("admin:notifications_suppression_delete", args=[suppression.pk])
    assert operator_client.post(url, {"post": "yes"}).status_code == 302
    assert not Suppression.objects.exists()
    entry = AuditEntry.objects.get(action="suppression.lift")
    assert (entry.actor, entry.changes["address"], entry.changes["via"]) == (operator, "ada@example.com", "admin")


def test_lifting_several_at_once_audits_each(operator_client):
    for address in ("a@example.com", "b@example.com"):
        add(operator_client, address=address)
    response = operator_client.post(reverse("admin:notifications_suppression_changelist"), {
        "action": "delete_selected", "_selected_action": list(Suppression.objects.values_list("pk", flat=True)),
        "post": "yes",
    })
    assert response.status_code == 302
    assert not Suppression.objects.exists()
    assert sorted(AuditEntry.objects.filter(action="suppression.lift").values_list("changes__address", flat=True)) == [
        "a@example.com", "b@example.com"
    ]


def test_a_suppression_is_not_edited_in_place(operator_client):
    add(operator_client, address="ada@example.com")
    suppression = Suppression.objects.get()
    url = reverse("admin:notifications_suppression_change", args=[suppression.pk])
    response = operator_client.post(url, {"channel": "email", "address": "someone@example.com", "reason": "manual",
                                          "user": "", "note": "", "_save": "Save"})
    assert response.status_code == 403
    assert Suppression.objects.get().address == "ada@example.com"
