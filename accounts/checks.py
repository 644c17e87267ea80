"""Deployment checks (``manage.py check --deploy``)."""

from __future__ import annotations

from django.core.checks import Error
from django.db import DatabaseError

DEMO_PASSWORD_ERROR = "accounts.E001"


def demo_passwords_check(app_configs=None, **kwargs) -> list[Error]:
    """An error while any demo login (``seed_demo``'s admin, marketer, operator, manager, demo)
    still signs in with the published demo password.

    A database that cannot be read (not migrated yet, not reachable) is not this check's
    business: it says nothing. Seeded users share one password hash, so the password is hashed
    once per distinct hash, not once per user.
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import check_password

    from demo_shop.seeding.data import DEMO_PASSWORD, DEMO_RECIPIENT, LOGINS

    User = get_user_model()
    usernames = [login[0] for login in LOGINS] + [DEMO_RECIPIENT.username]
    try:
        hashes = dict(User.objects.filter(username__in=usernames, is_active=True).values_list("username", "password"))
        demo_hashes = {h for h in set(hashes.values()) if h and check_password(DEMO_PASSWORD, h)}
        if not demo_hashes:
            return []
        others = User.objects.filter(password__in=demo_hashes, is_active=True).exclude(username__in=usernames).count()
    except DatabaseError:
        return []
    names = sorted(name for name, h in hashes.items() if h in demo_hashes)
    message = f"Demo logins still use the published demo password: {', '.join(names)}"
    if others:
        message += f" (and {others} other users seeded with it)"
    return [
        Error(
            message + ".",
            hint="Give them new passwords (manage.py changepassword NAME) or deactivate them; "
            "seed_demo is for trying Signalbox, never for production.",
            id=DEMO_PASSWORD_ERROR,
        )
    ]
