"""Signalbox's developer kit: pytest fixtures for the test suites of projects that integrate it.

Load it from your ``conftest.py``::

    pytest_plugins = ["notifications.testing"]

and write tests that say what a person should have received::

    def test_paying_notifies_the_customer(signalbox_outbox, assert_notified, order):
        order_mark_paid(order=order)
        assert_notified(order.customer.user, template="order-paid", channel="email")
        assert signalbox_outbox["email"][0].subject == "Payment received: order SB-1"

``signalbox_outbox`` swaps every channel that would leave the process (email, SMS, web push, chat,
any alias you configured) for the in-memory twin (``channels_adapters.locmem.LocmemChannel``) with
the features of the adapter it replaces, and keeps the in-app inbox real (it writes only to your
test database). Reading the outbox first sends what is due, as a worker would: a test needs no
worker, no ``on_commit`` and no task backend, with the ``db`` fixture or ``transactional_db``
alike. What the ledger decided not to send (suppressed, opted out, no address, held for quiet
hours or a digest, failed) is kept apart in ``signalbox_outbox.not_sent``, with the reason, and
``assert_notified`` lists both when it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from channels_adapters.features import ChannelFeatures, features_for_alias
from channels_adapters.locmem import LocmemChannel

__all__ = ["NotSent", "SentMessage", "SignalboxOutbox", "assert_notified", "signalbox_outbox"]


@dataclass(frozen=True)
class SentMessage:
    """One message a channel accepted during the test, as the recipient would get it.

    ``subject`` is the email subject or the title of an in-app, push or chat message; ``template``
    the MessageTemplate key it was rendered from (``None`` for a literal ``notify(title=...)``).
    """

    channel: str
    recipient_id: int | None
    address: str
    subject: str
    text: str
    html: str
    url: str
    template: str | None
    delivery_id: int


@dataclass(frozen=True)
class NotSent:
    """A delivery planned during the test that no channel accepted, and why (the ledger's words)."""

    channel: str
    recipient_id: int | None
    address: str
    status: str
    reason: str
    template: str | None
    delivery_id: int


class OutboxTwinChannel(LocmemChannel):
    """The in-memory twin standing in for one configured alias, with that adapter's features
    (so planning picks the same address, quiet hours and digests as the real one would)."""

    def __init__(self, alias: str, *, replaced_features: ChannelFeatures | None = None, **options: Any) -> None:
        self.replaced_features = replaced_features
        super().__init__(alias, **options)

    def declared_features(self) -> ChannelFeatures:
        if self.replaced_features is None:
            return super().declared_features()
        return self.replaced_features.replace(concurrency=1, local=False)


def _stays_real(alias: str) -> bool:
    """Channels planning delivers itself (the inbox) only write rows in the test database."""
    from notifications.ledger.local import delivers_while_planning

    return delivers_while_planning(alias)


def _features_of(alias: str) -> ChannelFeatures:
    from channels_adapters.errors import ChannelConfigurationError
    from channels_adapters.handler import channels

    try:
        return channels[alias].features
    except ChannelConfigurationError:
        return features_for_alias(alias)


def twin_channels(configured: dict[str, dict]) -> dict[str, dict]:
    """``NOTIFICATION_CHANNELS`` with every alias that would leave the process replaced by its
    in-memory twin. Adapters are built (not opened) to read their features."""
    twins: dict[str, dict] = {}
    for alias, config in configured.items():
        if _stays_real(alias):
            twins[alias] = config
        else:
            backend = f"{OutboxTwinChannel.__module__}.{OutboxTwinChannel.__qualname__}"
            twins[alias] = {"BACKEND": backend, "OPTIONS": {"replaced_features": _features_of(alias)}}
    return twins


class SignalboxOutbox:
    """What Signalbox sent during one test, per channel alias: ``outbox["email"]``, ``outbox.all``.

    Every read first sends the deliveries planned since the outbox was made that are due now
    (``flush()``), so the order of events in a test is the order a user would see.
    """

    def __init__(self) -> None:
        from django.db.models import Max

        from notifications.models import Delivery

        self._since = Delivery.objects.aggregate(last=Max("id"))["last"] or 0
        LocmemChannel.outbox.clear()

    # --- reading ---------------------------------------------------------------------------

    def __getitem__(self, channel: str) -> list[SentMessage]:
        return [message for message in self.all if message.channel == channel]

    def __iter__(self) -> Iterator[SentMessage]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    @property
    def all(self) -> list[SentMessage]:
        """Every message accepted since the test began, in the order they were planned."""
        return self._read()[0]

    @property
    def not_sent(self) -> list[NotSent]:
        """Deliveries planned since the test began that nothing accepted (yet), with the reason."""
        return self._read()[1]

    def to(self, user) -> list[SentMessage]:
        """Messages to ``user`` (an instance or an id)."""
        user_id = getattr(user, "pk", user)
        return [message for message in self.all if message.recipient_id == user_id]

    def clear(self) -> None:
        """Forget everything sent so far (sending what is due first, so it is not seen later)."""
        from django.db.models import Max

        from notifications.models import Delivery

        self.flush()
        self._since = Delivery.objects.aggregate(last=Max("id"))["last"] or 0
        LocmemChannel.outbox.clear()

    # --- sending ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Send the deliveries planned since the test began that are due, as a worker would.
        Held ones (quiet hours, digests, a retry's back-off) stay where the ledger put them."""
        from notifications.ledger import deliveries_send
        from notifications.models import Delivery

        waiting = (Delivery.Status.PLANNED, Delivery.Status.DEFERRED)
        ids = list(Delivery.objects.to_people().filter(pk__gt=self._since, status__in=waiting).values_list("id", flat=True))
        if ids:
            deliveries_send(delivery_ids=ids)

    def _read(self) -> tuple[list[SentMessage], list[NotSent]]:
        from django.db.models.functions import Coalesce

        from notifications.models import Delivery, MessageTemplate, Notification

        self.flush()
        deliveries = list(
            Delivery.objects.to_people().filter(pk__gt=self._since).order_by("id")
            .values("id", "channel", "recipient_id", "address", "status", "status_reason", "content")
        )
        template_ids = {(d["content"] or {}).get("template_id") for d in deliveries} - {None}
        keys = dict(MessageTemplate.objects.filter(pk__in=template_ids).values_list("pk", "key"))
        payloads = {payload.message.delivery_id: payload for payload in LocmemChannel.outbox}
        inbox = {
            row["delivery_id"]: row
            for row in Notification.objects.filter(delivery_id__in=[d["id"] for d in deliveries]).values(
                "delivery_id", subject=Coalesce("content__title", "title"), text=Coalesce("content__body", "body"),
                link=Coalesce("content__url", "url"),
            )
        }
        sent: list[SentMessage] = []
        not_sent: list[NotSent] = []
        for d in deliveries:
            template = keys.get((d["content"] or {}).get("template_id"))
            payload, row = payloads.get(d["id"]), inbox.get(d["id"])
            if payload is not None:
                m = payload.message
                sent.append(SentMessage(
                    channel=d["channel"], recipient_id=d["recipient_id"], address=m.address, subject=m.subject,
                    text=m.text, html=m.html, url=m.url, template=template, delivery_id=d["id"],
                ))
            elif row is not None:
                sent.append(SentMessage(
                    channel=d["channel"], recipient_id=d["recipient_id"], address=d["address"], subject=row["subject"],
                    text=row["text"], html="", url=row["link"], template=template, delivery_id=d["id"],
                ))
            else:
                not_sent.append(NotSent(
                    channel=d["channel"], recipient_id=d["recipient_id"], address=d["address"], status=d["status"],
                    reason=d["status_reason"], template=template, delivery_id=d["id"],
                ))
        return sent, not_sent

    # --- asserting --------------------------------------------------------------------------

    def assert_notified(
        self, user, *, template=None, channel: str | None = None, count: int | None = None,
    ) -> list[SentMessage]:
        """Assert that ``user`` (an instance or an id) was sent ``count`` messages (at least one
        when ``count`` is None) matching ``template`` (a key or a MessageTemplate) and ``channel``.
        Returns the matching messages; the failure lists everything sent and not sent instead."""
        user_id = getattr(user, "pk", user)
        template_key = getattr(template, "key", template)
        sent, not_sent = self._read()
        matches = [
            m for m in sent
            if m.recipient_id == user_id
            and (template_key is None or m.template == template_key)
            and (channel is None or m.channel == channel)
        ]
        if (count is None and matches) or (count is not None and len(matches) == count):
            return matches
        wanted = "at least one message" if count is None else f"{count} message{'s' if count != 1 else ''}"
        what = "".join([
            f" with template {template_key!r}" if template_key is not None else "",
            f" over {channel!r}" if channel is not None else "",
        ])
        lines = [f"Expected {wanted} to {_who(user, user_id)}{what}; {len(matches)} sent."]
        lines.append(f"Sent during this test ({len(sent)}):" if sent else "Nothing was sent during this test.")
        lines += [f"  - {_describe_sent(m)}" for m in sent]
        if not_sent:
            lines.append(f"Planned but not sent ({len(not_sent)}):")
            lines += [f"  - {_describe_not_sent(n)}" for n in not_sent]
        pytest.fail("\n".join(lines), pytrace=False)


def _who(user, user_id) -> str:
    name = getattr(user, "get_username", None)
    return f"user {user_id} ({name()})" if callable(name) else f"user {user_id}"


def _describe_sent(m: SentMessage) -> str:
    template = f"template {m.template!r}" if m.template else "no template"
    return f"{m.channel} → user {m.recipient_id}{_at(m.address)}: {template}, {m.subject!r}"


def _describe_not_sent(n: NotSent) -> str:
    template = f"template {n.template!r}" if n.template else "no template"
    reason = f" ({n.reason})" if n.reason else ""
    return f"{n.channel} → user {n.recipient_id}{_at(n.address)}: {template}, {n.status}{reason}"


def _at(address: str) -> str:
    return f" <{address}>" if address else ""


@pytest.fixture
def signalbox_outbox(settings, db) -> Iterator[SignalboxOutbox]:
    """Messages Signalbox sent during the test, per channel (see the module docstring)."""
    from channels_adapters.conf import DEFAULT_CHANNELS

    settings.NOTIFICATION_CHANNELS = twin_channels(getattr(settings, "NOTIFICATION_CHANNELS", DEFAULT_CHANNELS))
    outbox = SignalboxOutbox()
    yield outbox
    LocmemChannel.outbox.clear()


@pytest.fixture
def assert_notified(signalbox_outbox: SignalboxOutbox):
    """``assert_notified(user, template=..., channel=..., count=...)``: see
    ``SignalboxOutbox.assert_notified``."""
    return signalbox_outbox.assert_notified
