"""Brute force against the login forms: accounts and addresses lock, and unlock by time or by a superuser."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse
from freezegun import freeze_time

from notifications.models import AuditEntry
from tests.accounts.conftest import staff_in
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN_URLS = ["/accounts/login/", "/admin/login/"]
LOCKED = "Too many failed sign-ins"


def attempts():
    from axes.models import AccessAttempt  # imported here: a test of the old code fails on its assertions

    return AccessAttempt.objects


def attempt(client, url: str, username: str, password: str, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def victim(db):
    # Staff, so that the right password would sign in on the admin's login page too.
    return UserFactory(username="victim", is_staff=True)


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_thirty_wrong_passwords_lock_the_account_and_the_right_one_is_refused(client, lockout, victim, url):
    statuses = [attempt(client, url, "victim", f"guess-{i}").status_code for i in range(30)]

    assert statuses[:9] == [200] * 9  # the form again, with its error
    assert statuses[9:] == [429] * 21  # the tenth failure locks
    response = attempt(client, url, "victim", PASSWORD)
    assert response.status_code == 429
    page = response.content.decode()
    assert LOCKED in page and "You can try again in 15 minutes" in page
    assert not signed_in(client)
    # Refused while locked, the attempts were not counted: the lockout still ends when it said.
    assert attempts().get(username="victim").failures_since_start == 10


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_many_usernames_from_one_address_lock_the_address(client, lockout, victim, url):
    for i in range(10):
        attempt(client, url, f"someone-{i}", "guess", REMOTE_ADDR="198.51.100.7")

    refused = attempt(client, url, "victim", PASSWORD, REMOTE_ADDR="198.51.100.7")
    assert refused.status_code == 429 and LOCKED in refused.content.decode()
    assert not signed_in(client)

    # The account itself is not locked: from another address it signs in.
    assert attempt(client, url, "victim", PASSWORD, REMOTE_ADDR="203.0.113.5").status_code == 302
    assert signed_in(client)


def test_a_forged_forwarded_for_header_does_not_change_the_counted_address(client, lockout, victim):
    for i in range(10):
        attempt(client, "/accounts/login/", f"someone-{i}", "guess", headers={"x-forwarded-for": f"10.9.8.{i}"})
    response = attempt(client, "/accounts/login/", "victim", PASSWORD, headers={"x-forwarded-for": "10.9.8.200"})
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_client_address_comes_from_the_proxy(client, lockout, victim):
    lockout.SIGNALBOX_TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for i in range(10):
        # The client forges the left part; the proxy appends the address it saw on the right.
        attempt(client, "/accounts/login/", f"someone-{i}", "guess", headers={"x-forwarded-for": f"1.2.3.{i}, 198.51.100.7"}, **proxy)
    locked = attempt(client, "/accounts/login/", "victim", PASSWORD, headers={"x-forwarded-for": "198.51.100.7"}, **proxy)
    assert locked.status_code == 429
    # Another client behind the same proxy is not locked out with them.
    other = attempt(client, "/accounts/login/", "victim", PASSWORD, headers={"x-forwarded-for": "203.0.113.5"}, **proxy)
    assert other.status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, lockout, victim):
    with freeze_time("2026-03-02 09:00:00") as clock:
        for i in range(10):
            attempt(client, "/admin/login/", "victim", f"guess-{i}")
        clock.tick(60)
        response = attempt(client, "/admin/login/", "victim", PASSWORD)
        assert response.status_code == 429
        assert "You can try again in 14 minutes, after 09:15 UTC" in response.content.decode()

        clock.tick(13 * 60)  # 09:14: still locked (and this attempt does not push the end back)
        assert attempt(client, "/admin/login/", "victim", PASSWORD).status_code == 429
        clock.tick(2 * 60)  # 09:16
        assert attempt(client, "/admin/login/", "victim", PASSWORD).status_code == 302
        assert signed_in(client)


def test_a_superuser_unlocks_in_the_admin_and_it_is_audited(client, lockout, victim, superuser):
    for i in range(10):
        attempt(client, "/accounts/login/", "victim", f"guess-{i}")
    assert attempt(client, "/accounts/login/", "victim", PASSWORD).status_code == 429

    admin = client.__class__()
    admin.force_login(superuser)
    changelist = reverse("admin:axes_accessattempt_changelist")
    page = admin.get(changelist)
    assert page.status_code == 200 and "victim" in page.content.decode()
    assert 'href="/admin/axes/accessattempt/"' in admin.get(reverse("admin:index")).content.decode()  # in the sidebar
    row = attempts().get(username="victim")
    response = admin.post(changelist, {"action": "unlock", "_selected_action": [row.pk]})
    assert response.status_code == 302
    assert not attempts().exists()
    entry = AuditEntry.objects.get(action="account.lockout_cleared")
    assert entry.actor == superuser and entry.changes["username"] == "victim"

    assert attempt(client, "/accounts/login/", "victim", PASSWORD).status_code == 302
    assert signed_in(client)


@pytest.mark.parametrize("group", ["Operators", "Managers", "Marketers"])
def test_only_superusers_see_lockouts(client, lockout, group):
    attempts().create(username="victim", ip_address="127.0.0.1", user_agent="", failures_since_start=10,
                                 get_data="", post_data="", http_accept="", path_info="/accounts/login/")
    client.force_login(staff_in(group, "staffer"))
    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403
    row = attempts().get()
    assert client.post(reverse("admin:axes_accessattempt_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    assert attempts().exists()


def test_the_lockout_page_speaks_chinese(client, lockout, victim, chinese):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = chinese
    for i in range(10):
        response = attempt(client, "/accounts/login/", "victim", f"guess-{i}")
    assert response.status_code == 429
    page = response.content.decode()
    assert '<html lang="zh-hans">' in page
    assert "登录失败次数过多" in page and "15 分钟后" in page
    assert LOCKED not in page


def test_a_successful_sign_in_below_the_limit_is_not_affected(client, lockout, victim):
    for i in range(9):
        attempt(client, "/accounts/login/", "victim", f"guess-{i}")
    assert attempt(client, "/accounts/login/", "victim", PASSWORD).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_lockout_page_is_the_same(async_client, lockout, victim):
    """Production serves ASGI, where axes' middleware runs its async branch (which passes the
    lockout callable its arguments shifted by one)."""
    import asyncio
    import concurrent.futures

    from asgiref.sync import sync_to_async
    from django.db import connections

    async def hammer():
        responses = [
            await async_client.post("/admin/login/", {"username": "victim", "password": f"guess-{i}"}) for i in range(10)
        ]
        responses.append(await async_client.post("/admin/login/", {"username": "victim", "password": PASSWORD}))
        await sync_to_async(connections.close_all)()
        return responses

    # In a thread of its own: asyncio.run() refuses to nest in a loop a browser test left running.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        responses = pool.submit(asyncio.run, hammer()).result()

    assert [r.status_code for r in responses] == [200] * 9 + [429, 429]
    assert LOCKED in responses[-1].content.decode() and "You can try again in 15 minutes" in responses[-1].content.decode()
