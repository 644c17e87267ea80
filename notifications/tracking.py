"""Receipts (DESIGN.md "The pipeline", step 4): opens, clicks, bounces, complaints, unsubscribes.

Services here are the only writers of receipts that come from outside a send: the open pixel,
click redirects, one-click unsubscribe and normalised provider webhook events. Two invariants:

* a receipt with a provider event id is recorded once per source (replays change nothing), and
* a delivery's status only moves forward (``pipeline.delivery_advance_status``).
"""

from __future__ import annotations

import html as html_lib
import ipaddress
import re
from datetime import datetime

from django.db import IntegrityError, transaction
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from . import conf, tokens
from .models import Delivery, DeliveryEvent, Suppression, TrackedLink
from .pipeline import delivery_advance_status
from .querysets import normalise_address

Kind = DeliveryEvent.Kind
Status = Delivery.Status

# Receipt kinds that move a delivery's status; the others (complained, unsubscribed, ...) are
# recorded as events only.
KIND_TO_STATUS: dict[str, str] = {
    Kind.DELIVERED: Status.DELIVERED,
    Kind.OPENED: Status.OPENED,
    Kind.CLICKED: Status.CLICKED,
    Kind.READ: Status.READ,
    Kind.BOUNCED: Status.BOUNCED,
}

# A bounce is hard (permanent) unless the provider says otherwise: providers report transient
# failures as "deferred"/soft bounces, which must neither suppress nor end the delivery.
SOFT_BOUNCE_TYPES = frozenset({"soft", "transient", "temporary", "deferred"})

_HREF = re.compile(r"""(?P<lead>\bhref\s*=\s*)(?P<quote>["'])(?P<url>\s*https?://[^"']*)(?P=quote)""", re.IGNORECASE)


# --- URL builders --------------------------------------------------------------------------

def _absolute(path: str) -> str:
    return f"{conf.site_url()}{path}"


_TOKEN = "TOKEN0"  # a placeholder every token pattern accepts
_url_shapes: dict[tuple[str, str, str], tuple[str, str]] = {}


def _token_url(name: str, token: str) -> str:
    """``_absolute(reverse(name, args=[token]))``, resolving the pattern once, not per message.

    Builders run two or three times for every email sent; ``reverse`` costs more than the rest
    of building the link. Cached per site URL and script prefix, so a changed setting is seen.
    """
    key = (name, conf.site_url(), get_script_prefix())
    shape = _url_shapes.get(key)
    if shape is None:
        head, _sep, tail = _absolute(reverse(name, args=[_TOKEN])).partition(_TOKEN)
        shape = _url_shapes[key] = (head, tail)
    return f"{shape[0]}{token}{shape[1]}"


def open_pixel_url(delivery: Delivery) -> str:
    return _token_url("notifications:track_open", tokens.open_token(delivery.pk))


def click_url(link: TrackedLink) -> str:
    return _token_url("notifications:track_click", tokens.click_token(link.pk))


def unsubscribe_url(delivery: Delivery) -> str:
    """The page link and the RFC 8058 ``List-Unsubscribe`` target (one URL serves both)."""
    return _token_url("notifications:unsubscribe", tokens.unsubscribe_token(delivery.pk))


def preferences_url(user_id: int) -> str:
    return _token_url("notifications:preferences_token", tokens.preferences_token(user_id))


def links_rewrite(*, delivery: Delivery, html: str) -> str:
    """Store every http(s) ``href`` in ``html`` as a ``TrackedLink`` and point it at the click redirect.

    The rewritten link carries only a signed link id, never the destination. Links to our own
    site (unsubscribe, preferences) are left alone so they keep working without a redirect.
    """
    own = conf.site_url() + "/"
    matches = [m for m in _HREF.finditer(html) if not m.group("url").strip().startswith(own)]
    if not matches:
        return html
    now = timezone.now()
    links = TrackedLink.objects.bulk_create(
        [
            TrackedLink(delivery=delivery, url=html_lib.unescape(m.group("url").strip()), position=i, created_at=now)
            for i, m in enumerate(matches)
        ]
    )
    parts, last = [], 0
    for match, link in zip(matches, links, strict=True):
        parts += [html[last:match.start()], f'{match.group("lead")}{match.group("quote")}{click_url(link)}{match.group("quote")}']
        last = match.end()
    parts.append(html[last:])
    return "".join(parts)


