"""CSV import services: dry run, commit, update vs unchanged, modes, rollback, audience, background task."""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError

from dashboard.imports import (
    ImportFileError,
    ImportStateError,
    UserImport,
    engine,
    import_job_cancel,
    import_job_confirm,
    import_job_preview,
    import_job_run,
    import_job_upload,
)
from dashboard.models import ImportJob
from dashboard.tasks import import_users_task
from notifications.models import AudienceMember, AuditEntry, RecipientProfile
from tests.factories import AudienceFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()
HEADER = "email,first_name,last_name,phone,timezone,locale\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(text: str | bytes, name: str = "users.csv", **kwargs) -> ImportJob:
    data = text.encode() if isinstance(text, str) else text
    return import_job_upload(upload=SimpleUploadedFile(name, data, "text/csv"), **kwargs)


def preview_and_confirm(job: ImportJob, *, mapping=None, mode=None) -> ImportJob:
    import_job_preview(job=job, mapping=mapping or job.mapping)
    return import_job_confirm(job=job, mode=mode)


def snapshot() -> tuple:
    return (
        sorted(User.objects.values_list("username", "email", "first_name", "last_name")),
        sorted(RecipientProfile.objects.values_list("user__username", "phone", "timezone", "locale")),
        AudienceMember.objects.count(),
    )


@pytest.fixture
def existing():
    """ada: same as the file (unchanged); bob: new last name (update); cy: no profile yet (update)."""
    ada = RecipientProfileFactory(
        user=UserFactory(username="ada", email="Ada@Example.com", first_name="Ada", last_name="Lovelace"),
        phone="+442079460018", timezone="Europe/London", locale="en",
    ).user
    bob = RecipientProfileFactory(
        user=UserFactory(username="bob", email="bob@example.com", first_name="Bob", last_name="Old"),
        phone="+14155550100", timezone="America/New_York", locale="en",
    ).user
    cy = UserFactory(username="cy", email="cy@example.com", first_name="Cy", last_name="Young")
    return {"ada": ada, "bob": bob, "cy": cy}


MIXED = (
    HEADER
    + "ada@example.com,Ada,Lovelace,+44 20 7946 0018,Europe/London,en\n"  # unchanged (case-insensitive match)
    + "bob@example.com,,New,,,\n"  # update: last name only; empty cells keep the rest
    + "cy@example.com,,,+86 138 0013 8000,Asia/Shanghai,zh-hans\n"  # update: creates the profile
    + "dan@example.com,Dan,Brown,,,\n"  # new, defaults
    + "not-an-email,Eve,,,,\n"  # invalid: email
    + "fay@example.com,Fay,,+1 555,,\n"  # invalid: phone
    + "gus@example.com,Gus,,,Mars/Base,\n"  # invalid: time zone
    + "DAN@example.com,Dan,Again,,,\n"  # invalid: duplicate of line 5
)


def test_preview_sorts_rows_and_writes_nothing(existing):
    before = snapshot()
    job = upload(MIXED)
    assert job.status == ImportJob.Status.UPLOADED and job.total_rows == 8

    import_job_preview(job=job, mapping=job.mapping)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.PREVIEWED
    assert (job.new_rows, job.updated_rows, job.unchanged_rows, job.invalid_rows) == (1, 2, 1, 4)
    assert snapshot() == before
    reasons = {p["line"]: p["reason"] for p in job.details["preview"]["problems"]}
    assert "“not-an-email” is not a valid email address" in reasons[6]
    assert "not a valid number for country code +1" in reasons[7]
    assert "unknown time zone “Mars/Base”" in reasons[8]
    assert "duplicate of line 5" in reasons[9]
    samples = job.details["preview"]["samples"]
    assert [row["email"] for row in samples["new"]] == ["dan@example.com"]
    changes = {row["email"]: row["changes"] for row in samples["updated"]}
    assert changes["bob@example.com"] == [["last_name", "Old", "New"]]
    assert ["phone", "", "+8613800138000"] in changes["cy@example.com"]
    assert [row["email"] for row in samples["updated"]] == ["bob@example.com", "cy@example.com"]


