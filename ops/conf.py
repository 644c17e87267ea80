"""The ops app's settings, read in one place with their defaults (README "Deploying")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class HeartbeatSettings:
    every: timedelta  # how often the scheduler asks a worker for a heartbeat
    worker_max_age: timedelta  # older than this, /readyz says no worker takes tasks
    scheduler_max_age: timedelta  # older than this, /readyz says the scheduler is not ticking


def heartbeats() -> HeartbeatSettings:
    every = float(getattr(settings, "SIGNALBOX_HEARTBEAT_SECONDS", 15))
    worker = float(getattr(settings, "SIGNALBOX_WORKER_MAX_AGE_SECONDS", 120))
    scheduler = float(getattr(settings, "SIGNALBOX_SCHEDULER_MAX_AGE_SECONDS", 60))
    if min(every, worker, scheduler) <= 0:
        raise ImproperlyConfigured("SIGNALBOX_HEARTBEAT_SECONDS and the *_MAX_AGE_SECONDS settings must be positive.")
    if worker <= every:
        raise ImproperlyConfigured(
            "SIGNALBOX_WORKER_MAX_AGE_SECONDS must be longer than SIGNALBOX_HEARTBEAT_SECONDS: "
            "a worker is asked for a heartbeat only that often."
        )
    return HeartbeatSettings(
        every=timedelta(seconds=every),
        worker_max_age=timedelta(seconds=worker),
        scheduler_max_age=timedelta(seconds=scheduler),
    )


@dataclass(frozen=True)
class MetricsSettings:
    token: str  # a scraper sending "Authorization: Bearer <token>" may read /metrics; "" for none
    allowed_networks: tuple[IPv4Network | IPv6Network, ...]  # clients from these may read it without one
    count_every: timedelta  # how often the scheduler counts the ledger by channel and status
    window: timedelta  # send latency and provider errors look this far back
    latency_sample: int  # at most this many of the latest sends make the latency histogram


def metrics() -> MetricsSettings:
    """``/metrics`` access and what it measures. A malformed address or network is an
    ``ImproperlyConfigured`` naming it (also reported by the ``ops.E001`` system check)."""
    networks = []
    for entry in getattr(settings, "SIGNALBOX_METRICS_ALLOWED_IPS", []) or []:
        try:
            networks.append(ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"SIGNALBOX_METRICS_ALLOWED_IPS: {entry!r} is not an IP address or network (e.g. 10.0.0.0/8)."
            ) from None
    count_every = float(getattr(settings, "SIGNALBOX_METRICS_COUNT_SECONDS", 60))
    window = float(getattr(settings, "SIGNALBOX_METRICS_WINDOW_SECONDS", 300))
    if count_every <= 0 or window <= 0:
        raise ImproperlyConfigured("SIGNALBOX_METRICS_COUNT_SECONDS and SIGNALBOX_METRICS_WINDOW_SECONDS must be positive.")
    return MetricsSettings(
        token=str(getattr(settings, "SIGNALBOX_METRICS_TOKEN", "") or ""),
        allowed_networks=tuple(networks),
        count_every=timedelta(seconds=count_every),
        window=timedelta(seconds=window),
        latency_sample=2_000,
    )


# --- Data retention (``ops.retention``) ------------------------------------------------------
# The kinds of data that are purged, in the order a round purges them, with their setting and
# default in days. Each default is explained in README "Data retention".
RETENTION_KINDS: dict[str, tuple[str, int]] = {
    "deliveries": ("SIGNALBOX_RETAIN_DELIVERIES_DAYS", 180),
    "outbox": ("SIGNALBOX_RETAIN_OUTBOX_DAYS", 30),
    "imports": ("SIGNALBOX_RETAIN_IMPORTS_DAYS", 30),
    "reports": ("SIGNALBOX_RETAIN_REPORTS_DAYS", 90),
    "audit": ("SIGNALBOX_RETAIN_AUDIT_DAYS", 730),
}


@dataclass(frozen=True)
class RetentionSettings:
    days: dict[str, int | None]  # kind -> days kept; None keeps it forever
    batch: int  # most rows one DELETE statement removes (and one short transaction holds)
    tick_budget: timedelta  # how long one scheduler round may keep purging
    interval: timedelta  # how often the scheduler starts a round when the last one finished its work


def _retain_days(name: str, default: int) -> int | None:
    raw = getattr(settings, name, default)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        days = int(raw)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a whole number of days (0 or empty keeps forever), not {raw!r}.") from None
    if days < 0:
        raise ImproperlyConfigured(f"{name} must not be negative (0 or empty keeps forever).")
    return days or None


def retention() -> RetentionSettings:
    batch = int(getattr(settings, "SIGNALBOX_RETENTION_BATCH", 1_000))
    budget = float(getattr(settings, "SIGNALBOX_RETENTION_TICK_SECONDS", 2.0))
    interval = float(getattr(settings, "SIGNALBOX_RETENTION_INTERVAL_SECONDS", 600))
    if batch <= 0 or budget <= 0 or interval < 0:
        raise ImproperlyConfigured(
            "SIGNALBOX_RETENTION_BATCH and SIGNALBOX_RETENTION_TICK_SECONDS must be positive, "
            "SIGNALBOX_RETENTION_INTERVAL_SECONDS not negative."
        )
    return RetentionSettings(
        days={kind: _retain_days(name, default) for kind, (name, default) in RETENTION_KINDS.items()},
        batch=batch,
        tick_budget=timedelta(seconds=budget),
        interval=timedelta(seconds=interval),
    )
