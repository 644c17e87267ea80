"""Fixtures shared by the dashboard tests: a Manager (reports, exports, audit log) and their client."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.roles import roles_ensure
from tests.factories import UserFactory


@pytest.fixture
def manager(db):
    roles_ensure()
    user = UserFactory(username="meg", is_staff=True)
    user.groups.add(Group.objects.get(name="Managers"))
    return user


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client