def test_commit_creates_updates_and_leaves_the_rest(existing):
    job = preview_and_confirm(upload(MIXED))

    assert job.status == ImportJob.Status.COMPLETED, job.error
    assert (job.new_rows, job.updated_rows, job.unchanged_rows, job.invalid_rows) == (1, 2, 1, 4)
    dan = User.objects.get(email="dan@example.com")
    assert (dan.username, dan.first_name, dan.last_name, dan.is_active) == ("dan", "Dan", "Brown", True)
    assert not dan.has_usable_password()
    assert (dan.recipient_profile.phone, dan.recipient_profile.timezone, dan.recipient_profile.locale) == ("", "UTC", "en")
    bob = User.objects.select_related("recipient_profile").get(pk=existing["bob"].pk)
    assert (bob.first_name, bob.last_name) == ("Bob", "New")
    assert (bob.recipient_profile.phone, bob.recipient_profile.timezone) == ("+14155550100", "America/New_York")
    cy = RecipientProfile.objects.get(user=existing["cy"])
    assert (cy.phone, cy.timezone, cy.locale) == ("+8613800138000", "Asia/Shanghai", "zh-hans")
    ada = User.objects.get(pk=existing["ada"].pk)
    assert ada.email == "Ada@Example.com"  # matched, not rewritten
    assert not User.objects.filter(email__in=["fay@example.com", "gus@example.com"]).exists()
    entry = AuditEntry.objects.get(action="users.imported")
    assert entry.changes["new"] == 1 and entry.changes["invalid"] == 4
    assert AuditEntry.objects.filter(action="users.import_confirmed").exists()


def test_importing_the_same_file_again_changes_nothing(existing):
    preview_and_confirm(upload(MIXED))
    before = snapshot()
    again = preview_and_confirm(upload(MIXED))
    assert (again.new_rows, again.updated_rows, again.unchanged_rows) == (0, 0, 4)
    assert snapshot() == before


def test_usernames_are_made_from_the_email_and_kept_unique():
    UserFactory(username="ada", email="someone-else@example.com")
    job = preview_and_confirm(upload(
        "email,username\nada@example.com,\nada@other.example,\nzed@example.com,zed.z\nq+tag@example.com,\n"
    ))
    assert job.new_rows == 4
    made = dict(User.objects.filter(email__contains="example").values_list("email", "username"))
    assert made["ada@example.com"] == "ada@example.com"  # "ada" is taken
    assert made["ada@other.example"] == "ada@other.example"
    assert made["zed@example.com"] == "zed.z"
    assert made["q+tag@example.com"] == "q+tag"


def test_a_given_username_that_is_taken_is_an_invalid_row():
    UserFactory(username="grace", email="grace@example.com")
    job = upload("email,username\nnew@example.com,grace\n")
    import_job_preview(job=job, mapping=job.mapping)
    job.refresh_from_db()
    assert job.invalid_rows == 1
    assert "username “grace” already belongs to another user" in job.details["preview"]["problems"][0]["reason"]


def test_two_existing_users_with_one_email_make_the_row_invalid():
    UserFactory(username="twin1", email="twin@example.com")
    UserFactory(username="twin2", email="TWIN@example.com")
    job = upload("email,first_name\ntwin@example.com,T\n")
    import_job_preview(job=job, mapping=job.mapping)
    job.refresh_from_db()
    assert "2 existing users have the email address" in job.details["preview"]["problems"][0]["reason"]


