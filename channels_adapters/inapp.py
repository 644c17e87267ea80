"""The in-app inbox channel: a delivery becomes a ``Notification`` row in our own database.

A local channel: its rows and the ledger's ``sent`` are one transaction, so an inbox row exists
exactly when its delivery is recorded sent (``Notification.delivery`` is unique, so even a
replayed batch cannot add a second row). Due deliveries never wait for a send task: planning
hands them to ``deliver_planned`` (``notifications.ledger.local``); the ones held for later (a
digest, a throttled campaign) come through ``send_batch`` like any channel's. Either way the rows
are written by ``notifications.inbox.services.inbox_rows_write``: a message shared by several
recipients is stored once, and open inbox pages are told after commit (``notifications.inbox.live``).
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import OutboundMessage
from .errors import ChannelError, InvalidAddressError
from .features import INAPP
from .local import LocalRowsChannel


class InappChannel(LocalRowsChannel):
    id_prefix = "inapp"
    # Whatever its alias is called: local, never interrupts (quiet hours do not hold it), digestible.
    features = INAPP

    def normalise_address(self, address: str) -> str:
        # The address of an inbox is its owner's user id.
        if not address.strip().isdigit():
            raise InvalidAddressError(f"An inbox address is a user id, not {address!r}.")
        return address.strip()

    def build_payload(self, message: OutboundMessage):
        return (int(message.address), _inbox_message(message), message.delivery_id)

    def write_rows(self, rows: list) -> None:
        from notifications.inbox.services import inbox_rows_write

        inbox_rows_write(rows=rows)

    def deliver_planned(self, messages: Sequence[OutboundMessage], *, shared: dict | None = None) -> dict[int, ChannelError]:
        """Put ``messages`` in their inboxes now, in the caller's transaction (planning's).

        Returns the refused messages' errors by delivery id; every other message is in its
        inbox once the transaction commits. Messages with the same title, body, link and
        category are one ``InboxMessage``, so their text is stored once. ``shared`` is kept by
        the caller for the rest of its transaction (planning's chunks): the texts stored for
        earlier chunks are found there and not stored again.
        """
        from notifications.inbox.services import inbox_rows_write

        failures: dict[int, ChannelError] = {}
        distinct: dict[tuple, object] = {}
        rows = []
        for message in messages:
            try:
                address = self.normalise_address(message.address)
            except ChannelError as error:
                failures[message.delivery_id] = error
                continue
            key = (message.subject, message.text, message.url, message.metadata.get("category_id"))
            if key not in distinct:
                distinct[key] = _inbox_message(message)
            rows.append((int(address), distinct[key], message.delivery_id))
        inbox_rows_write(rows=rows, stored=shared.setdefault("inbox_contents", {}) if shared is not None else None)
        return failures


def _inbox_message(message: OutboundMessage):
    from notifications.inbox.services import InboxMessage

    return InboxMessage(
        title=(message.subject or message.text)[:200],
        body=message.text if message.subject else "",
        url=message.url,
        category_id=message.metadata.get("category_id"),
    )
