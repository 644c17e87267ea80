"""The in-app inbox channel: a delivery becomes a ``Notification`` row in our own database.

``local = True`` tells the pipeline to run the batch and the ledger update in one transaction,
so an inbox row exists exactly when its delivery is ``sent`` (``Notification.delivery`` is
unique, so even a replayed batch cannot add a second row). Open inbox pages are told after
commit (polling or Redis pub/sub, see ``notifications.live``).
"""

from __future__ import annotations

from django.db import transaction

from .base import OutboundMessage
from .errors import InvalidAddressError
from .local import LocalRowsChannel


class InappChannel(LocalRowsChannel):
    id_prefix = "inapp"

    def normalise_address(self, address: str) -> str:
        # The address of an inbox is its owner's user id.
        if not address.strip().isdigit():
            raise InvalidAddressError(f"An inbox address is a user id, not {address!r}.")
        return address.strip()

    def build_payload(self, message: OutboundMessage):
        from notifications.models import Notification

        return Notification(
            recipient_id=int(message.address),
            title=(message.subject or message.text)[:200],
            body=message.text if message.subject else "",
            url=message.url,
            category_id=message.metadata.get("category_id"),
            delivery_id=message.delivery_id,
        )

    def write_rows(self, rows: list) -> None:
        from notifications import live
        from notifications.models import Notification

        Notification.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        user_ids = [n.recipient_id for n in rows]
        transaction.on_commit(lambda: live.publish_inbox_changed(user_ids))
