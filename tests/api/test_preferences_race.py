"""Two PATCHes of one person's preferences at the same moment (each thread its own connection):
both changes survive. PostgreSQL serialises them by the row lock, SQLite by its immediate write
transaction. Each PATCH merges into what it read, so without a lock the
second write would put back what the first turned off."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from api import preferences as api_preferences
from notifications.recipients.preferences import preferences_state
from tests.factories import CategoryFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_concurrent_preference_changes_both_survive(monkeypatch):
    news = CategoryFactory(key="news", user_can_opt_out=True, default_enabled=True)
    offers = CategoryFactory(key="offers", user_can_opt_out=True, default_enabled=True)
    user = RecipientProfileFactory(user=UserFactory(username="racer")).user
    both_read = threading.Barrier(2)

    def read_then_wait(*, user):
        state = preferences_state(user=user)
        # Hold each request between its read and its write until the other has read too. With the
        # lock the second cannot read yet: the first gives up waiting and writes alone.
        try:
            both_read.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass
        return state

    monkeypatch.setattr(api_preferences, "preferences_state", read_then_wait)

    def change(key):
        try:
            return api_preferences.preferences_change(
                user=user, channels={key: {"email": False}}, digest={}, quiet_hours=None,
                clear_quiet_hours=False, timezone=None)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(change, ["news", "offers"]))
    state = preferences_state(user=user)
    assert (news.pk, "email") not in state.enabled
    assert (offers.pk, "email") not in state.enabled
