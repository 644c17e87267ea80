"""CSV import in the admin: the operator's journey, bad input, live progress, and the role matrix."""

from __future__ import annotations

import codecs
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from dashboard.imports import import_job_preview, import_job_upload
from dashboard.models import ImportJob
from notifications.models import AudienceMember, RecipientProfile
from tests.factories import AudienceFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()

GOOD_AND_BAD = (
    "Email,First name,Last name,Mobile,Time zone,Language\n"
    "ada@example.com,Ada,Lovelace,+44 20 7946 0018,Europe/London,en\n"
    "grace@example.com,Grace,Hopper,+1 415 555 0123,America/New_York,en\n"
    "broken-email,Eve,,,,\n"
    "linus@example.com,Linus,,+1 555,,\n"
    "ken@example.com,Ken,,,Moon/Base,\n"
    "ADA@example.com,Ada,Again,,,\n"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def staff(username: str, group: str | None):
    user = UserFactory(username=username, is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def operator():
    return staff("otto", "Operators")


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


def csv_file(text: str | bytes, name: str = "users.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode() if isinstance(text, str) else text, "text/csv")


def url(name: str, *args) -> str:
    return reverse(f"admin:dashboard_importjob_{name}", args=args)


def upload(client, text, **fields):
    return client.post(url("upload"), {"file": csv_file(text), "mode": "valid_rows", **fields})


def post_mapping(client, job: ImportJob, mapping: dict[str, int] | None = None):
    mapping = job.mapping if mapping is None else mapping
    keys = ["email", "username", "first_name", "last_name", "full_name", "phone", "timezone", "locale"]
    return client.post(url("mapping", job.pk), {key: "" if key not in mapping else str(mapping[key]) for key in keys})


# --- the operator's journey ---------------------------------------------------------------------


def test_operator_imports_good_and_bad_rows_sees_reasons_confirms_and_users_exist(operator_client):
    page = operator_client.get(url("upload"))
    assert page.status_code == 200
    html = page.content.decode()
    for testid in ("upload-form", "import-file", "import-mode", "import-audience", "upload-submit"):
        assert f'data-testid="{testid}"' in html

    response = upload(operator_client, GOOD_AND_BAD)
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == url("mapping", job.pk)

    mapping_page = operator_client.get(url("mapping", job.pk)).content.decode()
    assert 'data-testid="mapping-form"' in mapping_page and 'data-testid="mapping-email"' in mapping_page
    assert "6 rows, 6 columns" in mapping_page

    response = post_mapping(operator_client, job)
    assert response.status_code == 302 and response["Location"] == url("preview", job.pk)

    preview = operator_client.get(url("preview", job.pk)).content.decode()
    assert 'data-testid="count-new">2<' in preview
    assert 'data-testid="count-invalid">4<' in preview
    for reason in ("“broken-email” is not a valid email address", "not a valid number for country code +1",
                   "unknown time zone “Moon/Base”", "duplicate of line 2 (same email address)"):
        assert reason in preview
    assert preview.count('data-testid="invalid-row"') == 4
    assert 'data-testid="download-error-report"' in preview
    assert not User.objects.filter(email__in=["ada@example.com", "grace@example.com"]).exists()

    response = operator_client.post(url("confirm", job.pk), {"mode": "valid_rows"})
    assert response.status_code == 302 and response["Location"] == url("change", job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED
    ada = User.objects.select_related("recipient_profile").get(email="ada@example.com")
    assert (ada.first_name, ada.recipient_profile.phone, ada.recipient_profile.timezone) == (
        "Ada", "+442079460018", "Europe/London")
    assert User.objects.filter(email="grace@example.com").exists()

    detail = operator_client.get(response["Location"]).content.decode()
    assert 'data-testid="import-status" data-status="completed"' in detail
    assert 'data-testid="result-new">2<' in detail and 'data-testid="result-invalid">4<' in detail
    assert url("progress", job.pk) not in detail  # finished: no more polling


def test_the_upload_page_says_truthfully_how_imported_users_sign_in(operator_client):
    """Imported users get an unusable password; the page must not suggest they can just sign in."""
    html = operator_client.get(url("upload")).content.decode()
    assert "Imported users get no password: they can sign in only once they have chosen one" in html
    assert "“Forgot your password?”" in html and "invitation email" in html


def test_gbk_file_with_chinese_names_imports_through_the_pages(operator_client):
    data = "邮箱,姓名,手机,时区\nwei@example.com,张伟,+86 138 0013 8000,Asia/Shanghai\n".encode("gbk")
    operator_client.post(url("upload"), {"file": csv_file(data, "名单.csv"), "mode": "all_or_nothing"})
    job = ImportJob.objects.get()
    assert job.original_name == "名单.csv" and job.encoding == "gb18030"
    assert "GBK / GB18030" in operator_client.get(url("mapping", job.pk)).content.decode()
    post_mapping(operator_client, job)
    preview = operator_client.get(url("preview", job.pk)).content.decode()
    assert '<td class="px-3 py-2">伟</td><td class="px-3 py-2">张</td>' in preview  # first name, last name
    assert 'data-testid="count-new">1<' in preview
    operator_client.post(url("confirm", job.pk), {"mode": "all_or_nothing"})
    wei = User.objects.get(email="wei@example.com")
    assert (wei.last_name, wei.first_name) == ("张", "伟")


def test_columns_can_be_remapped(operator_client):
    upload(operator_client, "Primary,Backup,Nick\nann@example.com,ann@other.example,Annie\n")
    job = ImportJob.objects.get()
    assert job.mapping == {}
    response = post_mapping(operator_client, job, {})
    assert response.status_code == 200
    assert "Choose the column that holds the email address." in response.content.decode()

    post_mapping(operator_client, job, {"email": 1, "first_name": 2})
    operator_client.post(url("confirm", job.pk), {"mode": "valid_rows"})
    assert User.objects.get(email="ann@other.example").first_name == "Annie"


def test_one_column_for_two_fields_is_refused(operator_client):
    upload(operator_client, "email,name\nann@example.com,Ann\n")
    job = ImportJob.objects.get()
    response = post_mapping(operator_client, job, {"email": 0, "first_name": 0})
    assert "One column is chosen for both" in response.content.decode()
    assert ImportJob.objects.get().status == ImportJob.Status.UPLOADED


def test_imported_users_join_the_chosen_static_audience(operator_client):
    audience = AudienceFactory(kind="static", name="Newsletter import")
    AudienceFactory(kind="rules", name="Rule audience")
    page = operator_client.get(url("upload")).content.decode()
    assert "Newsletter import" in page and "Rule audience" not in page
    upload(operator_client, "email\nx@example.com\ny@example.com\n", audience=str(audience.pk))
    job = ImportJob.objects.get()
    post_mapping(operator_client, job)
    assert 'data-testid="confirm-audience"' in operator_client.get(url("preview", job.pk)).content.decode()
    operator_client.post(url("confirm", job.pk), {"mode": "valid_rows"})
    assert AudienceMember.objects.filter(audience=audience).count() == 2
    detail = operator_client.get(url("change", job.pk)).content.decode()
    assert 'data-testid="result-audience"' in detail


def test_invalid_rows_are_paged(operator_client):
    bad = "".join(f"bad{i}\n" for i in range(30))
    upload(operator_client, "email\n" + bad)
    job = ImportJob.objects.get()
    post_mapping(operator_client, job)
    first = operator_client.get(url("preview", job.pk)).content.decode()
    assert first.count('data-testid="invalid-row"') == 25 and 'data-testid="problems-next"' in first
    second = operator_client.get(url("preview", job.pk), {"page": 2}, headers={"HX-Request": "true"})
    html = second.content.decode()
    assert html.lstrip().startswith('<div id="import-problems"')  # just the fragment
    assert html.count('data-testid="invalid-row"') == 5 and 'data-line="31"' in html


def test_error_report_download(operator_client):
    upload(operator_client, GOOD_AND_BAD)
    job = ImportJob.objects.get()
    post_mapping(operator_client, job)
    response = operator_client.get(url("error_report", job.pk))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="users-errors.csv"'
    body = b"".join(response.streaming_content)
    assert body.startswith(codecs.BOM_UTF8)
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0] == "line,reason,Email,First name,Last name,Mobile,Time zone,Language"
    assert lines[1].startswith("4,“broken-email” is not a valid email address,broken-email,Eve")
    assert len(lines) == 5


def test_all_or_nothing_failure_is_shown_and_nothing_written(operator_client):
    upload(operator_client, GOOD_AND_BAD)
    job = ImportJob.objects.get()
    post_mapping(operator_client, job)
    assert 'data-testid="confirm-warning"' in operator_client.get(url("preview", job.pk)).content.decode()
    response = operator_client.post(url("confirm", job.pk), {"mode": "all_or_nothing"}, follow=True)
    html = response.content.decode()
    assert 'data-status="failed"' in html and 'data-testid="import-error"' in html
    assert "4 rows are invalid, so nothing was imported" in html
    assert not User.objects.filter(email__in=["ada@example.com", "grace@example.com"]).exists()


def test_background_import_shows_a_polling_progress_bar(operator_client, settings):
    settings.SIGNALBOX_IMPORT_SYNC_ROWS = 1
    upload(operator_client, "email\na@example.com\nb@example.com\nc@example.com\n")
    job = ImportJob.objects.get()
    post_mapping(operator_client, job)
    assert 'data-testid="confirm-background"' in operator_client.get(url("preview", job.pk)).content.decode()
    operator_client.post(url("confirm", job.pk), {"mode": "valid_rows"})
    job.refresh_from_db()
    assert job.status == ImportJob.Status.QUEUED  # the worker has it (on commit)

    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, processed_rows=2)
    detail = operator_client.get(url("change", job.pk)).content.decode()
    assert f'hx-get="{url("progress", job.pk)}"' in detail and 'hx-trigger="every 1s"' in detail
    fragment = operator_client.get(url("progress", job.pk), headers={"HX-Request": "true"}).content.decode()
    assert 'aria-valuenow="67"' in fragment and "Checked 2 of 3 rows" in fragment
    assert fragment.lstrip().startswith('<div id="import-status"')


# --- bad input is refused clearly, nothing is lost -----------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "text", "message"),
    [
        ("SIGNALBOX_IMPORT_MAX_BYTES", 64, "email\n" + "someone@example.com\n" * 10, "the largest file you can import is"),
        ("SIGNALBOX_IMPORT_MAX_ROWS", 5, "email\n" + "someone@example.com\n" * 6, "more than 5 rows"),
    ],
)
def test_files_over_a_cap_are_refused_with_a_clear_message(operator_client, settings, setting, value, text, message):
    setattr(settings, setting, value)
    response = upload(operator_client, text)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'email,name\na@example.com,"Ada\nb@example.com,Bo\n', "Line 2: a quoted value is never closed"),
        (b"PK\x03\x04\x14\x00xlsx", "This is an Excel workbook, not a CSV file."),
        (b"\x00\x01\x02\x03binary\xff\xfe", "not a text file|neither UTF-8 nor GBK"),
        (b"email\n", "no rows to import"),
    ],
)
def test_malformed_files_are_refused_with_a_clear_message(operator_client, data, message):
    response = operator_client.post(url("upload"), {"file": csv_file(data), "mode": "valid_rows"})
    assert response.status_code == 200
    assert re.search(message, response.content.decode())
    assert not ImportJob.objects.exists()


