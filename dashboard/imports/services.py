"""CSV user import jobs: upload → mapping → dry-run preview → confirm → (background) commit.

Every step is a service on an :class:`~dashboard.models.ImportJob`; views and the task only call
these. State moves ``uploaded → previewed → queued → running → completed | failed`` (or
``cancelled`` before confirming); confirming is a compare-and-set, so a double click or a retried
task imports once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.files.base import File
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import ngettext

from notifications.models import Audience
from notifications.services import audit_record

from .. import conf
from ..models import ImportJob
from .engine import ImportConflictError, ImportResult, UserImport
from .fields import mapping_errors, mapping_guess
from .reading import ImportFileError, csv_inspect, csv_open_records
from .report import CheckSummary, ErrorReport

logger = logging.getLogger(__name__)

Status = ImportJob.Status
MAX_NAME = 255


class ImportStateError(ValueError):
    """The job is not in a state that allows this step (already confirmed, cancelled, …)."""


class ImportMappingError(ValueError):
    def __init__(self, messages: list[str]):
        super().__init__(" ".join(messages))
        self.messages = messages


def import_job_upload(
    *, upload: UploadedFile, mode: str = ImportJob.Mode.VALID_ROWS, audience: Audience | None = None, actor=None
) -> ImportJob:
    """Store an uploaded CSV as a new job, with its encoding, delimiter, row count and a guessed mapping.

    Raises :class:`ImportFileError` (nothing stored) when the file is over a cap (bytes, rows,
    columns, characters on a line), is not text or not CSV. The upload is streamed from where
    Django put it (memory or a temporary file) and checked before it is stored; the caps are
    enforced while reading, so a hostile file costs at most one line of memory to refuse.
    """
    max_bytes = conf.import_max_bytes()
    if upload.size is not None and upload.size > max_bytes:
        raise ImportFileError(
            gettext("The file is %(size)s; the largest file you can import is %(max)s. Split it into smaller files.")
            % {"size": f"{upload.size / 1048576:.1f} MB", "max": f"{max_bytes / 1048576:.1f} MB"}
        )
    if audience is not None and audience.kind != Audience.Kind.STATIC:
        raise ValueError("Imported users can only be added to a static audience.")
    inspection = csv_inspect(
        upload, max_bytes=max_bytes, max_rows=conf.import_max_rows(), max_columns=conf.import_max_columns(),
        max_line_chars=conf.import_max_line_chars(),
    )
    name = Path(upload.name or "users.csv").name[:MAX_NAME]
    job = ImportJob(
        original_name=name, size=inspection.size, encoding=inspection.encoding, delimiter=inspection.delimiter,
        mapping=mapping_guess(inspection.headers), mode=mode, audience=audience, status=Status.UPLOADED,
        total_rows=inspection.row_count, created_by=actor if getattr(actor, "pk", None) else None,
        details={"headers": inspection.headers, "sample": inspection.sample},
    )
    upload.seek(0)
    job.file.save(name, upload, save=False)  # streamed in chunks (or the temporary file moved)
    job.save()
    return job


def import_job_preview(*, job: ImportJob, mapping: dict[str, int]) -> ImportJob:
    """The dry run: check every row with ``mapping`` and store the counts, samples and error report.

    Writes nothing but the job. May be repeated with another mapping until the job is confirmed.
    Rows are not kept: the preview holds the counts and the first rows of each kind (new,
    updated, invalid, formula-like), so a big file previews in bounded memory.
    """
    if job.status not in (Status.UPLOADED, Status.PREVIEWED):
        raise ImportStateError(gettext("This import was already confirmed or cancelled."))
    errors = mapping_errors(mapping, column_count=len(job.details.get("headers", [])))
    if errors:
        raise ImportMappingError(errors)
    job.mapping = mapping
    with _user_import(job) as importer, CheckSummary(mapping=mapping) as summary:
        plan = importer.check(after_chunk=summary)  # the summary keeps counts and samples, not the rows
        _store_check(job, total=plan.total, counts=summary.counts, report=summary.report)
    job.status = Status.PREVIEWED
    job.details = {**job.details, "preview": summary.preview()}
    job.save()
    return job


def import_job_confirm(
    *, job: ImportJob, actor=None, mode: str | None = None, language: str | None = None, invite: bool | None = None
) -> ImportJob:
    """Start the import of a previewed job: in this request when small, else as a background task.

    ``mode`` (valid rows / all or nothing) may still be changed here, after seeing the preview.
    With ``invite`` each user the import creates is emailed an invitation to choose a password
    once the import has committed (``accounts.passwords.invitations_send``).
    """
    if mode is not None and mode not in ImportJob.Mode.values:
        raise ValueError(f"Unknown import mode {mode!r}.")
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job.pk, status=Status.PREVIEWED).update(
            status=Status.QUEUED, mode=mode or job.mode, invite=job.invite if invite is None else invite
        )
        if not claimed:
            raise ImportStateError(gettext("This import was already confirmed or cancelled."))
        job.refresh_from_db()
        job.details = {**job.details, "language": language or translation.get_language(), "phase": "queued"}
        job.processed_rows = 0
        job.save(update_fields=["details", "processed_rows"])
        audit_record(actor=actor, action="users.import_confirmed", target=job,
                     changes={"rows": job.total_rows, "mode": job.mode, "invite": job.invite})
        background = job.total_rows > conf.import_sync_rows()
        if background:
            from ..tasks import import_users_task

            job_id = job.pk
            transaction.on_commit(lambda: import_users_task.enqueue(job_id=job_id))
    if not background:
        import_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def import_job_cancel(*, job: ImportJob, actor=None) -> ImportJob:
    """Drop a job that was not confirmed. A confirmed job cannot be cancelled (it is one transaction)."""
    claimed = ImportJob.objects.filter(pk=job.pk, status__in=[Status.UPLOADED, Status.PREVIEWED]).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    if not claimed:
        raise ImportStateError(gettext("Only an import that was not confirmed yet can be cancelled."))
    job.refresh_from_db()
    return job


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Check and write a confirmed job (the body of the background task; small jobs call it directly).

    Returns None when the job is not queued (a duplicate or retried task): nothing happens twice.
    A failure of any kind rolls the writes back and records the job as failed with the reason.
    """
    claimed = ImportJob.objects.filter(pk=job_id, status=Status.QUEUED).update(status=Status.RUNNING)
    if not claimed:
        return None
    job = ImportJob.objects.select_related("audience", "created_by").get(pk=job_id)
    with translation.override(job.details.get("language") or None):
        try:
            _run(job)
        except ImportConflictError as exc:
            _fail(job, str(exc))
        except IntegrityError as exc:
            logger.warning("User import %s collided with concurrent changes: %s", job.pk, exc)
            _fail(job, gettext("Some users changed while this import ran, so nothing was imported (%(error)s). "
                               "Import the file again.") % {"error": exc})
        except Exception as exc:
            logger.exception("User import %s failed", job.pk)
            _fail(job, gettext("The import failed and nothing was imported: %(error)s") % {"error": exc})
    job.refresh_from_db()
    return job


