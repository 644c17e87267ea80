"""Dashboard tasks: load by id, call the service. Arguments are JSON (ids only)."""

from __future__ import annotations

from django_tasks import task


@task()
def import_users_task(*, job_id: int) -> dict | None:
    """Import a confirmed CSV job too big for the request. A duplicate or retried task does nothing."""
    from .imports import import_job_run

    job = import_job_run(job_id=job_id)
    if job is None:
        return None
    return {
        "status": job.status, "new": job.new_rows, "updated": job.updated_rows,
        "unchanged": job.unchanged_rows, "invalid": job.invalid_rows,
    }
