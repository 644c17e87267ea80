"""Choosing a password by email: password reset and invitations.

Both email a link to a page where the user sets a new password; the link is a
``PasswordResetTokenGenerator`` token, so it stops working once it has been used (the password
hash is part of what it signs), when the user signs in, when their email changes, or when it
expires (reset: ``PASSWORD_RESET_TIMEOUT``; invitation: ``SIGNALBOX_INVITATION_DAYS``).

The email is a transactional message on Signalbox's own ledger (``notify()``, category
``account-security``, email channel): recorded like any delivery, never dropped for a marketing
opt-out, and, without a mail server configured, captured in the admin's Outbox. It is never sent
more than once per user and kind within ``RESEND_INTERVAL`` (the ledger's idempotency key holds
this), so the public reset form cannot be used to flood someone's mailbox.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode
from django.utils.timesince import timeuntil
from django.utils.translation import gettext

from . import conf
from .roles import allows

ACCOUNT_SECURITY_CATEGORY = "account-security"
RESEND_INTERVAL = timedelta(minutes=5)
RESET, INVITATION = "password-reset", "invitation"
EMAIL_TEMPLATES = {RESET: "registration/password_reset_email", INVITATION: "registration/invitation_email"}


class InvitationTokenGenerator(PasswordResetTokenGenerator):
    """Tokens for invitation links: a salt of their own (a reset token is not an invitation and
    vice versa) and a longer life, ``SIGNALBOX_INVITATION_DAYS``."""

    key_salt = "accounts.passwords.InvitationTokenGenerator"

    def check_token(self, user, token) -> bool:
        # Django's check_token with the invitation lifetime in place of PASSWORD_RESET_TIMEOUT.
        if not (user and token):
            return False
        try:
            ts_b36, _hash = token.split("-")
            timestamp = base36_to_int(ts_b36)
        except ValueError:
            return False
        if not any(
            constant_time_compare(self._make_token_with_timestamp(user, timestamp, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        ):
            return False
        return self._num_seconds(self._now()) - timestamp <= conf.invitation_lifetime().total_seconds()


invitation_token_generator = InvitationTokenGenerator()


def account_security_category():
    """The transactional category of sign-in mail; recipients cannot opt out of it."""
    from notifications.models import Category
    from notifications.services import category_ensure

    return category_ensure(
        key=ACCOUNT_SECURITY_CATEGORY, name="Account security", kind=Category.Kind.TRANSACTIONAL,
        user_can_opt_out=False, name_zh_hans="账户安全",
    )


def _has_usable_email(user) -> bool:
    try:
        validate_email(user.email or "")
    except ValidationError:
        return False
    return True


def _locale(user) -> str:
    """The recipient's chosen language, else the one of the page that asked (the reset form)."""
    profile = getattr(user, "recipient_profile", None)
    if profile is not None and profile.locale:
        return profile.locale
    return translation.get_language() or "en"


