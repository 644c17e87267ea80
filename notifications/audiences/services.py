"""Writes to static audiences: add and remove members, import members from a CSV file."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Audience, AudienceMember
from ..services import audit_record

# A 5 MB file of addresses is ~150,000 rows; beyond that, split the file.
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 200_000
MAX_REPORTED_UNKNOWN = 100
# Keeps every ``IN (...)`` under SQLite's variable limit, and each statement small.
BATCH = 500
HEADER_NAMES = {"email", "e-mail", "email address", "username", "user", "login", "邮箱", "电子邮件", "用户名"}

T = TypeVar("T")


class AudienceNotStaticError(ValueError):
    """Members belong to static audiences; a rule audience's members come from its rules."""


class AudienceImportError(ValueError):
    """The uploaded file cannot be read as a list of users (size, encoding, CSV syntax)."""


def _batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _require_static(audience: Audience) -> None:
    if audience.kind != Audience.Kind.STATIC:
        raise AudienceNotStaticError(_("Only a static audience has members to add or remove."))


def _touch(audience: Audience) -> None:
    audience.updated_at = timezone.now()
    Audience.objects.filter(pk=audience.pk).update(updated_at=audience.updated_at)


def audience_members_add(*, audience: Audience, user_ids: Iterable[int], actor=None) -> int:
    """Add users to a static audience; returns how many were not members before.

    Unknown user ids are ignored and existing members are left alone, so re-importing the same
    list is harmless. Inserts are batched with ``ignore_conflicts`` on the unique
    (audience, user) pair, so a concurrent import of an overlapping list cannot fail either.
    """
    _require_static(audience)
    ids = sorted({int(pk) for pk in user_ids})
    users = get_user_model().objects
    added = 0
    with transaction.atomic():
        for batch in _batched(ids, BATCH):
            existing_users = set(users.filter(pk__in=batch).values_list("pk", flat=True))
            already = set(
                AudienceMember.objects.filter(audience=audience, user_id__in=batch).values_list("user_id", flat=True)
            )
            new = [
                AudienceMember(audience=audience, user_id=pk)
                for pk in batch
                if pk in existing_users and pk not in already
            ]
            AudienceMember.objects.bulk_create(new, ignore_conflicts=True)
            added += len(new)
        if added:
            _touch(audience)
            audit_record(actor=actor, action="audience.members_added", target=audience, changes={"added": added})
    return added


def audience_members_remove(*, audience: Audience, user_ids: Iterable[int], actor=None) -> int:
    """Remove users from a static audience; returns how many were members."""
    _require_static(audience)
    ids = sorted({int(pk) for pk in user_ids})
    removed = 0
    with transaction.atomic():
        for batch in _batched(ids, BATCH):
            removed += AudienceMember.objects.filter(audience=audience, user_id__in=batch).delete()[0]
        if removed:
            _touch(audience)
            audit_record(actor=actor, action="audience.members_removed", target=audience, changes={"removed": removed})
    return removed


@dataclass(frozen=True)
class AudienceImport:
    """What an upload did: rows read, users matched and newly added, and rows matching no one."""

    rows: int
    matched: int
    added: int
    unknown_count: int = 0
    unknown: list[str] = field(default_factory=list)  # the first MAX_REPORTED_UNKNOWN of them


def _decode(data: bytes) -> str:
    """UTF-8 (with or without the BOM Excel writes), else GB18030, the superset of GBK."""
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise AudienceImportError(_("The file is not UTF-8 or GBK text.")) from None


def _identifiers(text: str) -> tuple[int, list[str]]:
    """Rows -> (row count, distinct identifiers in file order).

    The identifier is the first column, or the column headed email/username when the first row
    is a header. Blank rows are skipped; a row is an email when it contains "@".
    """
    sample = text[:4096]
    dialect: type[csv.Dialect] = csv.excel
    if any(delimiter in sample for delimiter in ",;\t"):
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            pass  # one column with a stray comma: read it as plain CSV
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    column = 0
    rows = 0
    seen: dict[str, None] = {}
    try:
        for line_number, row in enumerate(reader):
            cells = [cell.strip() for cell in row]
            if line_number == 0:
                headers = [cell.lower() for cell in cells]
                named = [i for i, name in enumerate(headers) if name in HEADER_NAMES]
                if named:
                    column = named[0]
                    continue
            if not any(cells):
                continue
            rows += 1
            if rows > MAX_IMPORT_ROWS:
                raise AudienceImportError(_("The file has more than %(max)d rows.") % {"max": MAX_IMPORT_ROWS})
            value = cells[column] if column < len(cells) else ""
            if value:
                seen.setdefault(value, None)
    except csv.Error as exc:
        raise AudienceImportError(_("The file is not valid CSV (%(error)s).") % {"error": exc}) from None
    return rows, list(seen)


def _match_users(identifiers: list[str]) -> tuple[set[int], list[str]]:
    """Identifiers -> (matching user ids, identifiers that matched nobody).

    Emails match case-insensitively (every user with that address); usernames match exactly,
    as Django's login does.
    """
    users = get_user_model().objects
    emails = {value.lower() for value in identifiers if "@" in value}
    usernames = [value for value in identifiers if "@" not in value]
    ids: set[int] = set()
    found_emails: set[str] = set()
    found_usernames: set[str] = set()
    for batch in _batched(sorted(emails), BATCH):
        for pk, email in users.annotate(email_lower=Lower("email")).filter(email_lower__in=batch).values_list(
            "pk", "email_lower"
        ):
            ids.add(pk)
            found_emails.add(email)
    for batch in _batched(usernames, BATCH):
        for pk, username in users.filter(username__in=batch).values_list("pk", "username"):
            ids.add(pk)
            found_usernames.add(username)
    unknown = [
        value for value in identifiers
        if (value.lower() not in found_emails if "@" in value else value not in found_usernames)
    ]
    return ids, unknown


def audience_members_import_csv(*, audience: Audience, data: bytes, actor=None) -> AudienceImport:
    """Add the users listed in a CSV file (emails or usernames) to a static audience.

    The file is read whole (it is capped at ``MAX_IMPORT_BYTES``); rows that match no user are
    reported back rather than failing the import, so an operator can fix and re-upload them.
    """
    _require_static(audience)
    if len(data) > MAX_IMPORT_BYTES:
        raise AudienceImportError(
            _("The file is larger than %(max)d MB.") % {"max": MAX_IMPORT_BYTES // (1024 * 1024)}
        )
    text = _decode(data)
    if "\x00" in text:
        raise AudienceImportError(_("The file is not a text file."))
    rows, identifiers = _identifiers(text)
    ids, unknown = _match_users(identifiers)
    added = audience_members_add(audience=audience, user_ids=ids, actor=actor)
    return AudienceImport(
        rows=rows, matched=len(ids), added=added,
        unknown_count=len(unknown), unknown=unknown[:MAX_REPORTED_UNKNOWN],
    )
