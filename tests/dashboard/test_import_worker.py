"""A big CSV import runs in a real worker process (DB backend, or RQ in CI) and reports progress."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from dashboard.imports import engine, import_job_confirm, import_job_preview, import_job_upload
from dashboard.models import ImportJob
from tests.processes import worker_run_until_idle

pytestmark = [pytest.mark.tasks, pytest.mark.django_db(transaction=True)]
User = get_user_model()


def test_a_background_import_is_done_by_the_worker(settings):
    # The worker is another process with the default MEDIA_ROOT, so the upload goes there; the
    # files are removed at the end.
    settings.SIGNALBOX_IMPORT_SYNC_ROWS = 10
    rows = "".join(f"w{i}@example.com,W{i},+86 138 001 {i:05d}\n" for i in range(engine.CHUNK_ROWS + 50))
    job = import_job_upload(upload=SimpleUploadedFile("worker.csv", f"email,name,phone\n{rows}bad,,\n".encode()))
    try:
        import_job_preview(job=job, mapping=job.mapping)
        job = import_job_confirm(job=job)
        assert job.status == ImportJob.Status.QUEUED
        assert not User.objects.filter(email__startswith="w").exists()

        worker_run_until_idle()

        job.refresh_from_db()
        assert job.status == ImportJob.Status.COMPLETED, job.error
        assert (job.new_rows, job.invalid_rows) == (engine.CHUNK_ROWS + 50, 1)
        assert job.processed_rows == job.total_rows == engine.CHUNK_ROWS + 51
        assert User.objects.filter(email__startswith="w", recipient_profile__phone__startswith="+86").count() == (
            engine.CHUNK_ROWS + 50)
    finally:
        job.refresh_from_db()
        job.file.delete(save=False)
        if job.error_report:
            job.error_report.delete(save=False)