def test_gbk_file_with_chinese_names_imports_correctly():
    data = "邮箱,姓名,手机,时区,语言\nwei@example.com,张伟,+86 138 0013 8000,Asia/Shanghai,中文\n" \
           "nana@example.com,欧阳娜娜,+86 139 0013 9000,Asia/Shanghai,zh-CN\n".encode("gbk")
    job = upload(data)
    assert job.encoding == "gb18030"
    assert job.mapping == {"email": 0, "full_name": 1, "phone": 2, "timezone": 3, "locale": 4}
    job = preview_and_confirm(job)
    assert job.new_rows == 2, job.details
    wei = User.objects.select_related("recipient_profile").get(email="wei@example.com")
    assert (wei.last_name, wei.first_name) == ("张", "伟")
    assert (wei.recipient_profile.locale, wei.recipient_profile.phone) == ("zh-hans", "+8613800138000")
    assert User.objects.get(email="nana@example.com").last_name == "欧阳"


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_files(delimiter):
    text = HEADER.replace(",", delimiter) + delimiter.join(["ann@example.com", "Ann", "Lee", "", "Asia/Tokyo", "en"])
    job = preview_and_confirm(upload(text + "\n"))
    assert job.delimiter == delimiter and job.new_rows == 1
    assert User.objects.get(email="ann@example.com").recipient_profile.timezone == "Asia/Tokyo"


def test_remapping_columns_changes_where_values_go():
    job = upload("Primary,Secondary,Nick\nann@example.com,ann@other.example,Annie\n")
    assert job.mapping == {}  # nothing recognisable
    preview_and_confirm(job, mapping={"email": 1, "first_name": 2})
    assert User.objects.get(email="ann@other.example").first_name == "Annie"
    assert not User.objects.filter(email="ann@example.com").exists()


def test_remapping_is_allowed_until_confirmed():
    job = upload("a,b\nann@example.com,Ann\n")
    import_job_preview(job=job, mapping={"email": 0})
    import_job_preview(job=job, mapping={"email": 0, "first_name": 1})
    job = import_job_confirm(job=job)
    assert User.objects.get(email="ann@example.com").first_name == "Ann"
    with pytest.raises(ImportStateError):
        import_job_preview(job=job, mapping={"email": 0})


def test_valid_rows_mode_skips_invalid_rows():
    job = preview_and_confirm(upload(HEADER + "ok@example.com,Ok,,,,\nbad,Bad,,,,\n"), mode="valid_rows")
    assert job.status == ImportJob.Status.COMPLETED
    assert (job.new_rows, job.invalid_rows) == (1, 1)
    assert User.objects.filter(email="ok@example.com").exists()


def test_all_or_nothing_with_an_invalid_row_imports_nothing(existing):
    before = snapshot()
    job = preview_and_confirm(upload(MIXED, mode=ImportJob.Mode.ALL_OR_NOTHING))
    assert job.status == ImportJob.Status.FAILED
    assert "4 rows are invalid, so nothing was imported" in job.error
    assert snapshot() == before
    assert job.error_report  # the operator can fix the rows


def test_all_or_nothing_with_only_valid_rows_imports_them():
    job = preview_and_confirm(upload(HEADER + "a@example.com,A,,,,\nb@example.com,B,,,,\n"), mode="all_or_nothing")
    assert job.status == ImportJob.Status.COMPLETED and job.new_rows == 2


