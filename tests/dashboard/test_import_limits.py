"""CSV import caps, enforced while the file is streamed: bytes, line length, columns, rows, memory.

Every refusal is a form error on the upload page (no 500), and nothing is stored: no job, no file.
"""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile

from dashboard.imports import ImportFileError, import_job_preview, import_job_upload
from dashboard.models import ImportJob

from .test_import_admin import csv_file, staff, url

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def operator_client(client):
    client.force_login(staff("otto", "Operators"))
    return client


def refused(client, data: bytes, media) -> str:
    """Upload ``data``; it must come back as a form error with nothing stored. Returns the page."""
    response = client.post(url("upload"), {"file": csv_file(data), "mode": "valid_rows"})
    assert response.status_code == 200, response.status_code
    assert not ImportJob.objects.exists()
    assert not [path for path in media.rglob("*") if path.is_file()]  # nothing written to storage
    html = response.content.decode()
    assert 'data-testid="upload-form"' in html
    return html


# --- one long line ------------------------------------------------------------------------------


def test_a_19_mb_unquoted_line_is_refused_as_a_line_too_long(operator_client, media):
    html = refused(operator_client, b"email," + b"x" * (19 * MB) + b"\n", media)
    assert "Line 1 is longer than 100,000 characters" in html
    assert "quoted value is never closed" not in html


def test_a_long_line_after_good_ones_names_its_line(operator_client, media):
    data = b"email,name\na@example.com,Ada\n" + b"b@example.com," + b"y" * 200_000 + b"\n"
    html = refused(operator_client, data, media)
    assert "Line 3 is longer than 100,000 characters" in html
    assert "quoted value is never closed" not in html


def test_the_line_cap_is_a_setting(operator_client, media, settings):
    settings.SIGNALBOX_IMPORT_MAX_LINE_CHARS = 40
    html = refused(operator_client, b"email,name\n" + b"someone@example.com," + b"n" * 30 + b"\n", media)
    assert "Line 2 is longer than 40 characters" in html
    response = operator_client.post(url("upload"), {"file": csv_file("email\nann@example.com\n"), "mode": "valid_rows"})
    assert response.status_code == 302


def test_a_quote_never_closed_in_a_big_file_is_still_called_that(operator_client, media):
    data = b'email,name\na@example.com,"Ada\n' + b"b@example.com,Bo\n" * 200_000
    html = refused(operator_client, data, media)
    assert "Line 2: a quoted value is never closed" in html


def test_a_record_of_many_short_quoted_lines_is_refused_not_gathered(operator_client, media):
    # Every line closes its quote, but the record never ends: one "row" of a million values.
    html = refused(operator_client, b"email\n" + b'"a\n",' * 1_000_000, media)
    assert "Line 2: a quoted value is never closed" in html


# --- columns ------------------------------------------------------------------------------------


def test_a_10000_column_file_is_refused_before_any_page_lists_them(operator_client, media):
    header = ",".join(f"c{i}" for i in range(10_000))
    html = refused(operator_client, f"{header}\n{'a@example.com' + ',' * 9_999}\n".encode(), media)
    assert "Line 1 has 10,000 values; a file may have at most 200 columns." in html
    assert len(html) < 100_000  # the page is the upload form with a message, not 10,000 selects


def test_a_data_line_with_too_many_values_is_refused(operator_client, media):
    html = refused(operator_client, b"email,name\na@example.com,Ada\nb@example.com" + b",x" * 300 + b"\n", media)
    assert "Line 3 has 301 values; a file may have at most 200 columns." in html


def test_the_column_cap_is_a_setting(operator_client, media, settings):
    settings.SIGNALBOX_IMPORT_MAX_COLUMNS = 3
    html = refused(operator_client, b"email,first,last,phone\na@example.com,A,B,\n", media)
    assert "Line 1 has 4 values; a file may have at most 3 columns." in html
    response = operator_client.post(url("upload"), {"file": csv_file("email,first,last\na@example.com,A,B\n"),
                                                    "mode": "valid_rows"})
    assert response.status_code == 302
    assert "At most 20 MB, 200,000 rows and 3 columns." in operator_client.get(url("upload")).content.decode()