# --- roles ----------------------------------------------------------------------------------------


@pytest.fixture
def previewed_job(operator):
    job = import_job_upload(upload=csv_file("email\nrole@example.com\n"), actor=operator)
    import_job_preview(job=job, mapping=job.mapping)
    return job


def flow_requests(job: ImportJob) -> list[tuple[str, str, dict]]:
    return [
        ("get", url("upload"), {}),
        ("post", url("upload"), {"file": csv_file("email\nx@example.com\n"), "mode": "valid_rows"}),
        ("get", url("mapping", job.pk), {}),
        ("post", url("mapping", job.pk), {"email": "0"}),
        ("get", url("preview", job.pk), {}),
        ("post", url("confirm", job.pk), {"mode": "valid_rows"}),
        ("post", url("cancel", job.pk), {}),
        ("get", url("add"), {}),
    ]


@pytest.mark.parametrize("role", ["Marketers", "Managers", None])
def test_other_staff_get_403_on_every_import_step(client, previewed_job, role):
    client.force_login(staff("someone", role))
    for method, path, data in flow_requests(previewed_job):
        response = getattr(client, method)(path, data)
        assert response.status_code == 403, (role, method, path)
    previewed_job.refresh_from_db()
    assert previewed_job.status == ImportJob.Status.PREVIEWED
    assert ImportJob.objects.count() == 1
    assert not User.objects.filter(email__in=["role@example.com", "x@example.com"]).exists()


