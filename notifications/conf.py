"""Signalbox app settings, read in one place with their defaults."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class LiveInboxSettings:
    redis_url: str
    poll_seconds: float
    stream_seconds: float


def live_inbox() -> LiveInboxSettings:
    poll = float(getattr(settings, "SIGNALBOX_LIVE_POLL_SECONDS", 0.5))
    stream = float(getattr(settings, "SIGNALBOX_LIVE_STREAM_SECONDS", 55.0))
    if poll <= 0 or stream <= 0:
        raise ImproperlyConfigured("SIGNALBOX_LIVE_POLL_SECONDS and SIGNALBOX_LIVE_STREAM_SECONDS must be positive.")
    return LiveInboxSettings(
        redis_url=getattr(settings, "SIGNALBOX_LIVE_REDIS_URL", "") or "",
        poll_seconds=poll,
        stream_seconds=stream,
    )


def suppression_keys() -> list[str]:
    """Keys of the hashes erased people's suppressions are kept as, current first.

    ``SIGNALBOX_SUPPRESSION_KEY`` when set (then rotating ``SECRET_KEY`` leaves them working);
    else ``SECRET_KEY`` and its ``SECRET_KEY_FALLBACKS``, so after a rotation the old hashes
    still match while the old key is listed there.
    """
    dedicated = getattr(settings, "SIGNALBOX_SUPPRESSION_KEY", "") or ""
    if dedicated:
        return [dedicated]
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def inbox_page_size() -> int:
    return int(getattr(settings, "SIGNALBOX_INBOX_PAGE_SIZE", 20))


def site_url() -> str:
    return getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")


def lease_seconds() -> int:
    """How long a worker owns a claimed batch before the sweeper may give it to another."""
    return int(getattr(settings, "SIGNALBOX_LEASE_SECONDS", 300))


def max_attempts() -> int:
    return int(getattr(settings, "SIGNALBOX_MAX_ATTEMPTS", 5))


def retry_base_seconds() -> float:
    return float(getattr(settings, "SIGNALBOX_RETRY_BASE_SECONDS", 30))


def retry_max_seconds() -> float:
    return float(getattr(settings, "SIGNALBOX_RETRY_MAX_SECONDS", 3600))


def approval_threshold() -> int:
    """Campaigns whose audience is larger than this need a Manager's approval before launch."""
    return int(getattr(settings, "SIGNALBOX_APPROVAL_THRESHOLD", 1000))


def journey_unestimated_reach() -> str:
    """Journeys whose reach cannot be estimated (signal, date or code entries): "allow" publishes
    them without approval, "approve" needs a Manager's approval for every such publication."""
    value = getattr(settings, "SIGNALBOX_JOURNEY_UNESTIMATED_REACH", "allow")
    return value if value in ("allow", "approve") else "approve"


@dataclass(frozen=True)
class Price:
    amount: Decimal
    currency: str


def sms_segment_price() -> Price:
    """What one SMS segment costs, for pre-flight estimates: ``SIGNALBOX_SMS_SEGMENT_PRICE`` as
    ``"0.0079 USD"`` (an amount and an ISO 4217 currency; default 0.0079 USD, Twilio's US rate)."""
    raw = str(getattr(settings, "SIGNALBOX_SMS_SEGMENT_PRICE", "0.0079 USD")).split()
    try:
        amount = Decimal(raw[0])
    except (IndexError, InvalidOperation) as error:
        raise ImproperlyConfigured('SIGNALBOX_SMS_SEGMENT_PRICE must read like "0.0079 USD".') from error
    if amount < 0:
        raise ImproperlyConfigured("SIGNALBOX_SMS_SEGMENT_PRICE must not be negative.")
    return Price(amount=amount, currency=(raw[1] if len(raw) > 1 else "USD").upper())


def template_render_ms() -> int:
    """How long one part of a marketer-authored template may take to render, in milliseconds."""
    value = int(getattr(settings, "SIGNALBOX_TEMPLATE_RENDER_MS", 200))
    if value <= 0:
        raise ImproperlyConfigured("SIGNALBOX_TEMPLATE_RENDER_MS must be a positive number of milliseconds.")
    return value


def template_max_output() -> int:
    """The most characters one rendered template part may produce."""
    value = int(getattr(settings, "SIGNALBOX_TEMPLATE_MAX_OUTPUT", 100_000))
    if value <= 0:
        raise ImproperlyConfigured("SIGNALBOX_TEMPLATE_MAX_OUTPUT must be a positive number of characters.")
    return value


@dataclass(frozen=True)
class WebhookSettings:
    max_attempts: int  # POSTs of one message before it is given up (and its endpoint disabled)
    retry_delays: tuple[float, ...]  # seconds before retry 1, 2, ...; the last repeats
    connect_timeout: float
    read_timeout: float
    allow_private: object  # the channels' ``allow_private`` option: False, True or a list of networks


def webhooks() -> WebhookSettings:
    """``SIGNALBOX_WEBHOOK_*`` settings: retries with backoff, timeouts, which targets are allowed."""
    delays = tuple(float(d) for d in getattr(settings, "SIGNALBOX_WEBHOOK_RETRY_DELAYS", (30, 300, 1800, 7200)))
    attempts = int(getattr(settings, "SIGNALBOX_WEBHOOK_MAX_ATTEMPTS", 5))
    if attempts < 1 or not delays or any(d < 0 for d in delays):
        raise ImproperlyConfigured("SIGNALBOX_WEBHOOK_MAX_ATTEMPTS must be >= 1 and the retry delays >= 0.")
    return WebhookSettings(
        max_attempts=attempts,
        retry_delays=delays,
        connect_timeout=float(getattr(settings, "SIGNALBOX_WEBHOOK_CONNECT_TIMEOUT", 5.0)),
        read_timeout=float(getattr(settings, "SIGNALBOX_WEBHOOK_READ_TIMEOUT", 10.0)),
        allow_private=getattr(settings, "SIGNALBOX_WEBHOOK_ALLOW_PRIVATE", False),
    )
