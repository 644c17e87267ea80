"""Staff sessions end SIGNALBOX_STAFF_SESSION_HOURS after signing in; recipients keep two weeks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from freezegun import freeze_time

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_a_staff_session_ends_after_twelve_hours_however_active(client):
    UserFactory(username="boss", is_staff=True)
    with freeze_time("2026-03-02 08:00:00") as clock:
        assert client.post("/admin/login/", {"username": "boss", "password": PASSWORD}).status_code == 302
        assert client.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 12 * 3600
        for _ in range(11):  # busy all day: the end does not move
            clock.tick(timedelta(hours=1))
            assert client.get("/admin/").status_code == 200
        clock.tick(timedelta(hours=1, minutes=1))  # 20:01
        response = client.get("/admin/")
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_the_staff_session_length_is_a_setting(client, settings):
    settings.SIGNALBOX_STAFF_SESSION_HOURS = 2
    boss = UserFactory(username="boss", is_staff=True)
    with freeze_time("2026-03-02 08:00:00") as clock:
        client.force_login(boss)
        clock.tick(timedelta(hours=2, seconds=1))
        assert client.get("/admin/").status_code == 302


def test_a_recipient_keeps_the_default_two_weeks(client):
    UserFactory(username="ada")
    with freeze_time("2026-03-02 08:00:00") as clock:
        assert client.post("/accounts/login/", {"username": "ada", "password": PASSWORD}).status_code == 302
        assert client.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == settings.SESSION_COOKIE_AGE
        clock.tick(timedelta(days=13))
        assert client.get("/notifications/").status_code == 200
        assert client.session.get_expiry_date() > timezone.now()
