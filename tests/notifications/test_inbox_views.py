"""The recipient inbox: pages, badge, read marks, and refusal of bad requests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from tests.factories import CategoryFactory, NotificationFactory

pytestmark = pytest.mark.django_db

INBOX = reverse("notifications:inbox")


def make_inbox(user, n: int, *, unread: int | None = None, category=None) -> list[Notification]:
    now = timezone.now()
    items = [
        NotificationFactory(recipient=user, title=f"Message {i}", created_at=now - timedelta(minutes=n - i), category=category)
        for i in range(n)
    ]
    read_upto = n - (n if unread is None else unread)
    Notification.objects.filter(pk__in=[x.pk for x in items[:read_upto]]).update(read_at=now)
    return items


def test_anonymous_is_sent_to_login(client):
    response = client.get(INBOX)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_inbox_lists_newest_first_with_unread_badge(recipient_client, recipient):
    make_inbox(recipient, 3, unread=2)
    response = recipient_client.get(INBOX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("Message 2") < html.index("Message 1") < html.index("Message 0")
    assert 'data-testid="unread-badge"' in html
    assert ">2</span>" in html
    assert response.context["unread"] == 2


def test_inbox_is_paginated(recipient_client, recipient, settings):
    settings.SIGNALBOX_INBOX_PAGE_SIZE = 20
    make_inbox(recipient, 45)
    first = recipient_client.get(INBOX)
    third = recipient_client.get(INBOX, {"page": 3})
    assert len(first.context["page"].object_list) == 20
    assert [n.title for n in third.context["page"].object_list] == [f"Message {i}" for i in range(4, -1, -1)]
    # A malformed or out-of-range page number shows a page rather than an error.
    assert recipient_client.get(INBOX, {"page": "abc"}).context["page"].number == 1
    assert recipient_client.get(INBOX, {"page": 99}).context["page"].number == 3


def test_inbox_shows_only_own_notifications(recipient_client, recipient, other_recipient):
    make_inbox(other_recipient, 2)
    NotificationFactory(recipient=recipient, title="Mine")
    html = recipient_client.get(INBOX).content.decode()
    assert "Mine" in html
    assert "Message 0" not in html


def test_inbox_query_count_is_constant(recipient_client, recipient, django_assert_num_queries):
    category = CategoryFactory(name="Promotions")
    make_inbox(recipient, 5, category=category)
    # session, user, page count, the page (category joined), unread count
    with django_assert_num_queries(5):
        recipient_client.get(INBOX)
    make_inbox(recipient, 40, category=category)
    with django_assert_num_queries(5):
        response = recipient_client.get(INBOX)
    assert "Promotions" in response.content.decode()


def test_content_is_escaped(recipient_client, recipient):
    NotificationFactory(recipient=recipient, title="<script>alert(1)</script>", body="<img src=x onerror=alert(2)>")
    html = recipient_client.get(INBOX).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_badge_fragment(recipient_client, recipient):
    make_inbox(recipient, 4, unread=3)
    response = recipient_client.get(reverse("notifications:badge"))
    html = response.content.decode().strip()
    assert html.startswith('<span id="inbox-badge"')
    assert ">3</span>" in html
    assert "<html" not in html


def test_htmx_inbox_request_gets_only_the_list(recipient_client, recipient):
    make_inbox(recipient, 2)
    html = recipient_client.get(INBOX, headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith('<section id="inbox-list"')
    assert "<html" not in html


def test_mark_one_read(recipient_client, recipient):
    items = make_inbox(recipient, 3, unread=3)
    response = recipient_client.post(reverse("notifications:mark_read", args=[items[1].pk]))
    assert response.status_code == 302
    assert Notification.objects.unread().filter(recipient=recipient).count() == 2
    items[1].refresh_from_db()
    assert items[1].read_at is not None


def test_mark_one_read_with_htmx_returns_list_and_asks_badge_to_refresh(recipient_client, recipient):
    items = make_inbox(recipient, 3, unread=3)
    response = recipient_client.post(
        reverse("notifications:mark_read", args=[items[0].pk]), {"page": 1}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == '{"inbox-changed": {}}'
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="inbox-list"')
    assert "2 unread" in html


def test_mark_all_read(recipient_client, recipient, other_recipient):
    make_inbox(recipient, 5, unread=4)
    make_inbox(other_recipient, 3, unread=3)
    response = recipient_client.post(reverse("notifications:mark_all_read"))
    assert response.status_code == 302
    assert Notification.objects.unread().filter(recipient=recipient).count() == 0
    assert Notification.objects.unread().filter(recipient=other_recipient).count() == 3


def test_read_signal_lists_only_changed_ids(recipient_client, recipient, django_capture_on_commit_callbacks):
    from notifications.signals import notification_read

    items = make_inbox(recipient, 3, unread=2)
    received = []

    def receiver(sender, user, notification_ids, **kwargs):
        received.append((user, sorted(notification_ids)))

    notification_read.connect(receiver, dispatch_uid="test-read")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            recipient_client.post(reverse("notifications:mark_all_read"))
        with django_capture_on_commit_callbacks(execute=True):
            recipient_client.post(reverse("notifications:mark_all_read"))  # nothing left: no signal
    finally:
        notification_read.disconnect(dispatch_uid="test-read")
    assert received == [(recipient, sorted([items[1].pk, items[2].pk]))]


# --- bad input ------------------------------------------------------------------------------


def test_someone_elses_notification_is_404_and_unchanged(recipient_client, other_recipient):
    theirs = NotificationFactory(recipient=other_recipient)
    for name in ("notifications:mark_read", "notifications:open"):
        response = recipient_client.post(reverse(name, args=[theirs.pk]))
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_non_numeric_and_missing_ids_are_404(recipient_client):
    assert recipient_client.post("/notifications/abc/read/").status_code == 404
    assert recipient_client.post("/notifications/-1/read/").status_code == 404
    assert recipient_client.post(reverse("notifications:mark_read", args=[999999])).status_code == 404


def test_get_to_state_changing_urls_is_405_and_changes_nothing(recipient_client, recipient):
    items = make_inbox(recipient, 2, unread=2)
    for url in (
        reverse("notifications:mark_read", args=[items[0].pk]),
        reverse("notifications:open", args=[items[0].pk]),
        reverse("notifications:mark_all_read"),
    ):
        assert recipient_client.get(url).status_code == 405
    assert Notification.objects.unread().filter(recipient=recipient).count() == 2


def test_missing_csrf_token_is_403_and_changes_nothing(recipient):
    client = Client(enforce_csrf_checks=True)
    client.force_login(recipient)
    items = make_inbox(recipient, 2, unread=2)
    assert client.post(reverse("notifications:mark_read", args=[items[0].pk])).status_code == 403
    assert client.post(reverse("notifications:mark_all_read")).status_code == 403
    assert Notification.objects.unread().filter(recipient=recipient).count() == 2


def test_open_follows_safe_links_only(recipient_client, recipient):
    internal = NotificationFactory(recipient=recipient, url="/notifications/?from=mail")
    external = NotificationFactory(recipient=recipient, url="https://shop.example.com/orders/42")
    hostile = NotificationFactory(recipient=recipient, url="javascript:alert(1)")
    assert recipient_client.post(reverse("notifications:open", args=[internal.pk]))["Location"] == internal.url
    assert recipient_client.post(reverse("notifications:open", args=[external.pk]))["Location"] == external.url
    assert recipient_client.post(reverse("notifications:open", args=[hostile.pk]))["Location"] == INBOX
    html = recipient_client.get(INBOX).content.decode()
    assert "javascript:" not in html