def _email_content(*, user, kind: str) -> dict[str, str]:
    from notifications import conf as notifications_conf

    if kind == INVITATION:
        token, url_name, lifetime = invitation_token_generator.make_token(user), "invitation_accept", conf.invitation_lifetime()
    else:
        token, url_name, lifetime = default_token_generator.make_token(user), "password_reset_confirm", conf.password_reset_lifetime()
    # Links that leave the site use SITE_URL, never the Host of the request that asked.
    path = reverse(url_name, kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": token})
    now = timezone.now()
    with translation.override(_locale(user)):
        context = {
            "name": user.get_short_name() or user.get_username(),
            "username": user.get_username(),
            "link": notifications_conf.site_url() + path,
            "validity": timeuntil(now + lifetime, now, depth=1),
        }
        subject = gettext("You are invited to Signalbox") if kind == INVITATION else gettext("Reset your Signalbox password")
        return {
            "title": subject,
            "body": render_to_string(f"{EMAIL_TEMPLATES[kind]}.txt", context).strip() + "\n",
            "html": render_to_string(f"{EMAIL_TEMPLATES[kind]}.html", context),
        }


def _account_email_send(*, user, kind: str, category) -> bool:
    """Put one sign-in email for ``user`` on the ledger; True if a new one was planned."""
    from notifications.api import notify

    window = int(timezone.now().timestamp() // RESEND_INTERVAL.total_seconds())
    result = notify(
        [user.pk], channels=["email"], category=category, idempotency_key=f"{kind}:{user.pk}:{window}",
        **_email_content(user=user, kind=kind),
    )
    return result.planned > 0 and result.already_known == 0 and result.suppressed == 0


def _refuse_unless_allowed(*, actor, user, action: str) -> None:
    if not allows(actor, action):
        raise PermissionDenied(gettext("You may not send sign-in links to users."))
    # Staff accounts are the superusers' to manage (accounts.roles), their sign-in mail included.
    if (user.is_staff or user.is_superuser) and not allows(actor, "staff.manage"):
        raise PermissionDenied(gettext("Only a superuser may send sign-in links to staff accounts."))


def password_reset_send(*, user, actor=None) -> bool:
    """Email ``user`` a link to choose a new password; True if an email was planned.

    ``actor`` None is the user asking for themselves (the public reset form): nothing is said
    about whether it was sent, and only a planned email is audited, so the anonymous form cannot
    grow the audit log. A staff ``actor`` needs ``recipient.send_password_reset`` (and
    ``staff.manage`` for a staff account; else ``PermissionDenied``) and is always audited.
    Inactive users and users without a valid email get nothing (False). Repeated within
    ``RESEND_INTERVAL`` it plans nothing new (False).
    """
    if actor is not None:
        _refuse_unless_allowed(actor=actor, user=user, action="recipient.send_password_reset")
    from notifications.services import audit_record

    planned = user.is_active and _has_usable_email(user)
    with transaction.atomic():
        if planned:
            planned = _account_email_send(user=user, kind=RESET, category=account_security_category())
        if planned or actor is not None:
            audit_record(
                actor=actor, action="account.password_reset_sent", target=user,
                changes={"planned": planned, "self_service": actor is None},
            )
    return planned


def invitations_send(*, user_ids: list[int], actor) -> int:
    """Email each active user in ``user_ids`` with a valid email an invitation to choose their
    password (an imported user has none); returns how many invitations were planned.

    Users without a valid email, inactive users and those invited within ``RESEND_INTERVAL`` are
    skipped. ``actor`` (None: the system, e.g. a task whose author is gone) needs
    ``recipient.send_password_reset`` or ``users.import``; staff accounts are invited only by an
    actor with ``staff.manage`` and skipped otherwise. Each planned invitation is audited.
    """
    if actor is not None and not (allows(actor, "recipient.send_password_reset") or allows(actor, "users.import")):
        raise PermissionDenied(gettext("You may not send sign-in links to users."))
    from notifications.services import audit_record

    users = get_user_model().objects.filter(pk__in=list(user_ids), is_active=True).exclude(email="")
    if actor is not None and not allows(actor, "staff.manage"):
        users = users.filter(is_staff=False, is_superuser=False)
    category = account_security_category()
    ids = list(users.order_by("pk").values_list("pk", flat=True))
    planned = 0
    # Loaded in chunks (an import may invite many thousands) and written between reads, never
    # while a read cursor is open.
    for start in range(0, len(ids), 500):
        chunk = users.model.objects.filter(pk__in=ids[start:start + 500]).select_related("recipient_profile")
        for user in chunk.order_by("pk"):
            if not _has_usable_email(user):
                continue
            with transaction.atomic():
                if _account_email_send(user=user, kind=INVITATION, category=category):
                    planned += 1
                    audit_record(actor=actor, action="account.invitation_sent", target=user)
    return planned


def password_set_by_link(*, user, kind: str) -> None:
    """After ``user`` chose a password through a reset or invitation link: audit it, and clear the
    lockout of their account (they proved they own its mailbox). Their address stays counted."""
    from axes.handlers.proxy import AxesProxyHandler
    from notifications.services import audit_record

    AxesProxyHandler.reset_attempts(username=user.get_username())
    audit_record(actor=user, action="account.password_set", target=user, changes={"via": kind})