def test_anonymous_and_non_staff_are_sent_to_the_login(client, previewed_job):
    for who in (None, UserFactory(username="plain")):
        if who:
            client.force_login(who)
        for method, path, data in flow_requests(previewed_job):
            response = getattr(client, method)(path, data)
            assert response.status_code == 302 and "/login/" in response["Location"], (who, path)
    assert ImportJob.objects.get().status == ImportJob.Status.PREVIEWED


@pytest.mark.parametrize(("role", "can_view"), [("Operators", True), ("Managers", True), ("Marketers", False)])
def test_history_progress_and_error_report_are_for_operators_and_managers(client, role, can_view):
    job = import_job_upload(upload=csv_file("email\nbad\n"))
    import_job_preview(job=job, mapping=job.mapping)
    client.force_login(staff("viewer", role))
    expected = 200 if can_view else 403
    for path in (url("changelist"), url("change", job.pk), url("progress", job.pk), url("error_report", job.pk)):
        assert client.get(path).status_code == expected, path


def test_managers_see_the_history_without_import_buttons(client):
    import_job_upload(upload=csv_file("email\na@example.com\n"))
    client.force_login(staff("meg", "Managers"))
    html = client.get(url("changelist")).content.decode()
    assert "users.csv" in html
    assert url("add") not in html
    assert 'data-testid="import-continue"' not in client.get(url("change", ImportJob.objects.get().pk)).content.decode()


