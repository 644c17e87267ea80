"""The embeddable inbox's server side: the JSON feed, the ``{% signalbox_inbox %}`` tag, and the
read marks the component posts (the inbox page's own views, CSRF-checked)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from django.utils import timezone, translation

from notifications.api import broadcast
from notifications.models import Notification
from tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

FEED = reverse("notifications:feed")


def make_items(user, n: int) -> list[Notification]:
    now = timezone.now()
    return [NotificationFactory(recipient=user, title=f"Message {i}", body=f"Body {i}", url="/shop/",
                                created_at=now - timedelta(minutes=n - i)) for i in range(n)]


def test_feed_needs_a_signed_in_user(client):
    response = client.get(FEED)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_feed_lists_own_newest_items_with_broadcasts_and_counts(recipient_client, recipient, other_recipient):
    make_items(recipient, 3)
    NotificationFactory(recipient=other_recipient, title="Not yours")
    Notification.objects.filter(recipient=recipient, title="Message 0").update(read_at=timezone.now())
    broadcast(title="Shop closed on Monday")

    data = recipient_client.get(FEED).json()
    assert [item["title"] for item in data["items"]] == ["Shop closed on Monday", "Message 2", "Message 1", "Message 0"]
    assert data["unread"] == 3  # two notifications and the broadcast, as the badge counts them
    first, second = data["items"][:2]
    assert (first["kind"], first["read"], second["read"], data["items"][-1]["read"]) == ("broadcast", False, False, True)
    assert second["body"] == "Body 2" and second["url"] == "/shop/"
    assert second["mark_read_url"] == reverse("notifications:mark_read", args=[int(second["id"].split("-")[1])])
    assert first["mark_read_url"].startswith("/notifications/broadcasts/")
    # The state is the stream's event id for these counts, so the stream starts from what was shown.
    unread, latest, _latest_broadcast = data["state"].split("-")
    assert (int(unread), int(latest)) == (3, Notification.objects.filter(recipient=recipient).latest("id").pk)


def test_feed_limit_is_bounded_and_bad_input_is_not_an_error(recipient_client, recipient):
    make_items(recipient, 12)
    assert len(recipient_client.get(FEED).json()["items"]) == 10
    assert len(recipient_client.get(FEED, {"limit": 3}).json()["items"]) == 3
    assert len(recipient_client.get(FEED, {"limit": "many"}).json()["items"]) == 10
    assert len(recipient_client.get(FEED, {"limit": -4}).json()["items"]) == 1
    assert recipient_client.post(FEED).status_code == 405


def test_feed_query_count_does_not_grow_with_items(recipient_client, recipient, django_assert_num_queries):
    make_items(recipient, 2)
    with django_assert_num_queries(4):  # session, user, the items, the counts
        recipient_client.get(FEED)
    make_items(recipient, 20)
    with django_assert_num_queries(4):
        recipient_client.get(FEED, {"limit": 20})


def test_feed_shows_a_title_as_data_not_markup(recipient_client, recipient):
    NotificationFactory(recipient=recipient, title="<img src=x onerror=alert(1)>")
    response = recipient_client.get(FEED)
    assert response["Content-Type"] == "application/json"
    assert response.json()["items"][0]["title"] == "<img src=x onerror=alert(1)>"


def test_read_marks_the_component_posts_need_the_csrf_token_and_ones_own_item(recipient, other_recipient):
    mine = NotificationFactory(recipient=recipient)
    theirs = NotificationFactory(recipient=other_recipient)
    client = Client(enforce_csrf_checks=True)
    client.force_login(recipient)
    client.get(reverse("shop:orders"))  # the page the tag is on sets the CSRF cookie
    token = client.cookies["csrftoken"].value

    assert client.post(reverse("notifications:mark_read", args=[mine.pk])).status_code == 403
    assert client.post(reverse("notifications:mark_all_read")).status_code == 403
    mine.refresh_from_db()
    assert mine.read_at is None

    assert client.post(reverse("notifications:mark_read", args=[theirs.pk]), HTTP_X_CSRFTOKEN=token).status_code == 404
    assert client.post(reverse("notifications:mark_read", args=[mine.pk]), HTTP_X_CSRFTOKEN=token).status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.read_at is not None and theirs.read_at is None


def _render_tag(user, language: str = "en") -> str:
    request = RequestFactory().get("/shop/")
    request.user = user
    with translation.override(language):
        return Template("{% load signalbox_inbox %}{% signalbox_inbox limit=5 %}").render(Context({"request": request}))


def _attributes(html: str) -> dict[str, str]:
    import html as html_module

    tag = re.search(r"<signalbox-inbox([^>]*)>", html).group(1)
    return {name: html_module.unescape(value) for name, value in re.findall(r'([\w-]+)="([^"]*)"', tag)}


def test_tag_renders_the_element_with_endpoints_counts_and_english_labels(recipient):
    make_items(recipient, 2)
    html = _render_tag(recipient)
    attributes = _attributes(html)
    assert attributes["feed-url"] == FEED
    assert attributes["stream-url"] == reverse("notifications:stream")
    assert attributes["mark-all-url"] == reverse("notifications:mark_all_read")
    assert (attributes["unread"], attributes["limit"], attributes["lang"]) == ("2", "5", "en")
    assert attributes["csrf-token"]
    assert attributes["stylesheet"].endswith("signalbox/inbox.css")
    assert json.loads(attributes["labels"])["markAllRead"] == "Mark all as read"
    assert re.search(r'<script src="[^"]*signalbox/inbox\.js" defer></script>', html)


def test_tag_labels_follow_the_page_language(recipient):
    attributes = _attributes(_render_tag(recipient, "zh-hans"))
    labels = json.loads(attributes["labels"])
    assert attributes["lang"] == "zh-hans"
    assert (labels["notifications"], labels["markRead"], labels["markAllRead"]) == ("通知", "标为已读", "全部标为已读")
    assert (labels["unread"], labels["bellUnread"]) == ("{n} 条未读", "通知，{n} 条未读")


def test_tag_renders_nothing_for_a_visitor():
    assert _render_tag(AnonymousUser()).strip() == ""
