"""The import itself: check every row against the file and the database, then write in bulk.

Two phases, so that "all or nothing" and "a failed import leaves the database unchanged" hold:

1. :meth:`UserImport.check` reads the file in chunks. Per chunk it validates the rows (pure
   Python), finds the existing users by email in **one** query and the taken usernames in one
   more, and sorts each row into new / update / unchanged / invalid. It writes nothing, so it is
   also the dry run the preview shows. Progress is reported per chunk.
2. :meth:`UserImport.write` applies a checked plan inside **one** transaction, in batches of
   multi-row statements (``executemany``; ``COPY`` on PostgreSQL; see :mod:`.bulk`): any error
   rolls every row back. Like ``bulk_create``, no ``post_save`` is sent, so "user signed up"
   triggers do not fire for imported users.

Existing staff accounts are never changed by an import (their rows are reported as invalid), and
users that someone else created between the check and the write stop the import.

Rows are matched to users by email, ignoring case. The auth user table has no index on the email,
so each chunk's lookup is one scan; chunks are large to keep the scans few.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, islice
from operator import attrgetter
from typing import TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Max
from django.db.models.functions import Lower
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext

from notifications.models import RecipientProfile

from .bulk import InQuery, db_values, insert_many, update_many
from .plan import DEFAULT_LOCALE, DEFAULT_TIMEZONE, ImportPlan, ImportResult, UserUpdate
from .reading import SourceRow, csv_records, csv_split_header
from .validation import CleanRow, RowProblem, RowValidator

T = TypeVar("T")

CHUNK_ROWS = 10_000
CHUNK_CHARS = 2_000_000
CHUNK_STEP = 64
WRITE_BATCH = 2_000
_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


def _batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_line = attrgetter("line")
_cells = attrgetter("cells")


def _chunks(records: Iterator[SourceRow], size: int, max_chars: int = CHUNK_CHARS) -> Iterator[list[SourceRow]]:
    """Lists of ``size`` records, or fewer once their cells hold ``max_chars`` characters (wide rows).

    Counted a few records at a time, in C: memory follows the chunk, never the width of the rows.
    """
    chunk: list[SourceRow] = []
    chars = 0
    while step := list(islice(records, min(CHUNK_STEP, size - len(chunk)))):
        chunk += step
        chars += sum(map(len, chain.from_iterable(filter(None, map(_cells, step)))))
        if len(chunk) >= size or chars >= max_chars:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


class ImportConflictError(RuntimeError):
    """The database changed between the check and the write in a way that makes the plan wrong."""


class UserImport:
    """Imports users from CSV text with a column mapping (see the module docstring)."""

    def __init__(
        self, *, mapping: dict[str, int], records: Iterator[SourceRow] | None = None, text: str = "",
        delimiter: str = ",", phone_region: str | None = None, progress: Callable[[int], None] | None = None,
        chunk_rows: int = CHUNK_ROWS,
    ):
        """Read ``records`` (streamed from a file: see ``reading.csv_open_records``), else CSV ``text``."""
        self.records = records if records is not None else csv_records(text, delimiter)
        self.mapping = mapping
        self.phone_region = phone_region
        self.progress = progress
        self.chunk_rows = chunk_rows
        self.User = get_user_model()
        users = self.User.objects
        self._users_by_email = InQuery(lambda keys: users.annotate(email_key=Lower("email")).filter(
            email_key__in=keys).values_list(
                "email_key", "pk", "first_name", "last_name", "recipient_profile__pk",
                "recipient_profile__phone", "recipient_profile__timezone", "recipient_profile__locale",
                "is_staff", "is_superuser"))
        self._usernames_taken = InQuery(
            lambda names: users.filter(username__in=names).values_list("username"))
        self._user_ids_by_username = InQuery(
            lambda names: users.filter(username__in=names).values_list("username", "pk"))

    # --- phase 1 -------------------------------------------------------------------------------

    def check(self, *, after_chunk: Callable[[ImportPlan], None] | None = None) -> ImportPlan:
        """Sort every row into the plan. ``after_chunk`` sees the plan after each chunk, its problems
        in line order; a dry run takes the rows out there (counts, samples), so they are not all kept."""
        header, records = csv_split_header(self.records)
        plan = ImportPlan(headers=header.cells)
        plan.user_id_watermark = self.User.objects.aggregate(last=Max("pk"))["last"] or 0
        validator = RowValidator(self.mapping, column_count=len(header.cells), phone_region=self.phone_region)
        self._assigned_usernames: set[str] = set()
        for chunk in _chunks(records, self.chunk_rows):
            clean: list[CleanRow] = []
            for record in chunk:
                outcome = validator.validate(record)
                if type(outcome) is CleanRow:
                    clean.append(outcome)
                else:
                    plan.problems.append(outcome)
            self._classify(clean, plan, cells_by_line={record.line: record.cells for record in chunk})
            plan.total += len(chunk)
            if after_chunk is not None:
                plan.problems.sort(key=_line)
                after_chunk(plan)
            if self.progress is not None:
                self.progress(plan.total)
            del chunk, clean, record, outcome  # one chunk in memory at a time, not this one and the next
        plan.problems.sort(key=_line)
        return plan

    def _classify(self, rows: list[CleanRow], plan: ImportPlan, *, cells_by_line: dict[int, list[str] | None]) -> None:
        if not rows:
            return
        existing: dict[str, list[tuple]] = {}
        for found in self._users_by_email([row.email_key for row in rows]):
            existing.setdefault(found[0], []).append(found[1:])

        new_rows: list[CleanRow] = []
        for row in rows:
            matches = existing.get(row.email_key)
            if matches is None:
                new_rows.append(row)
            elif len(matches) > 1:
                plan.problems.append(RowProblem(
                    row.line,
                    gettext("%(count)d existing users have the email address %(email)s; merge them first")
                    % {"count": len(matches), "email": row.email},
                    cells_by_line[row.line] or [],
                ))
            else:
                update = self._diff(row, matches[0])
                if update is None:
                    plan.unchanged_user_ids.append(matches[0][0])
                elif any(matches[0][-2:]):  # is_staff, is_superuser
                    plan.problems.append(RowProblem(
                        row.line,
                        gettext("%(email)s is a staff account: imports do not change staff accounts; "
                                "edit it in the admin")
                        % {"email": row.email},
                        cells_by_line[row.line] or [],
                    ))
                else:
                    plan.updates.append(update)
        self._assign_usernames(new_rows, plan, cells_by_line)

    @staticmethod
    def _diff(row: CleanRow, current: tuple) -> UserUpdate | None:
        user_id, first_name, last_name, profile_id, phone, tz, locale, _is_staff, _is_superuser = current
        changes: dict[str, list[str]] = {}
        wanted = {"first_name": (row.first_name, first_name), "last_name": (row.last_name, last_name)}
        for name, (new, old) in wanted.items():
            if new is not None and new != old:
                changes[name] = [old, new]
        user_changed = bool(changes)
        if profile_id is None:
            profile_changed = any(value is not None for value in (row.phone, row.timezone, row.locale))
            phone, tz, locale = "", DEFAULT_TIMEZONE, DEFAULT_LOCALE
            old_values = {"phone": "", "timezone": "", "locale": ""}
        else:
            old_values = {"phone": phone, "timezone": tz, "locale": locale}
            profile_changed = False
        for name, new in (("phone", row.phone), ("timezone", row.timezone), ("locale", row.locale)):
            if new is not None and (profile_id is None or new != old_values[name]):
                changes[name] = [old_values[name], new]
                profile_changed = True
        if not (user_changed or profile_changed):
            return None
        return UserUpdate(
            line=row.line, user_id=user_id, email=row.email,
            first_name=row.first_name if row.first_name is not None else first_name,
            last_name=row.last_name if row.last_name is not None else last_name,
            profile_id=profile_id,
            phone=row.phone if row.phone is not None else phone,
            timezone=row.timezone if row.timezone is not None else tz,
            locale=row.locale if row.locale is not None else locale,
            user_changed=user_changed, profile_changed=profile_changed, changes=changes,
        )

    def _assign_usernames(self, rows: list[CleanRow], plan: ImportPlan, cells_by_line) -> None:
        """Give each new user a free username: the one in the file, else one made from the email.

        Made-up names try the email's local part, then the whole address, then the local part
        with a short hash of the address; every round of candidates is checked in one query.
        """
        if not rows:
            return
        assigned = self._assigned_usernames
        given = [row for row in rows if row.username]
        taken = {username for (username,) in self._usernames_taken([row.username for row in given])}
        for row in given:
            if row.username in taken:
                reason = gettext("username “%(username)s” already belongs to another user") % {"username": row.username}
            elif row.username in assigned:
                reason = gettext("username “%(username)s” was already given to a user made from an earlier line") % {
                    "username": row.username}
            else:
                assigned.add(row.username)
                plan.new.append(row)
                continue
            plan.problems.append(RowProblem(row.line, reason, cells_by_line[row.line] or []))

        pending = [row for row in rows if not row.username]
        for round_number in range(4):
            if not pending:
                break
            candidates = {id(row): _username_candidate(row.email_key, round_number) for row in pending}
            taken = {username for (username,) in self._usernames_taken(list(set(candidates.values())))}
            still_pending = []
            for row in pending:
                candidate = candidates[id(row)]
                if candidate in taken or candidate in assigned:
                    still_pending.append(row)
                else:
                    assigned.add(candidate)
                    row.username = candidate
                    plan.new.append(row)
            pending = still_pending
        for row in pending:  # four rounds of clashes: practically never
            plan.problems.append(RowProblem(
                row.line, gettext("no free username could be made from %(email)s; give one in the file")
                % {"email": row.email}, cells_by_line[row.line] or [],
            ))
        plan.new.sort(key=lambda row: row.line)

    # --- phase 2 -------------------------------------------------------------------------------

    def write(self, plan: ImportPlan, *, audience=None, actor=None) -> ImportResult:
        """Apply the plan in one transaction: every row, or (on any error) none."""
        from notifications.audiences import audience_members_add

        audience_added = 0
        with transaction.atomic():
            self._refuse_users_created_since_check(plan)
            new_ids: list[int] = []
            for batch in _batched(plan.new, WRITE_BATCH):
                new_ids.extend(self._create_users(batch))
            for batch in _batched(plan.updates, WRITE_BATCH):
                self._update_users(batch)
            if audience is not None:
                member_ids = [*new_ids, *(update.user_id for update in plan.updates), *plan.unchanged_user_ids]
                audience_added = audience_members_add(audience=audience, user_ids=member_ids, actor=actor)
        return ImportResult(
            new=len(plan.new), updated=len(plan.updates), unchanged=len(plan.unchanged_user_ids),
            invalid=len(plan.problems), audience_added=audience_added, new_ids=tuple(new_ids),
        )

    def _refuse_users_created_since_check(self, plan: ImportPlan) -> None:
        """Someone else created some of "our" new users between the check and now: stop.

        The email address has no unique constraint, so this is what keeps a concurrent import or a
        hand-made user from becoming a duplicate. Users created since the check have higher ids
        than the check saw (one indexed range query). It runs inside the writing transaction: on
        SQLite writers are serialised from here on; on PostgreSQL a concurrent transaction that
        drew a lower id but commits later slips past, and the username constraint is the backstop.
        """
        if not plan.new:
            return
        recent = set(
            self.User.objects.filter(pk__gt=plan.user_id_watermark)
            .annotate(email_key=Lower("email")).values_list("email_key", flat=True)
        )
        clashes = sorted(recent.intersection(row.email_key for row in plan.new))
        if clashes:
            raise ImportConflictError(
                gettext("%(count)d of the new users were created by someone else while this import was being "
                        "checked (%(examples)s). Nothing was imported; import the file again.")
                % {"count": len(clashes), "examples": ", ".join(clashes[:3])}
            )

    def _create_users(self, rows: Sequence[CleanRow]) -> list[int]:
        """Insert one batch of new users and their profiles; returns the users' ids in row order."""
        User = self.User
        now = dj_timezone.now()
        user_constants = db_values(User, password=_unusable_password(), is_superuser=False, is_staff=False,
                                    is_active=True, date_joined=now)
        insert_many(
            User, ["username", "email", "first_name", "last_name", *user_constants],
            [(row.username, row.email, row.first_name or "", row.last_name or "", *user_constants.values())
             for row in rows],
        )
        ids_by_username = dict(self._user_ids_by_username([row.username for row in rows]))
        ids = [ids_by_username[row.username] for row in rows]
        profile_constants = db_values(RecipientProfile, chat_ids={}, created_at=now, updated_at=now)
        insert_many(
            RecipientProfile, ["user", "phone", "timezone", "locale", *profile_constants],
            [(user_id, row.phone or "", row.timezone or DEFAULT_TIMEZONE, row.locale or DEFAULT_LOCALE,
              *profile_constants.values())
             for user_id, row in zip(ids, rows, strict=True)],
        )
        return ids

    def _update_users(self, updates: Sequence[UserUpdate]) -> None:
        now = dj_timezone.now()
        update_many(
            self.User, ["first_name", "last_name"],
            [(u.first_name, u.last_name, u.user_id) for u in updates if u.user_changed],
        )
        (updated_at,) = db_values(RecipientProfile, updated_at=now).values()
        update_many(
            RecipientProfile, ["phone", "timezone", "locale", "updated_at"],
            [(u.phone, u.timezone, u.locale, updated_at, u.profile_id)
             for u in updates if u.profile_changed and u.profile_id is not None],
        )
        profile_constants = db_values(RecipientProfile, chat_ids={}, created_at=now, updated_at=now)
        insert_many(
            RecipientProfile, ["user", "phone", "timezone", "locale", *profile_constants],
            [(u.user_id, u.phone, u.timezone, u.locale, *profile_constants.values())
             for u in updates if u.profile_changed and u.profile_id is None],
        )


_UNUSABLE_PASSWORD: list[str] = []


def _unusable_password() -> str:
    """One unusable hash for every imported user: they set a password through a reset link."""
    if not _UNUSABLE_PASSWORD:
        _UNUSABLE_PASSWORD.append(make_password(None))
    return _UNUSABLE_PASSWORD[0]


def _username_candidate(email_key: str, round_number: int) -> str:
    local = _USERNAME_UNSAFE.sub("", email_key.rpartition("@")[0]) or "user"
    if round_number == 0:
        return local[:150]
    if round_number == 1:
        return _USERNAME_UNSAFE.sub("", email_key)[:150]
    digest = hashlib.sha1(email_key.encode()).hexdigest()[: 4 * round_number]
    return f"{local[: 149 - len(digest)]}-{digest}"
