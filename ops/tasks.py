"""The ops app's task: a worker's heartbeat. Arguments are JSON (none here)."""

from __future__ import annotations

from django_tasks import task


@task()
def worker_heartbeat_task() -> None:
    """Record that a worker took a task just now (``ops.services.heartbeat_record``)."""
    from django.utils import timezone

    from .models import Heartbeat
    from .services import heartbeat_record

    heartbeat_record(name=Heartbeat.WORKER, now=timezone.now())
