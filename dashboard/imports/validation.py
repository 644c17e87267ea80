"""One CSV record -> a clean row or the reasons it cannot be imported. No database access.

An empty cell means "no value": a new user gets the default (time zone UTC, language en, no
phone) and an existing user keeps what they have. Imports never blank out data.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from functools import cache

import phonenumbers
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext
from django.utils.translation import ngettext
from phonenumbers.phonemetadata import PhoneMetadata

from ..csvsafe import FORMULA_TRIGGERS, looks_like_formula
from .reading import SourceRow

NAME_MAX = 150
EMAIL_MAX = 254
USERNAME_MAX = 150
PROFILE_FIELDS = ("phone", "timezone", "locale")
# A strict subset of what Django's EmailValidator accepts (plain ASCII addresses), checked with one
# regular expression; anything else (IDN domains, quoted local parts) goes through Django's.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_PHONE_PUNCTUATION = re.compile(r"[\s\-.()/]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_MAYBE_FORMULA = frozenset((*FORMULA_TRIGGERS, " "))  # looks_like_formula skips leading spaces
_email_validator = EmailValidator()
_username_validator = UnicodeUsernameValidator()
# Two-character Chinese family names; the rest are one character.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 令狐 夏侯 轩辕 端木 独孤 南宫 西门 "
    "百里 呼延 澹台 东郭 闻人 赫连 万俟 申屠 太史 钟离 濮阳 淳于 单于 公冶 羊舌 微生 梁丘 左丘 第五".split()
)
LOCALE_ALIASES = {
    **dict.fromkeys(("en", "en-us", "en-gb", "en-au", "en-ca", "english", "英文", "英语"), "en"),
    **dict.fromkeys(
        ("zh-hans", "zh", "zh-cn", "zh-sg", "zh-hans-cn", "chinese", "中文", "简体中文", "简体", "汉语", "普通话"),
        "zh-hans",
    ),
}


@cache
def _timezones() -> dict[str, str]:
    """Case-folded IANA name -> the name itself (``asia/shanghai`` is read as ``Asia/Shanghai``)."""
    names = zoneinfo.available_timezones()
    return {**{name.casefold(): name for name in names}, **{name: name for name in names}}


@dataclass(slots=True)
class CleanRow:
    """A row that can be imported. ``None`` means the file gave no value for that field."""

    line: int
    email: str
    email_key: str  # lower case: what existing users are matched on
    username: str  # "" when the file gave none (one is made up for new users)
    first_name: str | None
    last_name: str | None
    phone: str | None
    timezone: str | None
    locale: str | None
    # The free-text fields whose value a spreadsheet would read as a formula (``=…``, ``-…``): they
    # are imported as typed, and the preview shows them. Phone, time zone and language are checked
    # against strict formats (an E.164 number's leading "+" is its form, not a formula).
    formula_fields: tuple[str, ...] = ()


@dataclass(slots=True)
class RowProblem:
    """A row that will not be imported, why, and its cells as they were in the file."""

    line: int
    reason: str
    cells: list[str]


def clean_email(value: str) -> str:
    """The address as stored: the domain in lower case, the local part as given."""
    if len(value) > EMAIL_MAX:
        raise ValueError(gettext("email address “%(value)s…” is longer than %(max)d characters") % {
            "value": value[:40], "max": EMAIL_MAX})
    if not _PLAIN_EMAIL.fullmatch(value):
        try:
            _email_validator(value)
        except ValidationError:
            raise ValueError(gettext("“%(value)s” is not a valid email address") % {"value": value}) from None
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_phone(value: str, region: str | None) -> str:
    """Any common way of writing a number -> E.164, checked against the numbering plan of its country.

    Without a default region only international numbers (``+86 138 …``, ``0086 138 …``) are
    accepted: a national number cannot be told apart between countries.
    """
    compact = _PHONE_PUNCTUATION.sub("", value)
    if compact.startswith("00") and region is None:
        compact = "+" + compact[2:]
    if region is None and not compact.startswith("+"):
        raise ValueError(
            gettext("phone “%(value)s” needs its country code, e.g. +86 138 0013 8000") % {"value": value}
        )
    if _E164.fullmatch(compact) and _e164_is_valid(compact):
        return compact
    try:
        number = phonenumbers.parse(compact if _E164.fullmatch(compact) else value, region)
    except phonenumbers.NumberParseException:
        raise ValueError(gettext("“%(value)s” is not a phone number") % {"value": value}) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(
            gettext("phone “%(value)s” is not a valid number for country code +%(code)d")
            % {"value": value, "code": number.country_code}
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- phonenumbers' validity check, precompiled ----------------------------------------------------
# ``phonenumbers.parse`` + ``is_valid_number`` cost ~50 µs a number (a dozen uncompiled-pattern
# lookups and layers of calls), a third of the import's whole budget. For input already written
# as ``+<digits>`` the same rules are applied here from the same metadata, with the patterns
# compiled once per region. It only ever answers "valid, and parse would give exactly this
# E.164"; anything else (a national prefix after the country code, an invalid number) goes the
# slow way, so the result and the error messages are the library's own.
# ``tests/dashboard/test_import_validation.py`` checks the equivalence on numbers of every region.


def _compile_desc(desc) -> tuple[frozenset | None, re.Pattern] | None:
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = frozenset(desc.possible_length) if len(desc.possible_length) else None
    return lengths, re.compile(desc.national_number_pattern)


def _desc_matches(nsn: str, rule) -> bool:
    if rule is None:
        return False
    lengths, pattern = rule
    if lengths is not None and len(nsn) not in lengths:
        return False
    return pattern.fullmatch(nsn) is not None


_TYPE_DESCS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
               "voicemail", "fixed_line", "mobile")


class _RegionRules:
    """One region's validity rules: its general pattern and, per number length, one regex that is
    the alternation of every number type's pattern allowing that length."""

    def __init__(self, metadata):
        self.general = _compile_desc(metadata.general_desc)
        self.types = [rule for name in _TYPE_DESCS if (rule := _compile_desc(getattr(metadata, name))) is not None]
        self.leading_digits = re.compile(metadata.leading_digits) if metadata.leading_digits else None
        self.by_length: dict[int, re.Pattern | None] = {}

    def valid(self, nsn: str) -> bool:
        if not _desc_matches(nsn, self.general):
            return False
        size = len(nsn)
        try:
            combined = self.by_length[size]
        except KeyError:
            patterns = [p.pattern for lengths, p in self.types if lengths is None or size in lengths]
            combined = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None
            self.by_length[size] = combined
        return combined is not None and combined.fullmatch(nsn) is not None


