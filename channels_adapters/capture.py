"""The capture channel: keeps messages in the staff Outbox instead of sending them.

``make run`` and any setup without real provider settings use it for email, SMS, web push and
chat (see ``config.settings``), so trying Signalbox with demo data can never email, text or
post to anyone. Like the inbox channel it writes only to our database (``features.local``), so
the captured row and the ledger's ``sent`` are one transaction. It stands in for the channel its
alias names (OPTIONS ``like`` for another alias name): captured email keeps email's tracking
links and unsubscribe headers, as the real message would have them.
"""

from __future__ import annotations

from .base import OutboundMessage
from .local import LocalRowsChannel


class CaptureChannel(LocalRowsChannel):
    id_prefix = "captured"

    def build_payload(self, message: OutboundMessage):
        from .models import CapturedMessage

        headers = dict(message.headers)
        if unsubscribe := message.metadata.get("unsubscribe_url"):
            headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        return CapturedMessage(
            channel=self.alias,
            address=message.address[:1000],
            subject=message.subject[:300],
            text=message.text,
            html=message.html,
            url=message.url[:1000],
            headers=headers,
            delivery_id=message.delivery_id,
        )

    def write_rows(self, rows: list) -> None:
        from .models import CapturedMessage

        CapturedMessage.objects.bulk_create(rows, batch_size=1000)
