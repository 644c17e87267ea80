"""Broadcasts: one row for every inbox, read state per user only once read (issue 10, point 3).

Recipients see them through the inbox page, the badge and the read buttons like any
notification; staff send and withdraw them in the admin (permission-checked, audited).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from accounts.roles import roles_ensure
from notifications.api import broadcast
from notifications.models import AuditEntry, Broadcast, BroadcastRead, Notification, Preference, Suppression
from notifications.inbox.selectors import unread_count
from notifications.inbox.services import broadcast_send
from notifications.signals import notification_read
from tests.factories import CategoryFactory, NotificationFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

INBOX = reverse("notifications:inbox")
BADGE = reverse("notifications:badge")


def person(username: str, **fields):
    return RecipientProfileFactory(user=UserFactory(username=username, **fields)).user


def staff(username: str, group: str):
    roles_ensure()
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def ada():
    return person("ada", date_joined=timezone.now() - timedelta(days=30))


@pytest.fixture
def grace():
    return person("grace", date_joined=timezone.now() - timedelta(days=30))


def badge(client, user) -> str:
    client.force_login(user)
    html = client.get(BADGE).content.decode()
    return html.split(">")[-2].split("<")[0]


def read_url(b: Broadcast) -> str:
    return reverse("notifications:broadcast_read", args=[b.pk])


def test_a_broadcast_is_in_every_inbox_and_counts_once_per_user(client, ada, grace):
    NotificationFactory(recipient=ada, title="Your order shipped")
    sent = broadcast(title="Maintenance tonight", body="Read-only from 02:00 UTC.", url="/status/")

    assert Broadcast.objects.count() == 1 and not BroadcastRead.objects.exists()
    assert (badge(client, ada), badge(client, grace)) == ("2", "1")
    client.force_login(grace)
    html = client.get(INBOX).content.decode()
    assert "Maintenance tonight" in html and "Read-only from 02:00 UTC." in html
    assert f'id="broadcast-{sent.pk}"' in html


def test_mark_read_is_per_user(client, ada, grace):
    sent = broadcast(title="Maintenance tonight")
    client.force_login(ada)

    response = client.post(read_url(sent))

    assert response.status_code == 302
    assert (badge(client, ada), badge(client, grace)) == ("0", "1")
    client.force_login(ada)
    assert client.post(read_url(sent)).status_code == 302  # again: nothing changes
    assert BroadcastRead.objects.filter(broadcast=sent).count() == 1


def test_mark_all_read_covers_broadcasts_and_announces_them(client, ada, grace, django_capture_on_commit_callbacks):
    NotificationFactory(recipient=ada)
    sent = [broadcast(title="One"), broadcast(title="Two")]
    heard = []

    def on_read(sender, user, notification_ids, broadcast_ids, **kwargs):
        heard.append((user.pk, len(notification_ids), sorted(broadcast_ids)))

    notification_read.connect(on_read, dispatch_uid="test-broadcast-read")
    try:
        client.force_login(ada)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("notifications:mark_all_read"))
    finally:
        notification_read.disconnect(dispatch_uid="test-broadcast-read")
    assert response.status_code == 302
    assert (badge(client, ada), badge(client, grace)) == ("0", "2")
    assert heard == [(ada.pk, 1, sorted(b.pk for b in sent))]


def test_htmx_read_answers_with_the_list_and_the_badge_event(client, ada):
    sent = broadcast(title="Maintenance tonight")
    client.force_login(ada)
    response = client.post(read_url(sent), {"page": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "inbox-changed" in response["HX-Trigger"]
    assert "0 unread" in response.content.decode()


def test_a_category_broadcast_skips_those_who_left_the_category(client, ada, grace):
    news = CategoryFactory(key="news", name="News", kind="marketing")
    Preference.objects.create(user=grace, category=news, channel="inapp", enabled=False)
    sent = broadcast(title="What is new", category="news")

    assert (badge(client, ada), badge(client, grace)) == ("1", "0")
    client.force_login(grace)
    assert "What is new" not in client.get(INBOX).content.decode()
    # Not in their inbox: reading or opening it is a 404, as for someone else's notification.
    assert client.post(read_url(sent)).status_code == 404
    assert client.post(reverse("notifications:broadcast_open", args=[sent.pk])).status_code == 404
    assert not BroadcastRead.objects.exists()


def test_transactional_broadcasts_reach_those_who_opted_out_but_never_a_suppressed_inbox(client, ada, grace):
    receipts = CategoryFactory(key="receipts", name="Receipts", kind="transactional", user_can_opt_out=False)
    Preference.objects.create(user=ada, category=receipts, channel="inapp", enabled=False)
    Suppression.objects.create(channel="inapp", address=str(grace.pk), reason="manual")
    broadcast(title="Your receipts moved", category=receipts)
    assert (badge(client, ada), badge(client, grace)) == ("1", "0")


def test_people_who_join_later_do_not_get_older_broadcasts(client, ada):
    sent = broadcast_send(title="Last week's outage", now=timezone.now() - timedelta(days=7))
    newcomer = person("newcomer")  # joined just now
    assert (badge(client, ada), badge(client, newcomer)) == ("1", "0")
    client.force_login(newcomer)
    assert client.post(read_url(sent)).status_code == 404


def test_open_marks_read_and_follows_only_safe_links(client, ada):
    sent = broadcast(title="Status page", url="https://status.example.com/")
    client.force_login(ada)
    response = client.post(reverse("notifications:broadcast_open", args=[sent.pk]))
    assert response["Location"] == "https://status.example.com/"
    assert badge(client, ada) == "0"
    with pytest.raises(Exception, match="link must start"):
        broadcast(title="Bad", url="javascript:alert(1)")


def test_sending_costs_the_same_whatever_the_audience(django_assert_num_queries, ada):
    broadcast(title="Warm-up")  # content types and statements cached
    with django_assert_num_queries(4) as few:  # savepoint, the broadcast, its audit entry, release
        broadcast(title="To three")
    for i in range(50):
        person(f"many{i}")
    with django_assert_num_queries(len(few.captured_queries)):
        broadcast(title="To fifty-three")


def test_the_badge_is_one_query_with_broadcasts(django_assert_num_queries, ada):
    news = CategoryFactory(key="news", name="News", kind="marketing")
    Preference.objects.create(user=ada, category=news, channel="inapp", enabled=False)
    for i in range(5):
        broadcast(title=f"B{i}", category=news if i % 2 else None)
        NotificationFactory(recipient=ada, read_at=None if i % 2 else timezone.now())
    with django_assert_num_queries(1):
        assert unread_count(user=ada) == 2 + 3


# --- The admin: Broadcasts ------------------------------------------------------------------------

ADD = reverse("admin:notifications_broadcast_add")
LIST = reverse("admin:notifications_broadcast_changelist")


def test_a_marketer_sends_a_broadcast_from_the_admin(client, ada):
    client.force_login(staff("maya", "Marketers"))
    assert client.get(ADD).status_code == 200

    response = client.post(ADD, {"title": "Maintenance tonight", "body": "02:00 UTC", "url": "/status/"})

    assert response.status_code == 302, response.content.decode()[:2000]
    sent = Broadcast.objects.get()
    assert sent.created_by.username == "maya"
    assert AuditEntry.objects.filter(action="broadcast.send", target_id=str(sent.pk)).exists()
    assert badge(client, ada) == "1"


def test_the_admin_form_refuses_a_link_that_could_run_script(client):
    client.force_login(staff("maya", "Marketers"))
    response = client.post(ADD, {"title": "Click", "url": "javascript:alert(1)"})
    assert response.status_code == 200
    assert "The link must start with https://, http:// or /." in response.content.decode()
    assert not Broadcast.objects.exists()


def test_managers_see_broadcasts_and_operators_do_not_send_them(client):
    broadcast(title="Maintenance tonight")
    client.force_login(staff("manny", "Managers"))
    assert client.get(LIST).status_code == 200
    assert client.get(ADD).status_code == 403
    client.force_login(staff("otto", "Operators"))
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"title": "Hi all"}).status_code == 403
    assert Broadcast.objects.count() == 1


def test_sending_a_broadcast_is_its_own_permission_not_adding_inbox_notifications(client):
    """A group that may add single inbox notifications may not announce to everyone."""
    from django.contrib.auth.models import Permission
    from django.core.exceptions import PermissionDenied

    writer = UserFactory(username="wren", is_staff=True)
    writer.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="notifications", codename__in=["view_notification", "add_notification"]))
    client.force_login(writer)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"title": "Hi all"}).status_code == 403
    with pytest.raises(PermissionDenied):
        broadcast_send(title="Hi all", actor=writer)
    assert not Broadcast.objects.exists()

    writer.user_permissions.add(Permission.objects.get(codename="send_broadcast"))
    writer = type(writer).objects.get(pk=writer.pk)  # permissions are cached per instance
    assert broadcast_send(title="Hi all", actor=writer).title == "Hi all"


def test_withdrawing_takes_it_out_of_every_inbox(client, ada):
    sent = broadcast(title="Wrong date")
    client.force_login(staff("maya", "Marketers"))
    response = client.post(reverse("admin:notifications_broadcast_delete", args=[sent.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Broadcast.objects.exists()
    assert AuditEntry.objects.filter(action="broadcast.withdraw").exists()
    assert badge(client, ada) == "0"
    assert not Notification.objects.exists()


def test_every_slice_of_the_inbox_is_that_slice_of_one_newest_first_order(ada, grace):
    """Each side of the inbox reads only its newest rows for a slice; what a page shows must still
    be that page of the whole inbox: times interleaved, a notification and a broadcast made at
    one instant (the notification first), a read broadcast, another person's rows left out."""
    from notifications.inbox.selectors import inbox_items

    now = timezone.now()
    for minutes in (1, 2, 4, 7, 8, 9, 15):
        NotificationFactory(recipient=ada, title=f"n{minutes}", created_at=now - timedelta(minutes=minutes))
    NotificationFactory(recipient=grace, title="not ada's", created_at=now)
    for minutes in (3, 5, 6, 9, 20):
        Broadcast.objects.create(title=f"b{minutes}", body="", created_at=now - timedelta(minutes=minutes))
    Broadcast.objects.filter(title="b9").update(created_at=Notification.objects.get(title="n9").created_at)
    BroadcastRead.objects.create(user=ada, broadcast=Broadcast.objects.get(title="b5"), read_at=now)

    everything = inbox_items(user_id=ada.pk)[0:100]
    titles = [row[2] for row in everything]
    assert titles == ["n1", "n2", "b3", "n4", "b5", "b6", "n7", "n8", "n9", "b9", "n15", "b20"]
    assert everything[4][7] is not None  # b5 was read: its own read time
    for start, stop in [(0, 1), (0, 3), (3, 8), (8, 10), (9, 12), (10, 40), (12, 20)]:
        assert inbox_items(user_id=ada.pk)[start:stop] == everything[start:stop], (start, stop)