def _run(job: ImportJob) -> None:
    def progress(rows: int) -> None:
        ImportJob.objects.filter(pk=job.pk).update(processed_rows=rows)

    _set_phase(job, "checking")
    with _user_import(job, progress=progress) as importer:
        plan = importer.check()
    report = None
    if plan.problems:
        report = ErrorReport(plan.headers)
        report.write(plan.problems)
    try:
        _store_check(job, total=plan.total, counts=plan.counts, report=report)
    finally:
        if report is not None:
            report.close()
    if job.mode == ImportJob.Mode.ALL_OR_NOTHING and plan.problems:
        _fail(job, ngettext(
            "%(count)d row is invalid, so nothing was imported (all or nothing). "
            "Download the error report, fix the row and import the file again.",
            "%(count)d rows are invalid, so nothing was imported (all or nothing). "
            "Download the error report, fix the rows and import the file again.",
            len(plan.problems),
        ) % {"count": len(plan.problems)})
        return
    _set_phase(job, "writing")
    audience = job.audience if job.audience_id and job.audience.kind == Audience.Kind.STATIC else None
    with transaction.atomic():
        result = importer.write(plan, audience=audience, actor=job.created_by)
        _complete(job, result)
    if job.invite and result.new_ids:
        _invite(job, result.new_ids)