@pytest.mark.parametrize("mode", ["valid_rows", "all_or_nothing"])
def test_a_failure_mid_import_leaves_the_database_unchanged(existing, monkeypatch, mode):
    """The write is one transaction: a database error after the first batch rolls every batch back."""
    monkeypatch.setattr(engine, "WRITE_BATCH", 2)
    real_create = engine.UserImport._create_users
    calls = []

    def create_then_collide(self, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise IntegrityError("UNIQUE constraint failed: auth_user.username")
        return real_create(self, rows)

    monkeypatch.setattr(engine.UserImport, "_create_users", create_then_collide)
    rows = "".join(f"new{i}@example.com,N{i},,,,\n" for i in range(5))
    before = snapshot()

    job = preview_and_confirm(upload(HEADER + "bob@example.com,,Changed,,,\n" + rows), mode=mode)

    assert calls == [2, 2]  # the first batch was written, then the second failed
    assert job.status == ImportJob.Status.FAILED
    assert "nothing was imported" in job.error and "UNIQUE constraint failed" in job.error
    assert snapshot() == before
    assert not AuditEntry.objects.filter(action="users.imported").exists()


def test_added_to_a_static_audience():
    audience = AudienceFactory(kind="static", name="Imported")
    already = UserFactory(email="old@example.com")
    job = preview_and_confirm(upload(HEADER + "old@example.com,,,,,\nnew@example.com,,,,,\nbad,,,,,\n", audience=audience))
    members = set(AudienceMember.objects.filter(audience=audience).values_list("user__email", flat=True))
    assert members == {"old@example.com", "new@example.com"}
    assert job.details["audience_added"] == 2
    assert already.pk in AudienceMember.objects.values_list("user_id", flat=True)


def test_only_a_static_audience_can_be_chosen():
    with pytest.raises(ValueError, match="static"):
        upload(HEADER + "a@example.com,,,,,\n", audience=AudienceFactory(kind="rules"))


def test_confirming_twice_imports_once_and_cancel_only_before():
    job = upload(HEADER + "a@example.com,A,,,,\n")
    import_job_preview(job=job, mapping=job.mapping)
    import_job_confirm(job=job)
    with pytest.raises(ImportStateError):
        import_job_confirm(job=job)
    with pytest.raises(ImportStateError):
        import_job_cancel(job=job)
    assert User.objects.filter(email="a@example.com").count() == 1

    other = upload(HEADER + "b@example.com,B,,,,\n")
    assert import_job_cancel(job=other).status == ImportJob.Status.CANCELLED
    with pytest.raises(ImportStateError):
        import_job_preview(job=other, mapping=other.mapping)


def test_error_report_lists_each_rejected_row_with_its_reason():
    job = preview_and_confirm(upload(MIXED))
    data = job.error_report.read()
    assert data.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["line", "reason", "email", "first_name", "last_name", "phone", "timezone", "locale"]
    assert [row[0] for row in rows[1:]] == ["6", "7", "8", "9"]
    assert rows[1][2:] == ["not-an-email", "Eve", "", "", "", ""]
    assert "not a valid email address" in rows[1][1]


def test_malformed_rows_are_reported_and_the_rest_imported():
    text = HEADER + 'a@example.com,"Ann"x,,,,\nb@example.com,Bo,,,,\nc@example.com,Cy\n'
    job = preview_and_confirm(upload(text))
    assert (job.new_rows, job.invalid_rows) == (1, 2)
    reasons = [p["reason"] for p in job.details["preview"]["problems"]]
    assert "not valid CSV" in reasons[0] and "has 2 values but the header has 6 columns" in reasons[1]


@pytest.mark.parametrize(
    ("setting", "value", "data", "message"),
    [
        ("SIGNALBOX_IMPORT_MAX_BYTES", 100, HEADER + "a@example.com,,,,,\n" * 5, "largest file you can import"),
        ("SIGNALBOX_IMPORT_MAX_ROWS", 3, HEADER + "a@example.com,,,,,\n" * 4, "more than 3 rows"),
    ],
)
def test_caps_refuse_the_upload_and_store_nothing(settings, setting, value, data, message):
    setattr(settings, setting, value)
    with pytest.raises(ImportFileError, match=message):
        upload(data)
    assert not ImportJob.objects.exists()


def test_big_files_go_to_the_background_task(settings, django_capture_on_commit_callbacks, monkeypatch):
    settings.SIGNALBOX_IMPORT_SYNC_ROWS = 2
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    monkeypatch.setattr(engine, "CHUNK_ROWS", 2)
    job = upload(HEADER + "".join(f"u{i}@example.com,U{i},,,,\n" for i in range(5)))
    import_job_preview(job=job, mapping=job.mapping)

    with django_capture_on_commit_callbacks() as callbacks:
        job = import_job_confirm(job=job)
        # Queued, not imported: the task is only enqueued once the confirmation has committed.
        assert job.status == ImportJob.Status.QUEUED
        assert not User.objects.filter(email__startswith="u").exists()
    assert len(callbacks) == 1
    callbacks[0]()  # enqueue: the immediate backend runs the real task function now

    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED, job.error
    assert job.processed_rows == job.total_rows == 5 and job.finished_at is not None
    assert User.objects.filter(email__startswith="u").count() == 5
    assert import_users_task.call(job_id=job.pk) is None  # a duplicate or retried task does nothing
    assert User.objects.filter(email__startswith="u").count() == 5


def test_the_task_returns_the_counts(settings):
    job = upload(HEADER + "a@example.com,A,,,,\nbad,,,,,\n")
    import_job_preview(job=job, mapping=job.mapping)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED)
    assert import_users_task.call(job_id=job.pk) == {
        "status": "completed", "new": 1, "updated": 0, "unchanged": 0, "invalid": 1}


