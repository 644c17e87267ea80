"""``signalbox_scheduler`` runs the ticks the rooms registered, in order, and prints their lines."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from notifications import scheduling

pytestmark = pytest.mark.django_db


def test_each_room_registers_its_tick_in_order():
    assert [t.name for t in scheduling.ticks()] == [
        "campaigns", "ab_tests", "journeys", "ledger", "webhooks", "analytics", "retention", "ledger_count", "heartbeats",
    ]


def test_one_tick_prints_what_each_room_did():
    out = StringIO()
    call_command("signalbox_scheduler", "--once", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[:5] == [
        "started 0 campaign run(s)",
        "chose 0 A/B test winner(s)",
        "journeys: advanced 0 enrollment(s), 0 step(s), planned 0 delivery(ies), 0 finished",
        "swept 0 expired lease(s), re-queued 0 stale delivery(ies)",
        "webhooks: 0 endpoint(s) drained",
    ]
    rollups, count = ["refreshed the analytics rollups"], ["counted the ledger by channel and status"]  # when due
    retention = ["retention: deleted nothing"]  # ops/, after the rollups
    assert lines[5:-1] in [[*r, *retention, *c] for r in ([], rollups) for c in ([], count)]
    assert lines[-1].startswith("recorded the scheduler heartbeat")  # ops/, last


def test_a_registered_tick_runs_and_reports(monkeypatch):
    monkeypatch.setattr(scheduling, "_ticks", dict(scheduling._ticks))
    scheduling.register_tick("extra", lambda *, once: [f"extra once={once}"], order=99)
    out = StringIO()
    call_command("signalbox_scheduler", "--once", stdout=out)
    assert out.getvalue().splitlines()[-1] == "extra once=True"
