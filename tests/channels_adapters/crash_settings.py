"""Settings for worker processes the crash tests start: the test settings, with the channels
given as JSON in ``SIGNALBOX_TEST_CHANNELS`` (the same dict the test process plans with)."""

import json
import os

from config.settings_test import *  # noqa: F403

if os.environ.get("SIGNALBOX_TEST_CHANNELS"):
    NOTIFICATION_CHANNELS = json.loads(os.environ["SIGNALBOX_TEST_CHANNELS"])
# A message deferred by a hiccup is retried within the test's patience, not in 30 s.
SIGNALBOX_RETRY_BASE_SECONDS = float(os.environ.get("SIGNALBOX_RETRY_BASE_SECONDS", "30"))
SIGNALBOX_RETRY_MAX_SECONDS = float(os.environ.get("SIGNALBOX_RETRY_MAX_SECONDS", "3600"))
