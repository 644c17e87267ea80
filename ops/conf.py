"""The ops app's settings, read in one place with their defaults (README "Deploying")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

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