def test_operators_see_the_sidebar_entry_and_marketers_do_not(client):
    client.force_login(staff("otto", "Operators"))
    assert f'href="{url("changelist")}"' in client.get(reverse("admin:index")).content.decode()
    client.force_login(staff("mia", "Marketers"))
    assert f'href="{url("changelist")}"' not in client.get(reverse("admin:index")).content.decode()


def test_add_button_leads_to_the_upload_page(operator_client):
    assert operator_client.get(url("add"))["Location"] == url("upload")


def test_get_pages_change_nothing(operator_client, previewed_job):
    def state():
        job = ImportJob.objects.get(pk=previewed_job.pk)
        return (job.status, job.mapping, job.new_rows, job.processed_rows, User.objects.count(),
                RecipientProfile.objects.count(), ImportJob.objects.count())

    before = state()
    for path in (url("upload"), url("mapping", previewed_job.pk), url("preview", previewed_job.pk),
                 url("progress", previewed_job.pk), url("error_report", previewed_job.pk), url("change", previewed_job.pk),
                 url("changelist"), url("confirm", previewed_job.pk), url("cancel", previewed_job.pk)):
        operator_client.get(path)
    assert state() == before


def test_confirm_and_cancel_refuse_get(operator_client, previewed_job):
    assert operator_client.get(url("confirm", previewed_job.pk)).status_code == 405
    assert operator_client.get(url("cancel", previewed_job.pk)).status_code == 405


def test_csrf_is_enforced_on_the_flow_posts(operator, previewed_job):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post(url("confirm", previewed_job.pk), {"mode": "valid_rows"}).status_code == 403
    assert client.post(url("upload"), {"file": csv_file("email\na@example.com\n")}).status_code == 403
    assert ImportJob.objects.get().status == ImportJob.Status.PREVIEWED


def test_cancel_from_the_preview(operator_client, previewed_job):
    response = operator_client.post(url("cancel", previewed_job.pk))
    assert response["Location"] == url("changelist")
    previewed_job.refresh_from_db()
    assert previewed_job.status == ImportJob.Status.CANCELLED
    assert operator_client.get(url("preview", previewed_job.pk))["Location"] == url("change", previewed_job.pk)