def test_a_big_valid_upload_is_checked_while_streamed_and_stored_whole(operator_client, media):
    """Above 2.5 MB Django spools the upload to a temporary file: it is read from there and moved."""
    data = b"email,first_name\n" + b"".join(b"user%d@example.com,Ada\n" % i for i in range(150_000))
    assert len(data) > 2.5 * MB
    response = operator_client.post(url("upload"), {"file": csv_file(data), "mode": "valid_rows"})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == url("mapping", job.pk)
    assert (job.total_rows, job.size, job.encoding) == (150_000, len(data), "utf-8")
    with job.file.open("rb") as stored:
        assert stored.read() == data


# --- in Chinese ---------------------------------------------------------------------------------


@pytest.fixture
def chinese(settings, tmp_path):
    """Simplified Chinese, with this change's pending translations until they are merged into
    locale/zh_Hans (compiled into a catalogue searched first)."""
    pending = Path(django_settings.BASE_DIR) / "locale" / "pending" / "imports.po"
    msgfmt = shutil.which("msgfmt")
    if pending.exists() and msgfmt:
        target = tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES"
        target.mkdir(parents=True)
        subprocess.run([msgfmt, "-o", str(target / "django.mo"), str(pending)], check=True)
        settings.LOCALE_PATHS = [tmp_path / "locale", *settings.LOCALE_PATHS]
    return "zh-hans"


def test_refusals_and_the_sign_in_note_are_in_chinese(operator_client, media, chinese):
    operator_client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = chinese
    page = operator_client.get(url("upload")).content.decode()
    assert "导入的用户没有密码" in page and "忘记密码？" in page
    html = refused(operator_client, b"email\n" + b"x" * 100_001 + b"\n", media)
    assert "第 2 行超过 100,000 个字符" in html
    header = ",".join(f"c{i}" for i in range(201)).encode()
    assert "第 1 行有 201 个值；一个文件最多只能有 200 列。" in refused(operator_client, header + b"\n", media)


# --- bytes --------------------------------------------------------------------------------------


def test_the_byte_cap_holds_while_reading_whatever_size_an_upload_claims(settings):
    settings.SIGNALBOX_IMPORT_MAX_BYTES = 1000
    upload = SimpleUploadedFile("users.csv", b"email\n" + b"someone@example.com\n" * 100, "text/csv")
    upload.size = 10  # a size that lies
    with pytest.raises(ImportFileError, match="largest file you can import"):
        import_job_upload(upload=upload)
    assert not ImportJob.objects.exists()


# --- memory -------------------------------------------------------------------------------------


def peak_bytes(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_uploading_a_big_file_streams_it(tmp_path):
    """The whole file was once held ~7 times over (bytes, text, lines); now a chunk at a time."""
    path = tmp_path / "people.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,first_name,last_name,phone,timezone,locale,company\n")
        for i in range(100_000):
            out.write(f"user.{i}@memory.example,Ada,King Lovelace,+1 415 555 {i % 10000:04d},Europe/London,en,"
                      f"Analytical Engines and Difference Engines Ltd\n")
    size = path.stat().st_size
    assert size > 11 * MB
    jobs = []
    with path.open("rb") as handle:
        peak = peak_bytes(lambda: jobs.append(import_job_upload(upload=UploadedFile(handle, "people.csv", size=size))))
    assert jobs[0].total_rows == 100_000 and jobs[0].size == size
    assert peak < size / 4, f"peak {peak / MB:.1f} MB for a {size / MB:.1f} MB file"


def test_previewing_a_file_of_wide_rows_holds_a_chunk_not_the_file(tmp_path):
    """Rows are checked a chunk at a time; the dry run keeps counts and the first rows, not every row."""
    path = tmp_path / "notes.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,first_name,notes\n")
        for i in range(2_300):
            out.write(f"user.{i}@memory.example,Ada,{'n' * 8_000}\n")
    size = path.stat().st_size
    assert size > 16 * MB
    with path.open("rb") as handle:
        job = import_job_upload(upload=UploadedFile(handle, "notes.csv", size=size))
    peak = peak_bytes(lambda: import_job_preview(job=job, mapping=job.mapping))
    job.refresh_from_db()
    assert (job.new_rows, job.invalid_rows) == (2_300, 0)
    assert len(job.details["preview"]["samples"]["new"]) == 20
    assert peak < size / 3, f"peak {peak / MB:.1f} MB for a {size / MB:.1f} MB file"