# --- Machine opens --------------------------------------------------------------------------

# Apple Mail Privacy Protection fetches every remote image through Apple's proxy when the mail
# arrives, whether or not anyone reads it, with the bare User-Agent "Mozilla/5.0" and from
# Apple-owned addresses (17.0.0.0/8). Such an open is recorded, flagged, and does not count as
# "opened". A missing User-Agent is a fetcher, not a mail client. Gmail's image proxy fetches
# only when the message is displayed, so it counts as a real open.
_MACHINE_USER_AGENTS = frozenset({"", "mozilla/5.0"})
_MACHINE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)


def is_machine_open(*, user_agent: str, ip: str) -> bool:
    if user_agent.strip().lower() in _MACHINE_USER_AGENTS:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in _MACHINE_NETWORKS)


# --- Services -------------------------------------------------------------------------------

def receipt_record(
    *,
    delivery: Delivery,
    kind: str,
    source: str,
    provider_event_id: str | None = None,
    data: dict | None = None,
    occurred_at: datetime | None = None,
) -> bool:
    """Record one receipt and move the delivery forward. ``False`` if it was a replay.

    Replays are recognised by (source, provider_event_id); receipts without an id (pixel opens,
    clicks) are all kept. Hard bounces and complaints suppress the delivery's address.
    """
    if kind not in Kind.values:
        raise ValueError(f"Unknown receipt kind {kind!r}.")
    data = dict(data or {})
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic():
        try:
            # The savepoint keeps the caller's transaction usable after a duplicate.
            with transaction.atomic():
                DeliveryEvent.objects.create(
                    delivery=delivery, kind=kind, source=source, provider_event_id=provider_event_id,
                    data=data, occurred_at=occurred_at,
                )
        except IntegrityError:
            if provider_event_id is None:
                raise
            return False
        soft_bounce = kind == Kind.BOUNCED and str(data.get("bounce_type", "")).lower() in SOFT_BOUNCE_TYPES
        status = KIND_TO_STATUS.get(kind)
        if status and not data.get("machine_open") and not soft_bounce:
            delivery_advance_status(delivery=delivery, status=status, at=occurred_at)
        if kind == Kind.BOUNCED and not soft_bounce:
            _suppress(delivery=delivery, reason=Suppression.Reason.HARD_BOUNCE)
        elif kind == Kind.COMPLAINED:
            _suppress(delivery=delivery, reason=Suppression.Reason.COMPLAINT)
    return True


def address_suppress(*, channel: str, address: str, reason: str, user_id: int | None = None, note: str = "") -> bool:
    """Stop all mail to ``address`` on ``channel``: a Suppression, and nothing still waiting goes.

    Deliveries to that address still planned or retrying become ``suppressed`` now; a batch a
    worker already claimed is caught by the pipeline's send-time re-check. An existing
    suppression keeps its original reason. Returns whether a new suppression was made.
    """
    address = normalise_address(channel, address)
    if not address:
        return False
    with transaction.atomic():
        suppression, created = Suppression.objects.get_or_create(
            channel=channel, address=address, defaults={"reason": reason, "user_id": user_id, "note": note}
        )
        waiting = Delivery.objects.filter(channel=channel, status__in=[Status.PLANNED, Status.DEFERRED])
        waiting = waiting.filter(address__iexact=address) if channel == "email" else waiting.filter(address=address)
        waiting.update(status=Status.SUPPRESSED, status_reason=f"suppressed:{suppression.reason}")
    return created


def _suppress(*, delivery: Delivery, reason: str) -> bool:
    return address_suppress(channel=delivery.channel, address=delivery.address, reason=reason, user_id=delivery.recipient_id)


def unsubscribe(*, delivery: Delivery, source: str) -> bool:
    """Stop all further mail to the delivery's address on its channel. Idempotent.

    Returns whether a new suppression was made (see ``address_suppress``).
    """
    with transaction.atomic():
        created = _suppress(delivery=delivery, reason=Suppression.Reason.UNSUBSCRIBE)
        receipt_record(
            delivery=delivery, kind=Kind.UNSUBSCRIBED, source=source, provider_event_id=f"unsubscribe:{delivery.pk}"
        )
    return created