def test_progress_is_reported_per_chunk():
    text = HEADER + "".join(f"u{i}@example.com,,,,,\n" for i in range(7))
    seen = []
    importer = UserImport(text=text, delimiter=",", mapping={"email": 0}, progress=seen.append, chunk_rows=3)
    plan = importer.check()
    assert seen == [3, 6, 7]
    assert plan.counts["new"] == 7


def test_the_check_runs_the_same_queries_for_10_or_300_rows(django_assert_num_queries):
    def queries(rows: int) -> int:
        text = HEADER + "".join(f"q{i}@example.com,Q,,,,\n" for i in range(rows))
        importer = UserImport(text=text, delimiter=",", mapping={"email": 0, "first_name": 1})
        # the highest user id, one lookup of existing users by email, one of taken usernames
        with django_assert_num_queries(3):
            importer.check()

    queries(10)
    queries(300)


def test_status_survives_a_crash_between_queue_and_worker():
    """A job left queued is picked up by the next task; a job already running is not run twice."""
    job = upload(HEADER + "a@example.com,,,,,\n")
    import_job_preview(job=job, mapping=job.mapping)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    assert import_job_run(job_id=job.pk) is None
    assert not User.objects.filter(email="a@example.com").exists()


def test_staff_accounts_are_never_changed_by_an_import():
    admin = UserFactory(username="root", email="root@example.com", first_name="Root", is_staff=True)
    job = preview_and_confirm(upload(HEADER + "root@example.com,Hacked,,,,\nroot2@example.com,New,,,,\n"))
    assert (job.new_rows, job.invalid_rows) == (1, 1)
    admin.refresh_from_db()
    assert admin.first_name == "Root"
    assert "is a staff account" in job.details["preview"]["problems"][0]["reason"]
    same = preview_and_confirm(upload(HEADER + "root@example.com,Root,,,,\n"))  # unchanged is fine
    assert same.unchanged_rows == 1


def test_users_created_by_someone_else_during_the_import_stop_it(monkeypatch):
    """Emails have no unique constraint: a user created between the check and the write must not
    become a duplicate. The import stops and nothing is written."""
    real_check = UserImport.check

    def check_then_someone_creates_a_user(self):
        plan = real_check(self)
        if plan.new:
            UserFactory(username="sneaky", email="B@example.com")
        return plan

    job = upload(HEADER + "a@example.com,A,,,,\nb@example.com,B,,,,\n")
    import_job_preview(job=job, mapping=job.mapping)
    monkeypatch.setattr(UserImport, "check", check_then_someone_creates_a_user)
    job = import_job_confirm(job=job)

    assert job.status == ImportJob.Status.FAILED
    assert "1 of the new users were created by someone else" in job.error and "b@example.com" in job.error
    assert not User.objects.filter(email="a@example.com").exists()
    assert User.objects.filter(email__iexact="b@example.com").count() == 1
