"""Sign-in settings, read in one place with their defaults (README "Signing in").

The lockout itself is django-axes'; ``config/settings.py`` maps ``SIGNALBOX_LOGIN_*`` onto its
``AXES_*`` settings. What Signalbox's own code reads is here.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _positive(name: str, default: float) -> float:
    value = getattr(settings, name, default)
    if value is None or value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive number, not {value!r}.")
    return value


def staff_session_lifetime() -> timedelta:
    """How long a staff member's session lasts after they sign in (recipients keep Django's default)."""
    return timedelta(hours=_positive("SIGNALBOX_STAFF_SESSION_HOURS", 12))


def invitation_lifetime() -> timedelta:
    """How long an invitation link stays valid (a password reset link: ``PASSWORD_RESET_TIMEOUT``)."""
    return timedelta(days=_positive("SIGNALBOX_INVITATION_DAYS", 14))


def password_reset_lifetime() -> timedelta:
    return timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)


def trusted_proxy_count() -> int:
    """How many reverse proxies in front of Signalbox append the client's address to X-Forwarded-For.

    0 (the default) trusts only the socket's address (``REMOTE_ADDR``), so a client cannot choose
    the address its failed logins are counted against by sending the header itself.
    """
    value = getattr(settings, "SIGNALBOX_TRUSTED_PROXY_COUNT", 0)
    if not isinstance(value, int) or value < 0:
        raise ImproperlyConfigured(f"SIGNALBOX_TRUSTED_PROXY_COUNT must be 0 or more, not {value!r}.")
    return value


def login_cooloff() -> timedelta:
    """The lockout's cool-off, as django-axes is configured with it."""
    from axes.helpers import get_cool_off

    return get_cool_off() or timedelta(0)
