"""The live inbox stream: another process adds a notification, an open page hears about it.

Runs on the embedded transport (polling) by default and on Redis pub/sub when REDIS_URL is set
(CI's Redis stage), with the notification written by a separate OS process either way.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings
from django.urls import reverse

from notifications.inbox import live
from tests.conftest import run_python
from tests.factories import NotificationFactory

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def read_events(response, *, until: float, stop_after: int = 1) -> list[str]:
    """Consume the SSE body until ``stop_after`` inbox events arrived or time ran out."""
    events: list[str] = []
    for chunk in response.streaming_content:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if "event: inbox" in text:
            events.append(text)
            if len(events) >= stop_after:
                break
        if time.monotonic() > until:
            break
    return events


# How long a test waits for the other process's write to reach the stream. The tests stop at the
# first event, so this costs nothing when all is well; it must cover a child Python process
# booting Django on a loaded machine (7-8 s at load 8 on two cores, which a 6 s stream missed).
WRITE_WAIT_SECONDS = 30


@pytest.fixture
def short_streams(settings):
    settings.SIGNALBOX_LIVE_STREAM_SECONDS = WRITE_WAIT_SECONDS
    settings.SIGNALBOX_LIVE_POLL_SECONDS = 0.2


def test_transport_matches_configuration():
    assert bool(live.conf.live_inbox().redis_url) == bool(settings.REDIS_URL)


def test_stream_reports_notification_from_another_process(recipient_client, recipient, short_streams):
    NotificationFactory(recipient=recipient)
    known = live.inbox_state(recipient.pk)
    response = recipient_client.get(reverse("notifications:stream"), {"state": known.event_id})
    assert response["Content-Type"] == "text/event-stream"

    def create_elsewhere() -> None:
        time.sleep(0.5)
        run_python(
            "from notifications.inbox.services import notifications_create, InboxMessage\n"
            f"notifications_create(recipient_ids=[{recipient.pk}], message=InboxMessage(title='From elsewhere'))"
        )

    writer = threading.Thread(target=create_elsewhere)
    writer.start()
    events = read_events(response, until=time.monotonic() + WRITE_WAIT_SECONDS)
    writer.join()
    response.close()
    assert len(events) == 1
    assert '"unread": 2' in events[0]
    assert f"id: 2-{live.inbox_state(recipient.pk).latest_id}" in events[0]


def test_stream_is_quiet_when_the_browser_is_up_to_date(recipient_client, recipient, settings):
    settings.SIGNALBOX_LIVE_STREAM_SECONDS = 1.5
    settings.SIGNALBOX_LIVE_POLL_SECONDS = 0.2
    NotificationFactory(recipient=recipient)
    known = live.inbox_state(recipient.pk)
    response = recipient_client.get(reverse("notifications:stream"), headers={"Last-Event-ID": known.event_id})
    body = "".join(c.decode() for c in response.streaming_content)
    assert body.startswith("retry: ")
    assert "event: inbox" not in body


def test_stream_sends_current_state_when_browser_state_is_stale_or_tampered(recipient_client, recipient, short_streams):
    NotificationFactory(recipient=recipient)
    response = recipient_client.get(reverse("notifications:stream"), {"state": "not-a-state"})
    events = read_events(response, until=time.monotonic() + 3)
    response.close()
    assert len(events) == 1 and '"unread": 1' in events[0]


def test_stream_needs_login(client):
    response = client.get(reverse("notifications:stream"))
    assert response.status_code == 302


@pytest.mark.parametrize("value", ["", "x", "1", "1-", "-1-2x", "a-b"])
def test_state_parse_rejects_garbage(value):
    assert live.InboxState.parse(value) is None


def test_state_round_trips():
    state = live.InboxState(unread=3, latest_id=42)
    assert live.InboxState.parse(state.event_id) == state


def test_async_stream_for_asgi_reports_a_change(recipient, short_streams):
    """Under ASGI the stream is an async iterator; same behaviour, no thread held."""
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    known = live.inbox_state(recipient.pk)

    async def first_event() -> str:
        stream = live.aevent_stream(recipient.pk, known)
        assert (await anext(stream)).startswith("retry: ")
        loop = asyncio.get_running_loop()
        writer = loop.run_in_executor(
            None,
            lambda: run_python(
                "from notifications.inbox.services import notifications_create, InboxMessage\n"
                f"notifications_create(recipient_ids=[{recipient.pk}], message=InboxMessage(title='Async hello'))"
            ),
        )
        try:
            async with asyncio.timeout(WRITE_WAIT_SECONDS):
                async for chunk in stream:
                    if "event: inbox" in chunk:
                        return chunk
        finally:
            await writer
            await stream.aclose()
            # The stream's database reads ran in asgiref's executor thread: close its connection.
            await sync_to_async(connections.close_all)()
        return ""

    # A thread of its own: the browser tests' Playwright loop may already run in this one.
    result: list[str] = []
    runner = threading.Thread(target=lambda: result.append(asyncio.run(first_event())))
    runner.start()
    runner.join(timeout=WRITE_WAIT_SECONDS + 30)
    assert result and '"unread": 1' in result[0]


def test_tracker_speaks_only_on_change_and_keeps_idle_connections_alive():
    state = live.InboxState(unread=1, latest_id=5)
    tracker = live._StreamTracker(state, now=0.0)
    assert tracker.event_for(state, now=1.0) is None
    assert tracker.keepalive(now=10.0) is None
    assert tracker.keepalive(now=16.0) == ": keepalive\n\n"
    changed = live.InboxState(unread=2, latest_id=6)
    assert tracker.event_for(changed, now=17.0).startswith("id: 2-6\nevent: inbox\n")
    assert tracker.keepalive(now=20.0) is None
