"""Every Signalbox process freezes its start-up heap (ops/heap.py), unless told not to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = "import django, gc; django.setup(); print(gc.get_freeze_count())"


def frozen_after_setup(**env: str) -> int:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", **env}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def test_a_process_freezes_what_start_up_built():
    # Django, the admin, every app and its ready(): tens of thousands of objects.
    assert frozen_after_setup() > 50_000


@pytest.mark.parametrize("value", ["0", "false"])
def test_the_setting_turns_it_off(value):
    assert frozen_after_setup(SIGNALBOX_FREEZE_STARTUP_HEAP=value) == 0
