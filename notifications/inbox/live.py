"""The live inbox: tell a recipient's open pages that their inbox changed.

Two transports, chosen by settings and invisible to callers:

* embedded (no Redis): the stream view polls the recipient's inbox state, two index-only
  queries every ``SIGNALBOX_LIVE_POLL_SECONDS``;
* Redis: writers publish on ``signalbox:inbox:<user id>`` after commit and the stream view waits
  on that channel, touching the database only when something was published. A broadcast is
  published once, on ``signalbox:inbox:broadcasts``, which every stream also listens to; each
  then reads its own user's counts (one query), so a broadcast costs the same to announce
  whether ten people or a million can see it.

The stream speaks Server-Sent Events. Each event's ``id`` is the inbox state it describes, so a
reconnecting browser (which sends ``Last-Event-ID``) is told only about changes it has not seen.
Streams end after ``SIGNALBOX_LIVE_STREAM_SECONDS`` and the browser reconnects, so no worker
thread is held forever.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async

from .. import conf

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "signalbox:inbox:"
BROADCAST_CHANNEL = f"{CHANNEL_PREFIX}broadcasts"
KEEPALIVE_SECONDS = 15.0
RECONNECT_MS = 1000


@dataclass(frozen=True)
class InboxState:
    """What an open page knows: unread items, the newest notification and the newest broadcast."""

    unread: int
    latest_id: int
    latest_broadcast_id: int = 0

    @property
    def event_id(self) -> str:
        # "unread-latest[-latest broadcast]": the short form while no broadcast was ever seen.
        tail = f"-{self.latest_broadcast_id}" if self.latest_broadcast_id else ""
        return f"{self.unread}-{self.latest_id}{tail}"

    @classmethod
    def of(cls, counts) -> InboxState:
        """The state of ``selectors.InboxCounts`` (the inbox page, the feed and the stream alike)."""
        return cls(counts.unread, counts.latest_notification_id, counts.latest_broadcast_id)

    @classmethod
    def parse(cls, value: str | None) -> InboxState | None:
        """Read a state the browser sent back (``Last-Event-ID`` or query); None if malformed.

        Two numbers are a state with no broadcast seen.
        """
        try:
            numbers = [int(part) for part in (value or "").split("-")]
        except ValueError:
            return None
        if len(numbers) not in (2, 3) or min(numbers) < 0:
            return None
        return cls(*numbers)


def inbox_state(user_id: int) -> InboxState:
    from .selectors import inbox_counts

    return InboxState.of(inbox_counts(user_id=user_id))


def channel_name(user_id: int) -> str:
    return f"{CHANNEL_PREFIX}{user_id}"


_redis_clients: dict[str, object] = {}


def _redis(url: str):
    import redis

    if url not in _redis_clients:
        _redis_clients[url] = redis.Redis.from_url(url)
    return _redis_clients[url]


def publish_inbox_changed(user_ids: Iterable[int]) -> None:
    """Announce that these users' inboxes changed. Call after commit (``on_commit``).

    Without Redis this does nothing: streams poll. A Redis outage must not lose the write that
    already committed, so publish errors are logged and streams fall back on their next reconnect.
    """
    url = conf.live_inbox().redis_url
    if not url:
        return
    ids = sorted(set(user_ids))
    if not ids:
        return
    try:
        pipe = _redis(url).pipeline(transaction=False)
        for user_id in ids:
            pipe.publish(channel_name(user_id), "changed")
        pipe.execute()
    except Exception:  # noqa: BLE001 - see docstring: the committed write stands, the page catches up.
        logger.exception("Could not publish live inbox update for %d user(s)", len(ids))


def publish_broadcast() -> None:
    """Announce that a broadcast was sent or withdrawn: one message every stream hears."""
    url = conf.live_inbox().redis_url
    if not url:
        return
    try:
        _redis(url).publish(BROADCAST_CHANNEL, "changed")
    except Exception:  # noqa: BLE001 - as publish_inbox_changed: the committed write stands.
        logger.exception("Could not publish a live broadcast update")


def format_event(state: InboxState) -> str:
    data = json.dumps({"unread": state.unread, "latest": state.latest_id, "latest_broadcast": state.latest_broadcast_id})
    return f"id: {state.event_id}\nevent: inbox\ndata: {data}\n\n"


class _StreamTracker:
    """What one open stream has told its browser, and what it should say next."""

    def __init__(self, known: InboxState | None, now: float) -> None:
        self.state = known
        self.last_write = now

    def event_for(self, current: InboxState, now: float) -> str | None:
        if current == self.state:
            return None
        self.state, self.last_write = current, now
        return format_event(current)

    def keepalive(self, now: float) -> str | None:
        # A comment line keeps proxies from closing an idle connection.
        if now - self.last_write <= KEEPALIVE_SECONDS:
            return None
        self.last_write = now
        return ": keepalive\n\n"


def event_stream(user_id: int, known: InboxState | None) -> Iterator[str]:
    """Server-Sent Events for one recipient, for WSGI servers."""
    settings = conf.live_inbox()
    deadline = time.monotonic() + settings.stream_seconds
    yield f"retry: {RECONNECT_MS}\n\n"
    tracker = _StreamTracker(known, time.monotonic())
    pubsub = None
    if settings.redis_url:
        pubsub = _redis(settings.redis_url).pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel_name(user_id), BROADCAST_CHANNEL)
    try:
        check = True  # always look once: something may have changed before we subscribed
        while time.monotonic() < deadline:
            if check and (event := tracker.event_for(inbox_state(user_id), time.monotonic())):
                yield event
            if ping := tracker.keepalive(time.monotonic()):
                yield ping
            if pubsub is not None:
                check = pubsub.get_message(timeout=1.0) is not None
            else:
                time.sleep(settings.poll_seconds)
                check = True
    finally:
        if pubsub is not None:
            pubsub.close()


async def aevent_stream(user_id: int, known: InboxState | None) -> AsyncIterator[str]:
    """The same stream for ASGI servers, without holding a thread per open page."""
    import asyncio

    settings = conf.live_inbox()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.stream_seconds
    read_state = sync_to_async(inbox_state)
    yield f"retry: {RECONNECT_MS}\n\n"
    tracker = _StreamTracker(known, loop.time())
    pubsub = client = None
    if settings.redis_url:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(settings.redis_url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel_name(user_id), BROADCAST_CHANNEL)
    try:
        check = True
        while loop.time() < deadline:
            if check and (event := tracker.event_for(await read_state(user_id), loop.time())):
                yield event
            if ping := tracker.keepalive(loop.time()):
                yield ping
            if pubsub is not None:
                check = await pubsub.get_message(timeout=1.0) is not None
            else:
                await asyncio.sleep(settings.poll_seconds)
                check = True
    finally:
        if pubsub is not None:
            await pubsub.aclose()
            await client.aclose()
