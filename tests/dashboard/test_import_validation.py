"""CSV import, one row at a time: header matching, every invalid reason, normalisation. No database."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from dashboard.imports import mapping_errors, mapping_guess, split_full_name
from dashboard.imports.reading import SourceRow
from dashboard.imports.validation import CleanRow, RowProblem, RowValidator, _e164_is_valid, clean_phone

FULL = {"email": 0, "username": 1, "first_name": 2, "last_name": 3, "phone": 4, "timezone": 5, "locale": 6}


def check(*cells: str, mapping=None, region=None, validator=None, line=2):
    validator = validator or RowValidator(mapping or FULL, column_count=len(cells), phone_region=region)
    return validator.validate(SourceRow(line, line, list(cells)))


def row(email="ada@example.com", username="", first="Ada", last="Lovelace", phone="", tz="", locale=""):
    return (email, username, first, last, phone, tz, locale)


# --- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["Email", "First Name", "Last Name", "Phone", "Time zone", "Language"],
         {"email": 0, "first_name": 1, "last_name": 2, "phone": 3, "timezone": 4, "locale": 5}),
        (["E-mail Address", "Username", "Surname", "Given name", "Mobile", "TZ", "locale"],
         {"email": 0, "username": 1, "last_name": 2, "first_name": 3, "phone": 4, "timezone": 5, "locale": 6}),
        (["邮箱", "姓名", "手机", "时区", "语言"],
         {"email": 0, "full_name": 1, "phone": 2, "timezone": 3, "locale": 4}),
        (["电子邮件", "姓", "名", "手机号码", "用户名"],
         {"email": 0, "last_name": 1, "first_name": 2, "phone": 3, "username": 4}),
        (["ＥＭＡＩＬ", "notes", "email"], {"email": 0}),  # full-width folded; first column wins
        (["name", "first_name", "mail"], {"first_name": 1, "email": 2}),  # separate names beat a full name
    ],
)
def test_headers_are_matched_in_english_and_chinese(headers, expected):
    assert mapping_guess(headers) == expected


def test_mapping_errors():
    assert mapping_errors({"email": 0}, column_count=1) == []
    assert "email address" in mapping_errors({"phone": 0}, column_count=1)[0]
    assert any("not in the file" in e for e in mapping_errors({"email": 3}, column_count=2))
    assert any("both" in e for e in mapping_errors({"email": 0, "phone": 0}, column_count=2))
    assert any("full name" in e for e in mapping_errors({"email": 0, "full_name": 1, "first_name": 2}, column_count=3))


# --- valid rows ----------------------------------------------------------------------------------


def test_a_full_row_is_normalised():
    clean = check(*row(email="Ada.L@Example.COM", phone="+44 20 7946 0018",
                       tz="europe/london", locale="en-GB"))
    assert isinstance(clean, CleanRow)
    assert clean.email == "Ada.L@example.com"  # domain lower-cased, local part kept
    assert clean.email_key == "ada.l@example.com"
    assert (clean.phone, clean.timezone, clean.locale) == ("+442079460018", "Europe/London", "en")


def test_empty_cells_mean_no_value_not_blank():
    clean = check(*row(first="", last="", phone="", tz="", locale=""))
    assert (clean.first_name, clean.last_name, clean.phone, clean.timezone, clean.locale) == (None,) * 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [("+86 138 0013 8000", "+8613800138000"), ("0086-138-0013-8000", "+8613800138000"),
     ("+1 (415) 555-0123", "+14155550123"), ("+44 07911 123456", "+447911123456")],
)
def test_international_phones_in_any_usual_form(value, expected):
    assert clean_phone(value, None) == expected


def test_national_phones_need_a_default_region(settings):
    with pytest.raises(ValueError, match="needs its country code"):
        clean_phone("138 0013 8000", None)
    assert clean_phone("138 0013 8000", "CN") == "+8613800138000"
    assert clean_phone("(415) 555-0123", "US") == "+14155550123"


def test_fast_phone_check_agrees_with_phonenumbers():
    """The precompiled check may only say "valid" when phonenumbers says so and formats it the same."""
    rng = random.Random(5)
    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (0, 1, 2, 3):
            example = phonenumbers.example_number_for_type(region, kind)
            if example:
                numbers.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    for base in list(numbers):
        for _ in range(4):  # neighbours of valid numbers: some valid, some not
            digits = list(base)
            digits[rng.randrange(3, len(digits))] = str(rng.randrange(10))
            numbers.append("".join(digits))
    for _ in range(3000):
        numbers.append(f"+{rng.choice(codes)}{rng.randrange(10**5, 10**11)}")
    fast_valid = 0
    for number in numbers:
        if not 8 <= len(number) <= 16:
            continue
        try:
            parsed = phonenumbers.parse(number, None)
            expected = phonenumbers.is_valid_number(parsed) and (
                phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number)
        except phonenumbers.NumberParseException:
            expected = False
        if _e164_is_valid(number):
            fast_valid += 1
            assert expected, number
        assert (clean_phone(number, None) == number) if expected else True
    assert fast_valid > 500  # the fast path is actually taken


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [("Ada Lovelace", "Ada", "Lovelace"), ("Ada King Lovelace", "Ada King", "Lovelace"), ("Cher", "Cher", ""),
     ("张伟", "伟", "张"), ("欧阳娜娜", "娜娜", "欧阳"), ("王 小明", "小明", "王"), ("李", "李", "")],
)
def test_full_names_split_by_culture(name, first, last):
    assert split_full_name(name) == (first, last)


def test_full_name_column_fills_first_and_last_name():
    clean = check("wei@example.com", "张伟", mapping={"email": 0, "full_name": 1})
    assert (clean.first_name, clean.last_name) == ("伟", "张")


# --- invalid rows: each reason -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (row(email=""), "email address is missing"),
        (row(email="ada@"), "“ada@” is not a valid email address"),
        (row(email="ada at example.com"), "is not a valid email address"),
        (row(email="a" * 250 + "@example.com"), "longer than 254"),
        (row(phone="12345"), "needs its country code"),
        (row(phone="+1 415 555"), "not a valid number for country code +1"),
        (row(phone="+86 abc"), "is not a phone number"),
        (row(tz="Mars/Olympus_Mons"), "unknown time zone “Mars/Olympus_Mons”"),
        (row(tz="GMT+8"), "unknown time zone"),
        (row(locale="klingon"), "unknown language “klingon”"),
        (row(username="ada lovelace"), "may only contain letters"),
        (row(first="x" * 151), "first name is longer than 150"),
        (row(last="y" * 151), "last name is longer than 150"),
    ],
)
def test_each_invalid_reason(cells, reason):
    problem = check(*cells)
    assert isinstance(problem, RowProblem)
    assert reason in problem.reason
    assert problem.cells == list(cells) and problem.line == 2


def test_all_reasons_of_a_row_are_given_together():
    problem = check(*row(email="nope", phone="+1 1", tz="Nowhere"))
    assert problem.reason.count(";") == 2


def test_duplicates_within_the_file_point_at_the_first_line():
    validator = RowValidator(FULL, column_count=7, phone_region=None)
    assert isinstance(check(*row(email="ada@example.com", username="ada"), validator=validator, line=2), CleanRow)
    again = check(*row(email="ADA@example.com"), validator=validator, line=5)
    assert "duplicate of line 2 (same email address)" in again.reason
    same_username = check(*row(email="other@example.com", username="ada"), validator=validator, line=7)
    assert "duplicate of line 2 (same username)" in same_username.reason


def test_ragged_rows_are_invalid_but_a_trailing_empty_cell_is_fine():
    validator = RowValidator({"email": 0, "first_name": 1}, column_count=2, phone_region=None)
    short = validator.validate(SourceRow(3, 3, ["ada@example.com"]))
    assert "has 1 value but the header has 2 columns" in short.reason
    long = validator.validate(SourceRow(4, 4, ["bo@example.com", "Bo", "extra"]))
    assert "has 3 values" in long.reason
    trailing = validator.validate(SourceRow(5, 5, ["cy@example.com", "Cy", ""]))
    assert isinstance(trailing, CleanRow)


def test_a_value_spanning_lines_hints_at_an_unclosed_quote():
    validator = RowValidator({"email": 0, "first_name": 1}, column_count=2, phone_region=None)
    problem = validator.validate(SourceRow(3, 6, ["ada@example.com", "Ada\nbo@example.com,Bo\n"]))
    assert "runs from line 3 to line 6" in problem.reason


def test_a_record_that_is_not_valid_csv_keeps_its_reason():
    validator = RowValidator({"email": 0}, column_count=1, phone_region=None)
    problem = validator.validate(SourceRow(9, 9, None, "not valid CSV (',' expected after '\"')"))
    assert problem.line == 9 and "not valid CSV" in problem.reason
