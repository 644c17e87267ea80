"""Run ``python -m bench NAME ...`` as a user would, on a throw-away SQLite file, and return its
one JSON line (the bench smoke tests assert the figures' shape, never their values)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def run_bench(tmp_path: Path, *argv: str, timeout: float = 300, env: dict[str, str] | None = None) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench", *argv],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'bench.sqlite3'}", **(env or {})},
        capture_output=True, text=True, timeout=timeout, check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])
