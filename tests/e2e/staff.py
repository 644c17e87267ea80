"""Signing a staff member in, in Chromium, as the journeys do."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.factories import PASSWORD


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{base_url}/admin/")


def make_staff(**groups: str) -> dict:
    """Staff members by user name, each in the named role group (``make_staff(mia="Marketers")``),
    with the test password; the role groups are ensured first."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from accounts.roles import roles_ensure

    roles_ensure()
    staff = {}
    for username, group in groups.items():
        user = get_user_model().objects.create_user(username, f"{username}@staff.example", PASSWORD, is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        staff[username] = user
    return staff
