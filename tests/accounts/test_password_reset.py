"""Password reset over HTTP: the link goes out as a transactional message on the ledger, is captured
in the Outbox, and lets the user choose a password and sign in."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from channels_adapters.models import CapturedMessage
from notifications.models import AuditEntry, Delivery, Preference, Suppression
from tests.factories import CategoryFactory, PASSWORD, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "violet-Harbour-42-lantern"
LINK = re.compile(r"https?://[^\s\"<>]+/accounts/(?:reset|invitation)/[^\s\"<>]+/")


def request_reset(client, email: str, capture):
    with capture(execute=True):
        return client.post("/accounts/password_reset/", {"email": email})


def link_in(message: CapturedMessage) -> str:
    return urlsplit(LINK.search(message.text).group(0)).path


def choose_password(client, path: str, password: str = NEW_PASSWORD):
    """Follow an emailed link like a browser: token URL → set-password form → submit."""
    landing = client.get(path)
    assert landing.status_code == 302, landing.content.decode()[:500]
    form = client.get(landing["Location"])
    assert form.status_code == 200
    return client.post(landing["Location"], {"new_password1": password, "new_password2": password})


def test_the_login_pages_link_to_password_reset(client):
    assert 'href="/accounts/password_reset/"' in client.get("/accounts/login/").content.decode()
    admin_login = client.get("/admin/login/").content.decode()
    assert 'href="/admin/password_reset/"' in admin_login
    assert client.get("/admin/password_reset/")["Location"] == "/accounts/password_reset/"
    assert client.get("/accounts/password_reset/").status_code == 200


def test_reset_email_on_the_ledger_and_in_the_outbox_lets_the_user_choose_a_password(
    client, ada, outbox, django_capture_on_commit_callbacks
):
    response = request_reset(client, "ADA@example.com", django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert "Check your inbox" in client.get(response["Location"]).content.decode()

    delivery = Delivery.objects.get(recipient=ada)
    assert (delivery.channel, delivery.status, delivery.address) == ("email", "sent", "ada@example.com")
    assert (delivery.category.key, delivery.category.kind, delivery.category.user_can_opt_out) == (
        "account-security", "transactional", False,
    )
    message = CapturedMessage.objects.get(delivery_id=delivery.pk)
    assert message.subject == "Reset your Signalbox password"
    assert message.text.startswith(f"Hello {ada.first_name},")
    # The link is built on SITE_URL (never the request's Host) and left alone by click tracking.
    assert LINK.search(message.text).group(0).startswith(settings.SITE_URL)
    assert link_in(message) in message.html
    assert AuditEntry.objects.filter(action="account.password_reset_sent", target_id=str(ada.pk)).exists()

    done = choose_password(client, link_in(message))
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    assert "Your password has been set" in client.get(done["Location"]).content.decode()

    assert client.post("/accounts/login/", {"username": "ada", "password": PASSWORD}).status_code == 200
    assert client.post("/accounts/login/", {"username": "ada", "password": NEW_PASSWORD}).status_code == 302
    assert AuditEntry.objects.filter(action="account.password_set", actor=ada, changes__via="password-reset").exists()

    # The link worked once.
    client.logout()
    again = client.get(link_in(message))
    assert again.status_code == 200 and 'data-testid="invalid-link"' in again.content.decode()


def test_an_unknown_address_gets_the_same_answer_and_nothing_is_sent(client, ada, outbox, django_capture_on_commit_callbacks):
    known = request_reset(client, "ada@example.com", django_capture_on_commit_callbacks)
    unknown = request_reset(client, "nobody@example.com", django_capture_on_commit_callbacks)
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert Delivery.objects.count() == CapturedMessage.objects.count() == 1


def test_a_bad_address_is_a_form_error_not_a_500(client):
    response = client.post("/accounts/password_reset/", {"email": "not an address" * 50})
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()


def test_an_imported_user_without_a_password_chooses_one(client, outbox, django_capture_on_commit_callbacks):
    user = UserFactory(username="imported", email="imported@example.com")
    user.set_unusable_password()
    user.save()

    request_reset(client, "imported@example.com", django_capture_on_commit_callbacks)
    choose_password(client, link_in(CapturedMessage.objects.get()))
    assert client.post("/accounts/login/", {"username": "imported", "password": NEW_PASSWORD}).status_code == 302


def test_a_marketing_opt_out_or_unsubscribe_does_not_stop_the_reset_email(
    client, ada, outbox, django_capture_on_commit_callbacks
):
    newsletter = CategoryFactory(key="newsletter", kind="marketing")
    Preference.objects.create(user=ada, category=newsletter, channel="email", enabled=False)
    request_reset(client, "ada@example.com", django_capture_on_commit_callbacks)
    assert CapturedMessage.objects.filter(address="ada@example.com").count() == 1


def test_a_suppressed_address_gets_nothing(client, ada, outbox, django_capture_on_commit_callbacks):
    Suppression.objects.create(channel="email", address="ada@example.com", reason="hard_bounce")
    response = request_reset(client, "ada@example.com", django_capture_on_commit_callbacks)
    assert response["Location"] == reverse("password_reset_done")
    assert Delivery.objects.get().status == "suppressed"
    assert not CapturedMessage.objects.exists()


def test_asking_again_at_once_sends_one_email(client, ada, outbox, django_capture_on_commit_callbacks):
    for _ in range(5):
        request_reset(client, "ada@example.com", django_capture_on_commit_callbacks)
    assert CapturedMessage.objects.count() == 1
    # The anonymous form cannot grow the audit log either.
    assert AuditEntry.objects.filter(action="account.password_reset_sent").count() == 1


def test_an_inactive_user_gets_nothing(client, ada, outbox, django_capture_on_commit_callbacks):
    ada.is_active = False
    ada.save()
    request_reset(client, "ada@example.com", django_capture_on_commit_callbacks)
    assert not Delivery.objects.exists()


def test_a_tampered_link_or_another_users_id_is_refused(client, ada, outbox, django_capture_on_commit_callbacks):
    request_reset(client, "ada@example.com", django_capture_on_commit_callbacks)
    path = link_in(CapturedMessage.objects.get())
    uid, token = path.rstrip("/").split("/")[-2:]
    forged_token = path.replace(token, token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert 'data-testid="invalid-link"' in client.get(forged_token).content.decode()
    mallory = UserFactory(username="mallory")
    someone_else = path.replace(uid, urlsafe_base64_encode(force_bytes(mallory.pk)))
    assert 'data-testid="invalid-link"' in client.get(someone_else).content.decode()


def test_reset_pages_and_email_in_chinese(client, chinese, outbox, django_capture_on_commit_callbacks):
    user = RecipientProfileFactory(user=UserFactory(username="li", email="li@example.com"), locale="zh-hans").user
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = chinese
    assert "重置密码" in client.get("/accounts/password_reset/").content.decode()
    assert "忘记密码" in client.get("/accounts/login/").content.decode()
    response = request_reset(client, "li@example.com", django_capture_on_commit_callbacks)
    assert "请查收邮件" in client.get(response["Location"]).content.decode()
    message = CapturedMessage.objects.get(delivery_id=Delivery.objects.get(recipient=user).pk)
    assert message.subject == "重置您的 Signalbox 密码"
    assert "3\xa0日后失效" in message.text  # Django's own Chinese for "3 days"


def test_the_pages_open_for_a_signed_in_visitor_too(recipient_client):
    for path in ["/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/",
                 "/accounts/reset/MQ/bad-token/", "/accounts/invitation/MQ/bad-token/"]:
        assert recipient_client.get(path).status_code == 200, path
