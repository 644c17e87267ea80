"""The services the import and the user admin call: invitations and a staff-sent password reset."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from freezegun import freeze_time

from accounts.passwords import invitations_send, password_reset_send
from channels_adapters.models import CapturedMessage
from notifications.models import AuditEntry, Delivery
from tests.accounts.conftest import staff_in
from tests.accounts.test_password_reset import LINK, NEW_PASSWORD, choose_password, link_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def imported(username: str, **fields):
    user = UserFactory(username=username, **fields)
    user.set_unusable_password()
    user.save()
    return user


def test_invitations_go_to_active_users_with_an_email_and_let_them_choose_a_password(
    client, operator, outbox, django_capture_on_commit_callbacks
):
    invited = [imported(f"new{i}") for i in range(3)]
    no_email = imported("noemail", email="")
    bad_email = imported("bademail", email="not-an-address")
    inactive = imported("gone", is_active=False)
    staff = imported("colleague", is_staff=True)

    ids = [u.pk for u in [*invited, no_email, bad_email, inactive, staff]]
    with django_capture_on_commit_callbacks(execute=True):
        assert invitations_send(user_ids=ids, actor=operator) == 3

    assert set(Delivery.objects.values_list("recipient__username", flat=True)) == {"new0", "new1", "new2"}
    assert AuditEntry.objects.filter(action="account.invitation_sent", actor=operator).count() == 3
    message = CapturedMessage.objects.get(address="new0@example.com")
    assert message.subject == "You are invited to Signalbox"
    assert "with the username new0" in message.text
    assert "/accounts/invitation/" in LINK.search(message.text).group(0)

    assert choose_password(client, link_in(message)).status_code == 302
    assert client.post("/accounts/login/", {"username": "new0", "password": NEW_PASSWORD}).status_code == 302


def test_inviting_twice_at_once_sends_once(operator, outbox, django_capture_on_commit_callbacks):
    user = imported("new")
    with django_capture_on_commit_callbacks(execute=True):
        assert invitations_send(user_ids=[user.pk], actor=operator) == 1
        assert invitations_send(user_ids=[user.pk], actor=operator) == 0
    assert CapturedMessage.objects.count() == 1


def test_a_superuser_may_invite_staff(superuser, outbox):
    staff = imported("colleague", is_staff=True)
    assert invitations_send(user_ids=[staff.pk], actor=superuser) == 1


def test_an_invitation_lasts_longer_than_a_reset_link(client, operator, outbox, django_capture_on_commit_callbacks):
    user = imported("new")
    with freeze_time(timezone.now()) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            invitations_send(user_ids=[user.pk], actor=operator)
        path = link_in(CapturedMessage.objects.get())
        clock.tick(timedelta(days=10))  # past PASSWORD_RESET_TIMEOUT (3 days), within 14 days
        assert client.get(path).status_code == 302
        clock.tick(timedelta(days=5))
        assert 'data-testid="invalid-link"' in client.get(path).content.decode()


def test_an_invitation_token_is_not_a_reset_token(client, operator, outbox, django_capture_on_commit_callbacks):
    user = imported("new")
    with django_capture_on_commit_callbacks(execute=True):
        invitations_send(user_ids=[user.pk], actor=operator)
    path = link_in(CapturedMessage.objects.get())
    as_reset = path.replace("/accounts/invitation/", "/accounts/reset/")
    assert 'data-testid="invalid-link"' in client.get(as_reset).content.decode()


def test_staff_send_a_password_reset_within_their_role(operator, outbox, django_capture_on_commit_callbacks):
    recipient = UserFactory(username="ada")
    with django_capture_on_commit_callbacks(execute=True):
        assert password_reset_send(user=recipient, actor=operator) is True
        # Again at once: nothing new is sent, and the refusal to resend is audited too.
        assert password_reset_send(user=recipient, actor=operator) is False
    assert CapturedMessage.objects.get().subject == "Reset your Signalbox password"
    entries = AuditEntry.objects.filter(action="account.password_reset_sent", actor=operator)
    assert [e.changes["planned"] for e in entries.order_by("id")] == [True, False]

    # Staff accounts are the superusers' to manage; those without the permission may not at all.
    with pytest.raises(PermissionDenied):
        password_reset_send(user=staff_in("Managers", "meg"), actor=operator)
    with pytest.raises(PermissionDenied):
        password_reset_send(user=recipient, actor=staff_in("Marketers", "maya"))
    with pytest.raises(PermissionDenied):
        invitations_send(user_ids=[recipient.pk], actor=staff_in("Managers", "meg2"))
    assert CapturedMessage.objects.count() == 1
