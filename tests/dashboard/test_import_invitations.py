"""Imported users can sign in: the operator may email each new user an invitation to choose a password.

On the old code imported users got an unusable password and no way to choose one, although the
import page said they could sign in. Here the confirm step offers the invitation; each new user
(and only the new ones) gets a transactional email through the ledger whose link, followed,
lets them choose a password and sign in.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from channels_adapters.models import CapturedMessage
from dashboard.models import ImportJob
from notifications import ledger
from notifications.models import Delivery
from tests.dashboard.test_import_admin import operator, operator_client, post_mapping, upload, url  # noqa: F401

pytestmark = pytest.mark.django_db
User = get_user_model()

ROWS = "Email,First name\nada@example.com,Ada\ngrace@example.com,Grace\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": "channels_adapters.capture.CaptureChannel", "OPTIONS": {}},
        "inapp": {"BACKEND": "channels_adapters.inapp.InappChannel", "OPTIONS": {}},
    }


def previewed(client, text: str) -> ImportJob:
    upload(client, text)
    job = ImportJob.objects.latest("pk")
    post_mapping(client, job)
    client.get(url("preview", job.pk))
    return job


def test_new_users_get_an_invitation_that_lets_them_choose_a_password_and_sign_in(operator_client):
    User.objects.create_user("grace", "grace@example.com")  # exists already: updated, not invited
    job = previewed(operator_client, ROWS)
    assert 'data-testid="confirm-invite"' in operator_client.get(url("preview", job.pk)).content.decode()

    operator_client.post(url("confirm", job.pk), {"mode": "valid_rows", "invite": "on"})

    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED and job.invite
    assert job.details["invited"] == 1
    assert "1 new user was emailed an invitation" in operator_client.get(url("change", job.pk)).content.decode()
    ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))
    (mail,) = CapturedMessage.objects.all()
    assert mail.address == "ada@example.com"
    link = re.search(r"https?://[^/\s]+(/accounts/invitation/[^\s\"<]+)", mail.text).group(1)

    ada = Client()
    form = ada.get(link, follow=True)
    assert form.status_code == 200
    chosen = ada.post(form.redirect_chain[-1][0] if form.redirect_chain else link,
                      {"new_password1": "a-fine-secret-91", "new_password2": "a-fine-secret-91"})
    assert chosen.status_code == 302
    assert Client().login(username=User.objects.get(email="ada@example.com").username, password="a-fine-secret-91")


def test_without_the_option_nobody_is_emailed(operator_client):
    job = previewed(operator_client, ROWS)
    operator_client.post(url("confirm", job.pk), {"mode": "valid_rows"})
    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED and not job.invite
    assert "invited" not in job.details
    assert not Delivery.objects.exists()