def _invite(job: ImportJob, user_ids) -> None:
    """After the import committed: invite the new users to choose a password. A failure here
    (the mail channel down...) does not undo the import; the job says how many were invited."""
    from accounts.passwords import invitations_send

    try:
        invited = invitations_send(user_ids=list(user_ids), actor=job.created_by)
    except Exception:
        logger.exception("Invitations for user import %s failed", job.pk)
        invited = 0
    job.details = {**job.details, "invited": invited}
    ImportJob.objects.filter(pk=job.pk).update(details=job.details)


def _complete(job: ImportJob, result: ImportResult) -> None:
    """Inside the writing transaction: the job says "completed" exactly when the rows are there."""
    job.status = Status.COMPLETED
    job.finished_at = timezone.now()
    job.new_rows, job.updated_rows, job.unchanged_rows = result.new, result.updated, result.unchanged
    job.invalid_rows = result.invalid
    job.details = {**job.details, "phase": "done", "audience_added": result.audience_added}
    job.save()
    audit_record(
        actor=job.created_by, action="users.imported", target=job,
        changes={"new": result.new, "updated": result.updated, "unchanged": result.unchanged,
                 "invalid": result.invalid, "audience_added": result.audience_added},
    )


def _fail(job: ImportJob, error: str) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        status=Status.FAILED, error=error, finished_at=timezone.now(),
        details={**job.details, "phase": "failed"},
    )


def _set_phase(job: ImportJob, phase: str) -> None:
    job.details = {**job.details, "phase": phase}
    ImportJob.objects.filter(pk=job.pk).update(details=job.details)


def _store_check(job: ImportJob, *, total: int, counts: dict[str, int], report: ErrorReport | None) -> None:
    """Counts and the error report of a check, on the job (saved by the caller or here)."""
    job.total_rows = job.processed_rows = total
    job.new_rows, job.updated_rows = counts["new"], counts["updated"]
    job.unchanged_rows, job.invalid_rows = counts["unchanged"], counts["invalid"]
    if job.error_report:
        job.error_report.delete(save=False)
    if report is not None:
        name = f"{Path(job.original_name).stem or 'import'}-errors.csv"
        job.error_report.save(name, File(report.finished(), name=name), save=False)
    if job.status in (Status.RUNNING, Status.QUEUED):
        ImportJob.objects.filter(pk=job.pk).update(
            total_rows=job.total_rows, processed_rows=job.processed_rows, new_rows=job.new_rows,
            updated_rows=job.updated_rows, unchanged_rows=job.unchanged_rows, invalid_rows=job.invalid_rows,
            error_report=job.error_report.name or "",
        )


@contextmanager
def _user_import(job: ImportJob, *, progress=None) -> Iterator[UserImport]:
    """An importer reading the job's stored file as it checks (the file is open until the block ends).

    The encoding and delimiter are the ones found at upload; the caps are enforced again, so a
    file stored under older, looser settings is refused rather than read whole.
    """
    with job.file.open("rb") as handle:
        records = csv_open_records(
            handle, encoding=job.encoding or "utf-8", delimiter=job.delimiter or ",",
            max_bytes=conf.import_max_bytes(), max_columns=conf.import_max_columns(),
            max_line_chars=conf.import_max_line_chars(),
        )
        yield UserImport(
            records=records, mapping={key: int(index) for key, index in job.mapping.items()},
            phone_region=conf.import_phone_region(), progress=progress,
        )


def import_job_is_background(job: ImportJob) -> bool:
    return job.total_rows > conf.import_sync_rows()
