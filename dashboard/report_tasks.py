"""Report tasks: load by id, call the service. Arguments are JSON (the report id)."""

from __future__ import annotations

from django_tasks import task


@task()
def report_generate_task(*, report_id: int) -> str:
    """Build a queued report's file (PDF, CSV or XLSX); returns its final status."""
    from .reports.services import report_generate

    return report_generate(report_id=report_id).status
