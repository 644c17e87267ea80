"""What an import row may carry, and matching a file's headers to it (English and Chinese names).

A mapping is ``{field key: column index}``; an unmapped field is absent. Indexes rather than header
names, because headers may repeat or be blank.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class ImportField:
    key: str
    label: str
    help_text: str
    synonyms: tuple[str, ...]
    required: bool = False


FIELDS: tuple[ImportField, ...] = (
    ImportField(
        "email", _("Email"), _("Required. Matches existing users, ignoring upper/lower case."),
        ("email", "e-mail", "email address", "e-mail address", "mail", "emailaddress",
         "邮箱", "邮件", "电子邮件", "电子邮箱", "邮箱地址", "电子邮件地址", "电邮"),
        required=True,
    ),
    ImportField(
        "username", _("Username"), _("For new users; made from the email address when empty. Existing users keep theirs."),
        ("username", "user name", "user", "login", "login name", "user id", "userid",
         "用户名", "账号", "帐号", "账户", "帐户", "登录名", "用户"),
    ),
    ImportField(
        "first_name", _("First name"), _("Given name."),
        ("first name", "firstname", "given name", "givenname", "first", "forename", "名", "名字"),
    ),
    ImportField(
        "last_name", _("Last name"), _("Family name."),
        ("last name", "lastname", "surname", "family name", "familyname", "last", "姓", "姓氏"),
    ),
    ImportField(
        "full_name", _("Full name"),
        _("Split into first and last name: “Ada Lovelace” → Ada / Lovelace, “张伟” → 伟 / 张. "
          "Use it instead of first and last name."),
        ("name", "full name", "fullname", "display name", "contact name", "姓名", "全名", "联系人"),
    ),
    ImportField(
        "phone", _("Phone"), _("International form, e.g. +8613812345678 or +1 415 555 0123."),
        ("phone", "phone number", "mobile", "mobile phone", "mobile number", "cell", "cell phone", "cellphone",
         "tel", "telephone", "手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "移动电话"),
    ),
    ImportField(
        "timezone", _("Time zone"), _("An IANA name such as Asia/Shanghai or Europe/London."),
        ("timezone", "time zone", "tz", "zone", "时区"),
    ),
    ImportField(
        "locale", _("Language"), _("en or zh-hans (also English, 中文, zh-CN …)."),
        ("locale", "language", "lang", "language code", "语言", "语种", "区域设置"),
    ),
)
FIELDS_BY_KEY = {f.key: f for f in FIELDS}

_SEPARATORS = re.compile(r"[\s_\-.:/()（）：*]+")


def header_key(header: str) -> str:
    """``"E-Mail Address *"`` -> ``"emailaddress"``; full-width forms folded (NFKC), case ignored."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", header).casefold())


_SYNONYMS = {header_key(synonym): f.key for f in FIELDS for synonym in (f.key, *f.synonyms)}


def mapping_guess(headers: list[str]) -> dict[str, int]:
    """Auto-match headers to fields; the first column wins when two name the same field."""
    mapping: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = _SYNONYMS.get(header_key(header))
        if key and key not in mapping:
            mapping[key] = index
    if "full_name" in mapping and ("first_name" in mapping or "last_name" in mapping):
        del mapping["full_name"]  # separate name columns are the better source
    return mapping


def mapping_errors(mapping: dict[str, int], *, column_count: int) -> list[str]:
    """Why a mapping cannot be used (empty when it can)."""
    errors = []
    if "email" not in mapping:
        errors.append(gettext("Choose the column that holds the email address."))
    unknown = set(mapping) - FIELDS_BY_KEY.keys()
    if unknown:
        errors.append(gettext("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))})
    if any(not isinstance(index, int) or not 0 <= index < column_count for index in mapping.values()):
        errors.append(gettext("A chosen column is not in the file."))
    used: dict[int, str] = {}
    for key, index in mapping.items():
        if index in used and key in FIELDS_BY_KEY and used[index] in FIELDS_BY_KEY:
            errors.append(
                gettext("One column is chosen for both “%(a)s” and “%(b)s”.")
                % {"a": FIELDS_BY_KEY[used[index]].label, "b": FIELDS_BY_KEY[key].label}
            )
        used.setdefault(index, key)
    if "full_name" in mapping and ("first_name" in mapping or "last_name" in mapping):
        errors.append(gettext("Choose either a full name column or first/last name columns, not both."))
    return errors
