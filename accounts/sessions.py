"""Session lifetime: staff sessions end ``SIGNALBOX_STAFF_SESSION_HOURS`` after signing in.

A staff session can change who gets messaged and what they say, so it ends after a working day
(12 hours by default) however active it is: the expiry is a fixed time set at sign-in, not a
timeout that each request pushes back. Recipients keep Django's ``SESSION_COOKIE_AGE``.
"""

from __future__ import annotations

from django.utils import timezone

from . import conf


def session_expiry_on_login(sender, *, request, user, **kwargs) -> None:
    """``user_logged_in`` receiver (connected in ``AccountsConfig.ready``): only sets the expiry
    on the session being created, which the session middleware saves with the response."""
    if request is None or not hasattr(request, "session"):
        return
    if user.is_staff or user.is_superuser:
        request.session.set_expiry(timezone.now() + conf.staff_session_lifetime())
