"""``manage.py check --deploy`` fails while demo logins keep the published demo password."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from demo_shop.seeding.data import DEMO_PASSWORD, _logins_ensure
from tests.conftest import manage
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

DEMO_PASSWORD_ERROR = "accounts.E001"


@pytest.fixture
def demo_logins():
    from django.utils import timezone

    from accounts.roles import roles_ensure

    roles_ensure()
    return _logins_ensure(password=make_password(DEMO_PASSWORD), now=timezone.now())


def test_demo_logins_with_the_demo_password_are_a_deploy_error(demo_logins):
    from accounts.checks import demo_passwords_check

    UserFactory(username="demo", password=DEMO_PASSWORD)
    errors = demo_passwords_check()
    assert [e.id for e in errors] == [DEMO_PASSWORD_ERROR]
    assert "admin, demo, manager, marketer, operator" in errors[0].msg
    with pytest.raises(SystemCheckError, match=DEMO_PASSWORD_ERROR):
        call_command("check", deploy=True)


def test_changed_or_deactivated_logins_clear_the_error(demo_logins):
    from django.contrib.auth import get_user_model

    from accounts.checks import demo_passwords_check

    users = get_user_model().objects
    for user in users.filter(username__in=["admin", "marketer", "operator"]):
        user.set_password("a-new-and-private-password")
        user.save()
    assert "the published demo password: manager." in demo_passwords_check()[0].msg
    users.filter(username="manager").update(is_active=False)
    assert demo_passwords_check() == []


@pytest.mark.django_db(transaction=True)
def test_check_deploy_exits_non_zero_on_a_seeded_database():
    """The command as an operator runs it, against a database ``seed_demo`` filled."""
    import subprocess

    manage("seed_demo", "--users", "0", "--days", "0", "--force")
    with pytest.raises(subprocess.CalledProcessError) as failed:
        manage("check", "--deploy")
    assert DEMO_PASSWORD_ERROR in failed.value.stderr
