"""Fixtures for the sign-in tests: lockout switched on, staff by role, email captured in the Outbox."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import RecipientProfileFactory, UserFactory, staff_in

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = {"BACKEND": "channels_adapters.capture.CaptureChannel", "OPTIONS": {}}


@pytest.fixture
def lockout(settings):
    """django-axes on (the test settings switch it off for client.login), with fixed limits."""
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 10
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.SIGNALBOX_TRUSTED_PROXY_COUNT = 0
    return settings


@pytest.fixture
def outbox(settings):
    """Email captured in the Outbox (``make run``'s default) and tasks run as they are enqueued."""
    settings.NOTIFICATION_CHANNELS = {**settings.NOTIFICATION_CHANNELS, "email": CAPTURE}
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    return settings


@pytest.fixture
def chinese(settings, tmp_path):
    """Simplified Chinese, with this change's pending translations until they are merged into
    locale/zh_Hans (compiled into a catalogue searched first)."""
    pending = ROOT / "locale" / "pending" / "signin.po"
    msgfmt = shutil.which("msgfmt")
    if pending.exists() and msgfmt:
        target = tmp_path / "zh_Hans" / "LC_MESSAGES"
        target.mkdir(parents=True)
        subprocess.run([msgfmt, "-o", str(target / "django.mo"), str(pending)], check=True)
        settings.LOCALE_PATHS = [tmp_path, *settings.LOCALE_PATHS]
    return "zh-hans"


@pytest.fixture
def ada(db):
    return RecipientProfileFactory(user=UserFactory(username="ada", email="ada@example.com")).user


@pytest.fixture
def superuser(db):
    return staff_in(None, "root")


@pytest.fixture
def operator(db):
    return staff_in("Operators", "oscar")
