"""Staff roles: the groups exist on every install and hold exactly the documented permissions."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate

from accounts import roles
from accounts.roles import ROLE_PERMISSIONS, roles_ensure
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def group_permissions() -> dict[str, set[str]]:
    return {
        group.name: {
            f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
        }
        for group in Group.objects.filter(name__in=ROLE_PERMISSIONS)
    }


def expected() -> dict[str, set[str]]:
    return {name: set(perms) for name, perms in ROLE_PERMISSIONS.items()}


def test_migrate_creates_the_groups_with_exactly_their_permissions():
    # Nothing but post_migrate has run against the test database.
    assert group_permissions() == expected()


def test_every_permission_in_the_map_exists():
    names = {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")}
    assert {perm for perms in ROLE_PERMISSIONS.values() for perm in perms} <= names


def test_roles_ensure_puts_drifted_groups_back():
    Group.objects.filter(name="Operators").delete()
    marketers = Group.objects.get(name="Marketers")
    marketers.permissions.add(Permission.objects.get(codename="view_auditentry"))
    marketers.permissions.remove(Permission.objects.get(codename="view_delivery"))

    roles_ensure()
    roles_ensure()

    assert group_permissions() == expected()
    assert Group.objects.filter(name__in=ROLE_PERMISSIONS).count() == len(ROLE_PERMISSIONS)


def test_roles_ensure_looks_permissions_up_in_one_query(django_assert_num_queries):
    # One permission query, then per group a get_or_create and the current-permissions read of
    # .set(); plus the savepoint pair of the atomic block. Nothing grows with the number of perms.
    with django_assert_num_queries(1 + 2 * len(ROLE_PERMISSIONS) + 2):
        roles_ensure()


def test_unknown_permission_is_an_error_unless_lenient(monkeypatch):
    monkeypatch.setitem(
        roles.ROLE_PERMISSIONS, "Marketers", ["notifications.view_delivery", "notifications.fly_kite"]
    )

    with pytest.raises(ImproperlyConfigured, match="notifications.fly_kite"):
        roles_ensure()

    roles_ensure(strict=False)
    assert group_permissions()["Marketers"] == {"notifications.view_delivery"}


def test_post_migrate_for_accounts_creates_permissions_of_apps_listed_after_it():
    """On a fresh database demo_shop's permissions do not exist yet when accounts' turn comes."""
    Group.objects.all().delete()
    Permission.objects.filter(content_type__app_label="demo_shop").delete()
    accounts = apps.get_app_config("accounts")

    post_migrate.send(
        sender=accounts, app_config=accounts, verbosity=0, interactive=False, using="default", apps=apps, plan=[]
    )

    assert group_permissions() == expected()
    assert "demo_shop.view_order" in group_permissions()["Managers"]


@pytest.mark.parametrize(
    ("group", "allowed", "denied"),
    [
        ("Marketers",
         ["notifications.change_category", "notifications.add_notification", "notifications.view_delivery"],
         ["notifications.view_auditentry", "notifications.change_suppression", "auth.add_user"]),
        ("Operators", ["auth.add_user", "notifications.change_recipientprofile", "notifications.delete_suppression",
                       "notifications.change_preference"],
         ["notifications.view_delivery", "notifications.view_auditentry", "auth.delete_user"]),
        ("Managers", ["notifications.view_auditentry", "notifications.view_delivery", "demo_shop.view_order",
                      "notifications.change_category", "notifications.override_optouts"],
         ["notifications.add_category", "notifications.add_suppression", "auth.change_user"]),
    ],
)
def test_staff_in_a_group_can_do_what_their_role_needs_and_no_more(group, allowed, denied):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))

    assert all(user.has_perm(perm) for perm in allowed)
    assert not any(user.has_perm(perm) for perm in denied)
