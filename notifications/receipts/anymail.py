"""ESP receipts through django-anymail (DESIGN.md: its normalised ``tracking`` signal feeds our receipts).

Anymail's webhook views (``anymail.urls``) check the ESP's authentication, normalise each ESP
event to an ``AnymailTrackingEvent`` and send ``anymail.signals.tracking``. ``tracking_receive``
maps that event onto the ledger through ``tracking.receipt_record`` / ``tracking.unsubscribe``,
so replays (same event id) and "status only moves forward" are handled in one place.
"""

from __future__ import annotations

import logging

from ..models import Delivery, DeliveryEvent
from .tracking import receipt_record, unsubscribe

logger = logging.getLogger(__name__)

Kind = DeliveryEvent.Kind

# Anymail EventType -> (receipt kind, bounce_type or None). Anymail's "deferred" and
# "autoresponded" are kept as soft bounces: recorded, but they neither end the delivery nor
# suppress the address. queued/sent/subscribed/unknown (and anything new) are ignored.
EVENT_KINDS: dict[str, tuple[str, str | None]] = {
    "delivered": (Kind.DELIVERED, None),
    "opened": (Kind.OPENED, None),
    "clicked": (Kind.CLICKED, None),
    "bounced": (Kind.BOUNCED, "hard"),
    "rejected": (Kind.BOUNCED, "hard"),
    "deferred": (Kind.BOUNCED, "soft"),
    "autoresponded": (Kind.BOUNCED, "soft"),
    "complained": (Kind.COMPLAINED, None),
    "failed": (Kind.FAILED, None),
}

_TEXT_LIMIT = 300
_SOURCE_LIMIT = 32  # DeliveryEvent.source max_length


def _source(esp_name: str) -> str:
    return f"anymail:{esp_name or 'unknown'}"[:_SOURCE_LIMIT]


def _bare_message_id(message_id: object) -> str:
    return str(message_id or "").strip().strip("<>").strip()


def delivery_for_event(event) -> Delivery | None:
    """The email delivery whose Message-ID (stored without ``<>``) is the event's message id."""
    bare = _bare_message_id(getattr(event, "message_id", None))
    if not bare:
        return None
    deliveries = Delivery.objects.filter(channel="email", provider_message_id__in=[bare, f"<{bare}>"]).order_by("pk")
    recipient = getattr(event, "recipient", None)
    if recipient:
        # One Message-ID per delivery is the norm; if several share one, prefer the addressee.
        return deliveries.filter(address__iexact=recipient).first() or deliveries.first()
    return deliveries.first()


def _event_data(event, bounce_type: str | None) -> dict:
    data: dict = {"esp_event_type": event.event_type}
    if bounce_type:
        data["bounce_type"] = bounce_type
    for field in ("reject_reason", "description", "mta_response", "click_url"):
        value = getattr(event, field, None)
        if value:
            data[field] = str(value)[:_TEXT_LIMIT] if field != "click_url" else str(value)[:2000]
    return data


def tracking_receive(sender, event, esp_name: str = "", **kwargs) -> None:
    """Receiver for ``anymail.signals.tracking``: one normalised ESP event -> one ledger receipt."""
    event_type = getattr(event, "event_type", None)
    source = _source(esp_name)
    if event_type != "unsubscribed" and event_type not in EVENT_KINDS:
        return
    delivery = delivery_for_event(event)
    if delivery is None:
        logger.info(
            "anymail %s event %r for unknown message id %r ignored", esp_name, event_type, getattr(event, "message_id", None)
        )
        return
    if event_type == "unsubscribed":
        unsubscribe(delivery=delivery, source=source)
        return
    kind, bounce_type = EVENT_KINDS[event_type]
    receipt_record(
        delivery=delivery,
        kind=kind,
        source=source,
        provider_event_id=str(event.event_id) if getattr(event, "event_id", None) else None,
        data=_event_data(event, bounce_type),
        occurred_at=getattr(event, "timestamp", None),
    )
