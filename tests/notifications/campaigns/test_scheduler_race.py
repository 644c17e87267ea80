"""Two scheduler processes racing over 200 due campaigns: each campaign starts exactly once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import AuditEntry, Campaign, CampaignRun
from tests.conftest import ROOT, child_env

from .conftest import make_recipients, static_audience

pytestmark = [pytest.mark.tasks, pytest.mark.django_db(transaction=True)]

CAMPAIGNS = 200


def test_two_schedulers_start_each_due_campaign_exactly_once(make_campaign, staff):
    audience = static_audience("Race", make_recipients(3))
    due = timezone.now() - timedelta(minutes=1)
    for n in range(CAMPAIGNS):
        make_campaign(audience, name=f"Race {n}", author=staff["marketer"], status="scheduled", next_run_at=due)

    env = child_env()
    schedulers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "signalbox_scheduler", "--once"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in schedulers]
    assert [process.returncode for process in schedulers] == [0, 0], outputs

    runs = Counter(CampaignRun.objects.values_list("campaign_id", flat=True))
    assert len(runs) == CAMPAIGNS and set(runs.values()) == {1}
    assert AuditEntry.objects.filter(action="campaign.run_started").count() == CAMPAIGNS
    assert set(Campaign.objects.values_list("status", flat=True)) == {"running"}
    started = [int(out.split("started ")[1].split()[0]) for out, _err in outputs]
    assert sum(started) == CAMPAIGNS  # the work was split between them, never done twice