@cache
def _region_rules(region: str, country_code: int) -> _RegionRules | None:
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    return _RegionRules(metadata) if metadata is not None else None


@cache
def _national_prefix(country_code: int) -> re.Pattern | None:
    """What ``parse`` would try to strip after the country code (in the main region's metadata)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[country_code]
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(prefix) if prefix else None


def _e164_is_valid(e164: str) -> bool:
    digits = e164[1:]
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False
    nsn = digits[size:]
    prefix = _national_prefix(country_code)
    if prefix is not None and prefix.match(nsn):
        return False  # parse may strip a national prefix here: let the library decide
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[country_code]
    if len(regions) == 1:
        rules = _region_rules(regions[0], country_code)
        return rules is not None and rules.valid(nsn)
    for region in regions:  # as phonenumbers' region_code_for_number picks the region
        rules = _region_rules(region, country_code)
        if rules is None:
            continue
        if rules.leading_digits is not None:
            if rules.leading_digits.match(nsn):
                return rules.valid(nsn)
        elif rules.valid(nsn):
            return True
    return False


def clean_timezone(value: str) -> str:
    zones = _timezones()
    name = zones.get(value) or zones.get(value.casefold())
    if name is None:
        raise ValueError(gettext("unknown time zone “%(value)s” (use a name like Asia/Shanghai)") % {"value": value})
    return name


def clean_locale(value: str) -> str:
    locale = LOCALE_ALIASES.get(value.casefold().replace("_", "-"))
    if locale is None:
        raise ValueError(gettext("unknown language “%(value)s” (use en or zh-hans)") % {"value": value})
    return locale


def clean_username(value: str) -> str:
    if len(value) > USERNAME_MAX:
        raise ValueError(gettext("username is longer than %(max)d characters") % {"max": USERNAME_MAX})
    try:
        _username_validator(value)
    except ValidationError:
        raise ValueError(
            gettext("username “%(value)s” may only contain letters, digits and @ . + - _") % {"value": value}
        ) from None
    return value


def split_full_name(value: str) -> tuple[str, str]:
    """A full name -> (first name, last name).

    Chinese names put the family name first (“张伟” → 伟 / 张, “欧阳娜娜” → 娜娜 / 欧阳); other
    names put it last (“Ada King Lovelace” → Ada King / Lovelace). One word is a first name.
    """
    parts = value.split()
    if _CJK.search(value) and not _LATIN.search(value):
        joined = "".join(parts)
        if len(parts) > 1:
            return "".join(parts[1:]), parts[0]
        if len(joined) < 2:
            return joined, ""
        surname = 2 if joined[:2] in COMPOUND_SURNAMES and len(joined) > 2 else 1
        return joined[surname:], joined[:surname]
    if len(parts) < 2:
        return value, ""
    return " ".join(parts[:-1]), parts[-1]


class RowValidator:
    """Validates records one by one and remembers what it saw, to flag duplicates within the file."""

    def __init__(self, mapping: dict[str, int], *, column_count: int, phone_region: str | None):
        self.mapping = mapping
        self.column_count = column_count
        self.phone_region = phone_region
        self.indexes = tuple(mapping.get(key) for key in (
            "email", "username", "full_name", "first_name", "last_name", "phone", "timezone", "locale"))
        self.seen_emails: dict[str, int] = {}
        self.seen_usernames: dict[str, int] = {}

    def validate(self, record: SourceRow) -> CleanRow | RowProblem:
        cells = record.cells
        if cells is None:
            return RowProblem(record.line, record.error, [])
        count = len(cells)
        if count != self.column_count and not (count > self.column_count and not any(cells[self.column_count:])):
            return RowProblem(
                record.line,
                ngettext(
                    "has %(count)d value but the header has %(columns)d columns",
                    "has %(count)d values but the header has %(columns)d columns",
                    count,
                ) % {"count": count, "columns": self.column_count},
                cells,
            )
        if record.end_line > record.line and any("\n" in cells[i] for i in self.mapping.values()):
            return RowProblem(
                record.line,
                gettext("a value runs from line %(start)d to line %(end)d; is a quote not closed?")
                % {"start": record.line, "end": record.end_line},
                cells,
            )
        reasons: list[str] = []
        email_at, username_at, full_name_at, first_name_at, last_name_at, phone_at, timezone_at, locale_at = (
            self.indexes
        )

        email = email_key = ""
        raw_email = cells[email_at]
        if not raw_email:
            reasons.append(gettext("email address is missing"))
        else:
            try:
                email = clean_email(raw_email)
                email_key = email.lower()
            except ValueError as exc:
                reasons.append(str(exc))
        if email_key:
            first_line = self.seen_emails.setdefault(email_key, record.line)
            if first_line != record.line:
                reasons.append(gettext("duplicate of line %(line)d (same email address)") % {"line": first_line})

        username = cells[username_at] if username_at is not None else ""
        if username:
            try:
                clean_username(username)
            except ValueError as exc:
                reasons.append(str(exc))
                username = ""
            else:
                first_line = self.seen_usernames.setdefault(username, record.line)
                if first_line != record.line:
                    reasons.append(gettext("duplicate of line %(line)d (same username)") % {"line": first_line})

        first_name = last_name = None
        if full_name_at is not None:
            if full := cells[full_name_at]:
                first_name, last_name = split_full_name(full)
        else:
            first_name = (cells[first_name_at] if first_name_at is not None else "") or None
            last_name = (cells[last_name_at] if last_name_at is not None else "") or None
        if first_name and len(first_name) > NAME_MAX:
            reasons.append(gettext("first name is longer than %(max)d characters") % {"max": NAME_MAX})
        if last_name and len(last_name) > NAME_MAX:
            reasons.append(gettext("last name is longer than %(max)d characters") % {"max": NAME_MAX})

        phone = timezone = locale = None
        if phone_at is not None and (raw := cells[phone_at]):
            try:
                phone = clean_phone(raw, self.phone_region)
            except ValueError as exc:
                reasons.append(str(exc))
        if timezone_at is not None and (raw := cells[timezone_at]):
            try:
                timezone = clean_timezone(raw)
            except ValueError as exc:
                reasons.append(str(exc))
        if locale_at is not None and (raw := cells[locale_at]):
            try:
                locale = clean_locale(raw)
            except ValueError as exc:
                reasons.append(str(exc))

        if reasons:
            return RowProblem(record.line, "; ".join(reasons), cells)
        formula_fields = ()
        # A cheap look at first characters (a superset of what can look like a formula) spares the
        # exact check on almost every row.
        if (email[:1] in _MAYBE_FORMULA or username[:1] in _MAYBE_FORMULA
                or (first_name or "")[:1] in _MAYBE_FORMULA or (last_name or "")[:1] in _MAYBE_FORMULA):
            free_text = (("email", email), ("username", username), ("first_name", first_name), ("last_name", last_name))
            formula_fields = tuple(name for name, value in free_text if value and looks_like_formula(value))
        return CleanRow(
            line=record.line, email=email, email_key=email_key, username=username,
            first_name=first_name, last_name=last_name, phone=phone, timezone=timezone, locale=locale,
            formula_fields=formula_fields,
        )
