"""Staff accounts are the superusers' alone; Operators look after recipients.

On the old code an Operator (who holds ``auth.change_user`` to look after recipients) saw
``is_superuser``, ``is_staff``, ``groups``, ``user_permissions`` and the password form on every
user, so they could promote anyone, themselves included, or set a superuser's password and sign
in as them, and nothing in the audit log showed it. These are real HTTP requests to the admin.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from accounts.roles import roles_ensure
from notifications.models import AuditEntry, RecipientProfile
from tests.factories import PASSWORD, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def people(db):
    roles_ensure()
    operator = UserFactory(username="otto", is_staff=True)
    operator.groups.add(Group.objects.get(name="Operators"))
    root = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    recipient = RecipientProfileFactory(user=UserFactory(username="ada", email="ada@example.com")).user
    return {"operator": operator, "root": root, "recipient": recipient}


def change_url(user) -> str:
    return reverse("admin:auth_user_change", args=[user.pk])


def full_user_form(user, **overrides) -> dict:
    """Everything the superuser's change form posts, plus the inline's management form."""
    data = {
        "username": user.username, "first_name": user.first_name, "last_name": user.last_name,
        "email": user.email, "is_active": "on", "last_login_0": "", "last_login_1": "",
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "recipient_profile-TOTAL_FORMS": "0", "recipient_profile-INITIAL_FORMS": "0",
        "recipient_profile-MIN_NUM_FORMS": "0", "recipient_profile-MAX_NUM_FORMS": "1", "_save": "Save",
    }
    data.update(overrides)
    return data


def test_an_operator_cannot_make_themselves_superuser(client, people):
    operator = people["operator"]
    client.force_login(operator)
    page = client.get(change_url(operator))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="is_superuser"' not in html and 'name="groups"' not in html and 'name="_save"' not in html

    response = client.post(change_url(operator), full_user_form(
        operator, is_staff="on", is_superuser="on", groups=[Group.objects.get(name="Managers").pk],
    ))

    assert response.status_code == 403
    operator.refresh_from_db()
    assert not operator.is_superuser and list(operator.groups.values_list("name", flat=True)) == ["Operators"]


def test_an_operator_cannot_set_a_superusers_password(client, people):
    client.force_login(people["operator"])
    url = reverse("admin:auth_user_password_change", args=[people["root"].pk])
    assert client.get(url).status_code == 403
    response = client.post(url, {"password1": "taken-over-1234", "password2": "taken-over-1234",
                                 "usable_password": "true"})
    assert response.status_code == 403
    assert client.login(username="root", password=PASSWORD)


def test_an_operator_changes_a_recipient_but_no_privilege_field_is_taken(client, people):
    recipient = people["recipient"]
    client.force_login(people["operator"])
    form = client.get(change_url(recipient)).content.decode()
    for name in ("is_staff", "is_superuser", "groups", "user_permissions"):
        assert f'name="{name}"' not in form
    assert reverse("admin:auth_user_password_change", args=[recipient.pk]) not in form

    response = client.post(change_url(recipient), full_user_form(
        recipient, first_name="Ada Augusta", is_staff="on", is_superuser="on",
        groups=[Group.objects.get(name="Managers").pk],
        user_permissions=[Permission.objects.get(codename="change_user").pk],
    ))

    assert response.status_code == 302, response.content.decode()[:3000]
    recipient.refresh_from_db()
    assert recipient.first_name == "Ada Augusta"
    assert not recipient.is_staff and not recipient.is_superuser
    assert not recipient.groups.exists() and not recipient.user_permissions.exists()


def test_an_operator_adds_a_recipient_without_a_password_or_privileges(client, people):
    client.force_login(people["operator"])
    form = client.get(reverse("admin:auth_user_add")).content.decode()
    assert 'name="password1"' not in form and 'name="is_staff"' not in form

    response = client.post(reverse("admin:auth_user_add"), {
        "username": "grace", "email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper",
        "password1": "chosen-by-otto-1", "password2": "chosen-by-otto-1", "is_staff": "on", "is_superuser": "on",
        "recipient_profile-TOTAL_FORMS": "0", "recipient_profile-INITIAL_FORMS": "0",
        "recipient_profile-MIN_NUM_FORMS": "0", "recipient_profile-MAX_NUM_FORMS": "1", "_save": "Save",
    })

    assert response.status_code == 302, response.content.decode()[:3000]
    grace = User.objects.get(username="grace")
    assert not grace.is_staff and not grace.is_superuser and not grace.has_usable_password()


def test_an_operator_cannot_touch_groups_or_delete_staff(client, people):
    client.force_login(people["operator"])
    assert client.get(reverse("admin:auth_group_add")).status_code == 403
    managers = Group.objects.get(name="Managers")
    response = client.post(reverse("admin:auth_group_change", args=[managers.pk]),
                           {"name": "Managers", "permissions": list(Permission.objects.values_list("pk", flat=True))})
    assert response.status_code == 403
    assert client.post(reverse("admin:auth_user_delete", args=[people["root"].pk]), {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=people["root"].pk).exists()


def user_entries(user):
    return AuditEntry.objects.filter(target_type=ContentType.objects.get_for_model(User), target_id=str(user.pk))


def test_privilege_changes_by_a_superuser_are_audited_with_who_made_them(client, people):
    recipient = people["recipient"]
    client.force_login(people["root"])
    marketers = Group.objects.get(name="Marketers")

    response = client.post(change_url(recipient), full_user_form(
        recipient, password=recipient.password, is_staff="on", groups=[marketers.pk],
    ))
    assert response.status_code == 302, response.content.decode()[:3000]
    client.post(reverse("admin:auth_user_password_change", args=[recipient.pk]),
                {"password1": "a-new-secret-42", "password2": "a-new-secret-42", "usable_password": "true"})

    entries = {e.action: e for e in user_entries(recipient)}
    assert entries["user.privileges_changed"].changes == {"is_staff": [False, True]}
    assert entries["user.groups_changed"].changes == {"added": ["Marketers"]}
    assert entries["user.password_changed"].changes == {"usable": True}
    assert {e.actor for e in entries.values()} == {people["root"]}


def test_privilege_changes_made_outside_the_admin_are_audited_too(people):
    recipient = people["recipient"]
    recipient.is_superuser = True
    recipient.save()
    Group.objects.get(name="Managers").user_set.add(recipient)
    recipient.groups.clear()

    actions = list(user_entries(recipient).order_by("id").values_list("action", "actor_repr", "changes"))
    assert actions == [
        ("user.privileges_changed", "system", {"is_superuser": [False, True]}),
        ("user.groups_changed", "system", {"added": ["Managers"]}),
        ("user.groups_changed", "system", {"cleared": ["Managers"]}),
    ]
    assert RecipientProfile.objects.filter(user=recipient).exists()


def test_a_chat_address_to_an_internal_host_is_refused_in_the_users_profile(client, people):
    recipient = people["recipient"]
    profile = recipient.recipient_profile
    client.force_login(people["operator"])
    response = client.post(change_url(recipient), full_user_form(recipient, **{
        "recipient_profile-TOTAL_FORMS": "1", "recipient_profile-INITIAL_FORMS": "1",
        "recipient_profile-0-id": profile.pk, "recipient_profile-0-user": recipient.pk,
        "recipient_profile-0-phone": "", "recipient_profile-0-timezone": "UTC", "recipient_profile-0-locale": "en",
        "recipient_profile-0-chat_ids": '{"apprise": "ntfy://127.0.0.1/topic"}',
    }))
    assert response.status_code == 200
    assert "ntfy" in response.content.decode()
    profile.refresh_from_db()
    assert profile.chat_ids == {}
