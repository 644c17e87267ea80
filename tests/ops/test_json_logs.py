"""Structured logs (issue 11, point 3): LOG_FORMAT=json writes one JSON object per line on stderr,
and lines logged while a batch is sent or a run is planned carry their ids."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model

from config.logs import ContextFilter, JsonFormatter, log_context
from notifications.campaigns import services
from notifications.models import Campaign, CampaignRun, Category, Delivery, MessageTemplate
from tests.conftest import ROOT, child_env, run_python
from tests.notifications.campaigns.conftest import make_recipients, static_audience

LOCMEM = "channels_adapters.locmem.LocmemChannel"
LOG_A_LINE = (
    "import logging\n"
    "from config.logs import log_context\n"
    "with log_context(delivery_id=7, run_id=3):\n"
    "    try:\n"
    "        1 / 0\n"
    "    except ZeroDivisionError:\n"
    "        logging.getLogger('signalbox.test').exception('Could not send %s', 'it')\n"
)


def test_log_format_json_writes_one_object_per_line_on_stderr():
    result = run_python(LOG_A_LINE, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if '"signalbox.test"' in line]
    assert len(lines) == 1  # the traceback is inside the object, not on lines of its own
    entry = json.loads(lines[0])
    assert entry["level"] == "ERROR" and entry["logger"] == "signalbox.test"
    assert entry["message"] == "Could not send it"
    assert (entry["delivery_id"], entry["run_id"]) == (7, 3)
    assert "campaign_id" not in entry and "task_id" not in entry
    assert entry["exception"].startswith("Traceback") and "ZeroDivisionError" in entry["exception"]
    assert entry["time"].endswith("+00:00")


def test_without_log_format_the_lines_stay_human():
    result = run_python(LOG_A_LINE)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if "signalbox.test" in line)
    assert line.endswith("ERROR signalbox.test: Could not send it")
    assert "Traceback" in result.stderr and not line.startswith("{")


def test_an_unknown_log_format_refuses_to_start():
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                            env=child_env(LOG_FORMAT="xml"), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "LOG_FORMAT must be plain or json, not 'xml'" in result.stderr


def test_context_blocks_nest_and_an_explicit_extra_wins():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("signalbox.test.nesting")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_context(run_id=1, campaign_id=None) as ids:
            ids["campaign_id"] = 2
            with log_context(delivery_id=3):
                logger.warning("inner")
            logger.warning("outer", extra={"run_id": 9})
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    inner, outer, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inner["run_id"], inner["campaign_id"], inner["delivery_id"]) == (1, 2, 3)
    assert (outer["run_id"], outer["campaign_id"], "delivery_id" in outer) == (9, 2, False)
    assert not {"run_id", "campaign_id", "delivery_id"} & outside.keys()


@pytest.fixture
def json_lines():
    """What the console handler writes with LOG_FORMAT=json (the same formatter and filter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.django_db
def test_a_campaign_sent_through_the_task_pipeline_logs_its_ids(settings, json_lines, django_capture_on_commit_callbacks):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": LOCMEM, "OPTIONS": {"fail_permanent": {"logs1@example.com"}}},
        "inapp": {"BACKEND": "channels_adapters.inapp.InappChannel", "OPTIONS": {}},
    }
    ids = make_recipients(3, prefix="logs")
    template = MessageTemplate.objects.create(key="logs", name="Logs", email_subject="Hi", email_body="Hello")
    category = Category.objects.create(key="logs", name="Logs", kind="marketing")
    campaign = Campaign.objects.create(name="Logs", audience=static_audience("Three", ids), template=template,
                                       category=category, channels=["email"])
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")

    # "Send now": launch → run start → planning task → send task, each enqueued on commit and run
    # by the immediate backend, as a worker would.
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_launch(campaign=campaign, actor=root)

    run = CampaignRun.objects.get(campaign=campaign)
    failed = Delivery.objects.get(run=run, status="failed")
    assert Delivery.objects.filter(run=run, status="sent").count() == 2
    lines = json_lines()
    planned = next(e for e in lines if e["logger"] == "notifications.campaigns.runs" and "planned" in e["message"])
    batch = next(e for e in lines if e["logger"] == "notifications.ledger.sending")
    failure = next(e for e in lines if e["logger"] == "notifications.ledger.recording")
    for entry in (planned, batch, failure):
        assert (entry["run_id"], entry["campaign_id"]) == (run.pk, campaign.pk), entry
        assert entry["task_id"], entry
    assert planned["task_id"] != batch["task_id"]  # the planning task, then the send task
    assert batch["message"] == "Sent a batch of 3: 2 sent, 0 retrying, 1 failed, 0 unknown, 0 suppressed"
    assert "delivery_id" not in batch
    assert (failure["level"], failure["delivery_id"], failure["task_id"]) == ("WARNING", failed.pk, batch["task_id"])
    assert failure["message"].startswith(f"Delivery {failed.pk} (email) failed (simulated_permanent)")
