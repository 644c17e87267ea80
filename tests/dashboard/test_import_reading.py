"""CSV import, reading the file: encodings, delimiters, malformed CSV and the caps. No database."""

from __future__ import annotations

import codecs
import io
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.imports import ImportFileError, csv_decode, csv_inspect, csv_sniff_delimiter
from dashboard.imports.reading import csv_line_batches, csv_records, csv_split_header

CAPS = {"max_bytes": 1024 * 1024, "max_rows": 1000}
CHINESE = "邮箱,姓名,手机,时区\nwei@example.com,张伟,+86 138 0013 8000,Asia/Shanghai\n"


def inspect(data: bytes, **caps):
    return csv_inspect(data, **{**CAPS, **caps})


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (CHINESE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + CHINESE.encode("utf-8"), "utf-8-sig"),
        (CHINESE.encode("gbk"), "gb18030"),
        (CHINESE.encode("gb18030"), "gb18030"),
        (CHINESE.encode("utf-16"), "utf-16"),
    ],
)
def test_utf8_bom_gbk_and_utf16_files_read_the_same(data, encoding):
    found = inspect(data)
    assert found.encoding == encoding
    assert found.headers == ["邮箱", "姓名", "手机", "时区"]  # no BOM left on the first header
    assert found.sample == [["wei@example.com", "张伟", "+86 138 0013 8000", "Asia/Shanghai"]]
    assert found.row_count == 1


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("email,first_name\na@example.com,Ada\n", ","),
        ("email;first_name;phone\na@example.com;Ada;+1 415 555 0100\nb@example.com;Bo;\n", ";"),
        ("email\tfirst_name\na@example.com\tAda\n", "\t"),
        ("email|first_name\na@example.com|Ada\n", "|"),
        ("email\na@example.com\nb@example.com\n", ","),  # one column
        ('"email";"name"\n"a@example.com";"Lovelace, Ada"\n', ";"),  # commas inside quoted values
    ],
)
def test_delimiter_is_sniffed(text, delimiter):
    assert csv_sniff_delimiter(text) == delimiter
    assert inspect(text.encode()).delimiter == delimiter


def test_blank_lines_are_skipped_and_line_numbers_kept():
    header, records = csv_split_header(csv_records("\nemail\n\na@example.com\n  \nb@example.com\n", ","))
    assert header.line == 2
    assert [(r.line, r.cells) for r in records] == [(4, ["a@example.com"]), (6, ["b@example.com"])]


def test_a_row_with_a_stray_quote_is_reported_and_reading_goes_on():
    _, records = csv_split_header(csv_records('email,name\na@example.com,"Ada"x\nb@example.com,Bo\n', ","))
    bad, good = list(records)
    assert bad.line == 2 and bad.cells is None and "not valid CSV" in bad.error
    assert good.cells == ["b@example.com", "Bo"]


def test_an_unclosed_quote_refuses_the_file_with_its_line():
    with pytest.raises(ImportFileError, match=r"Line 3: a quoted value is never closed"):
        inspect(b'email,name\na@example.com,Ada\nb@example.com,"Bo\nc@example.com,Cy\n')


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"email,name\n", "no rows"),
        (b"PK\x03\x04\x14\x00\x06\x00rest-of-a-workbook", "Excel workbook"),
        (b"%PDF-1.7\n...", "PDF"),
        (bytes(range(256)) * 4, "neither UTF-8 nor GBK|binary"),
        (b"email\x00,name\na\x00@example.com,x\n", "binary"),
    ],
)
def test_files_that_are_not_csv_are_refused_clearly(data, message):
    with pytest.raises(ImportFileError, match=message):
        inspect(data)


def test_byte_cap():
    data = b"email\n" + b"a@example.com\n" * 100
    assert inspect(data, max_bytes=len(data)).row_count == 100
    with pytest.raises(ImportFileError, match=r"the largest file you can import is"):
        inspect(data, max_bytes=len(data) - 1)


def test_row_cap():
    data = b"email\n" + b"a@example.com\n" * 10
    assert inspect(data, max_rows=10).row_count == 10
    with pytest.raises(ImportFileError, match="more than 9 rows"):
        inspect(data, max_rows=9)


def test_gbk_is_not_mistaken_for_utf8():
    text, encoding = csv_decode("姓名\n王芳\n".encode("gbk"))
    assert (text, encoding) == ("姓名\n王芳\n", "gb18030")


# --- streaming ------------------------------------------------------------------------------------

LINE = st.text(alphabet='ab,"\'中 \x85\u2028', max_size=18)
ENDING = st.sampled_from(["\n", "\r\n", "\r"])


@given(lines=st.lists(st.tuples(LINE, ENDING), max_size=40), last=LINE, encoding=st.sampled_from(["utf-8", "utf-16"]))
def test_lines_come_out_the_same_whatever_the_chunk_boundaries(lines, last, encoding):
    """Chunks of 40 characters cut lines, "\r\n" pairs and multi-byte characters anywhere."""
    text = "".join(line + ending for line, ending in lines) + last
    batches = csv_line_batches(io.BytesIO(text.encode(encoding)), encoding=encoding, max_bytes=10**6,
                               max_line_chars=19, chunk_chars=1)
    assert list(itertools.chain.from_iterable(batches)) == io.StringIO(text, newline="").readlines()


@pytest.mark.parametrize("ending", ["", "\n", "\r\n", "\r"])
def test_a_line_of_exactly_the_cap_is_read_and_one_more_character_is_refused(ending):
    ok = f"email\n{'a' * 30}{ending}"
    assert inspect(ok.encode(), max_line_chars=30).row_count == 1
    with pytest.raises(ImportFileError, match="Line 2 is longer than 30 characters"):
        inspect(f"email\n{'a' * 31}{ending}".encode(), max_line_chars=30)


def test_gbk_found_late_in_a_big_file_is_read_again_from_the_start():
    data = ("email,name\n" + "a@example.com,Ada\n" * 40_000 + "wang@example.com,王芳\n").encode("gbk")
    found = inspect(data, max_bytes=len(data), max_rows=50_000)
    assert (found.encoding, found.row_count, found.size) == ("gb18030", 40_001, len(data))


def test_binary_data_late_in_a_file_is_refused():
    with pytest.raises(ImportFileError, match="binary data"):
        inspect(b"email\n" + b"a@example.com\n" * 50_000 + b"\x00\x01\x02\n", max_rows=60_000)


def test_a_cell_neutralised_by_a_signalbox_csv_is_read_as_typed():
    _, records = csv_split_header(csv_records("email,name\na@example.com,'-Bob\nb@example.com,'Connor\n", ","))
    assert [r.cells for r in records] == [["a@example.com", "-Bob"], ["b@example.com", "'Connor"]]
