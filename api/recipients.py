"""Recipients through the API: finding users by id / external id / email, and upserting them.

Upserts are checked by the CSV import's own field rules (``dashboard.imports.validation``:
addresses, phone numbers to E.164, time zone names) and written as the import writes: matched in
two queries and written with multi-row statements (``dashboard.imports.bulk``), whatever the
number of recipients. Like the import, they send no model signals. A bad value refuses the whole
call (``UpsertRefused`` naming each item and field) and nothing is saved.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext as _

from dashboard.imports.bulk import db_values, insert_many, update_many
from dashboard.imports.plan import DEFAULT_LOCALE, DEFAULT_TIMEZONE
from dashboard.imports.validation import clean_email, clean_phone, clean_timezone
from notifications.models import RecipientProfile

from .models import ExternalId


@dataclass(frozen=True)
class RecipientRef:
    """How the caller names a recipient: exactly one of these."""

    id: int | None = None
    external_id: str | None = None
    email: str | None = None


def recipients_resolve(refs: list[RecipientRef]) -> tuple[list[int], list[int]]:
    """The user ids ``refs`` name (in order, without repeats), and the positions of refs that name
    nobody. Three queries at most, whatever the number of refs."""
    User = get_user_model()
    by_id = {r.id for r in refs if r.id is not None}
    by_external = {r.external_id for r in refs if r.external_id is not None}
    by_email = {r.email.strip().lower() for r in refs if r.email is not None}
    known_ids = set(User._default_manager.filter(pk__in=by_id, is_active=True).values_list("pk", flat=True)) if by_id else set()
    externals = dict(
        ExternalId.objects.filter(external_id__in=by_external, user__is_active=True).values_list("external_id", "user_id")
    ) if by_external else {}
    emails: dict[str, int] = {}
    if by_email:
        for email, pk in (User._default_manager.annotate(email_key=Lower("email"))
                          .filter(email_key__in=by_email, is_active=True).order_by("pk").values_list("email_key", "pk")):
            emails.setdefault(email, pk)  # two accounts with one address: the oldest
    ids: list[int] = []
    missing: list[int] = []
    for position, ref in enumerate(refs):
        if ref.id is not None:
            pk = ref.id if ref.id in known_ids else None
        elif ref.external_id is not None:
            pk = externals.get(ref.external_id)
        else:
            pk = emails.get((ref.email or "").strip().lower())
        if pk is None:
            missing.append(position)
        elif pk not in ids:
            ids.append(pk)
    return ids, missing


@dataclass(frozen=True)
class Upserted:
    user_id: int
    created: bool


class UpsertRefused(Exception):
    """Some items cannot be saved: ``errors`` holds (position, field, message); nothing was saved."""

    def __init__(self, errors: list[tuple[int, str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass
class _Item:
    """One cleaned item; ``None`` means the call did not give that field (it is left as it is)."""

    position: int
    external_id: str | None
    email: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    timezone: str | None
    locale: str | None
    chat_ids: dict | None

    @property
    def email_key(self) -> str | None:
        return self.email.lower() if self.email else None


# What an existing user's row holds, read in the two matching queries.
_CURRENT = ("pk", "email", "first_name", "last_name", "is_staff", "is_superuser", "recipient_profile__pk",
            "recipient_profile__phone", "recipient_profile__timezone", "recipient_profile__locale",
            "recipient_profile__chat_ids", "api_external_id__pk", "api_external_id__external_id")


@dataclass
class _Current:
    pk: int
    email: str
    first_name: str
    last_name: str
    is_staff: bool
    is_superuser: bool
    profile_id: int | None
    phone: str | None
    timezone: str | None
    locale: str | None
    chat_ids: dict | None
    external_pk: int | None
    external_id: str | None


def _clean(items: list[dict]) -> tuple[list[_Item], list[tuple[int, str, str]]]:
    """The CSV import's field rules, and one item per recipient (two naming one are refused)."""
    cleaned: list[_Item] = []
    errors: list[tuple[int, str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for position, data in enumerate(items):
        item = _Item(position, data.get("external_id") or None, None, data.get("first_name"), data.get("last_name"),
                     None, None, data.get("locale"), data.get("chat_ids"))
        email = (data.get("email") or "").strip()
        if not item.external_id and not email:
            errors.append((position, "external_id", _("Give an external_id or an email.")))
        for name, value, check in (("email", email, clean_email), ("phone", data.get("phone"), clean_phone),
                                   ("timezone", data.get("timezone"), clean_timezone)):
            if not value:
                continue
            try:
                setattr(item, name, check(value, None) if check is clean_phone else check(value))
            except ValueError as exc:
                errors.append((position, name, str(exc)))
        for name, key in (("external_id", item.external_id), ("email", item.email_key)):
            if key and (first := seen.setdefault((name, key), position)) != position:
                errors.append((position, name, _("Item %(position)d of this call names this recipient too.")
                               % {"position": first}))
        cleaned.append(item)
    return cleaned, errors


def recipients_upsert(*, items: list[dict]) -> list[Upserted]:
    """Create or update recipients, one per item, in one transaction. Each is found by
    ``external_id`` first, else by ``email`` (case ignored; of two accounts with one address, the
    oldest); made when neither finds one (a user with no usable password, who can be invited
    later). Only the fields an item gives change. Staff accounts are refused, as the CSV import
    refuses them: a new email there would receive that account's password reset. Raises
    ``UpsertRefused``. A constant number of queries however many items (about a dozen)."""
    cleaned, errors = _clean(items)
    if errors:
        raise UpsertRefused(errors)
    try:
        with transaction.atomic():
            return _upsert(cleaned)
    except IntegrityError:
        # A concurrent upsert made one of these external ids or usernames first: match again.
        with transaction.atomic():
            return _upsert(cleaned)


def recipient_upsert(*, data: dict) -> Upserted:
    """One recipient: ``recipients_upsert`` of one item."""
    return recipients_upsert(items=[data])[0]


def _upsert(items: list[_Item]) -> list[Upserted]:
    User = get_user_model()
    externals = [item.external_id for item in items if item.external_id]
    by_external = {
        row[-1]: _Current(*row)
        for row in User._default_manager.filter(api_external_id__external_id__in=externals).values_list(*_CURRENT)
    } if externals else {}
    emails = [item.email_key for item in items if item.email_key and item.external_id not in by_external]
    by_email: dict[str, _Current] = {}
    if emails:
        for email_key, *row in (User._default_manager.annotate(email_key=Lower("email"))
                                .filter(email_key__in=emails).order_by("pk").values_list("email_key", *_CURRENT)):
            by_email.setdefault(email_key, _Current(*row))  # two accounts with one address: the oldest

    errors: list[tuple[int, str, str]] = []
    claimed: dict[int, int] = {}
    matches: list[tuple[_Item, _Current | None]] = []
    for item in items:
        current, found_by = by_external.get(item.external_id), "external_id"
        if current is None and item.email_key:
            current, found_by = by_email.get(item.email_key), "email"
        if current is not None:
            if current.is_staff or current.is_superuser:
                errors.append((item.position, found_by, _("This is a staff account: the API does not change staff "
                                                          "accounts; edit it in the admin.")))
            elif (first := claimed.setdefault(current.pk, item.position)) != item.position:
                errors.append((item.position, found_by, _("Item %(position)d of this call names this recipient too.")
                               % {"position": first}))
        matches.append((item, current))
    if errors:
        raise UpsertRefused(errors)

    now = dj_timezone.now()
    created_ids = _create([item for item, current in matches if current is None], now=now)
    _update([(item, current) for item, current in matches if current is not None], now=now)
    return [Upserted(user_id=current.pk, created=False) if current is not None
            else Upserted(user_id=created_ids[item.position], created=True) for item, current in matches]


def _json(value) -> object:
    return RecipientProfile._meta.get_field("chat_ids").get_db_prep_save(value, connection)


def _create(items: list[_Item], *, now) -> dict[int, int]:
    """New users, their profiles and external ids, in three multi-row INSERTs; item position -> user id."""
    if not items:
        return {}
    User = get_user_model()
    usernames = {item.position: f"{(item.external_id or item.email.partition('@')[0] or 'user')[:100]}-"
                                f"{secrets.token_hex(4)}" for item in items}
    constants = db_values(User, password=make_password(None), is_superuser=False, is_staff=False, is_active=True,
                          date_joined=now)
    insert_many(User, ["username", "email", "first_name", "last_name", *constants], [
        (usernames[item.position], item.email or "", item.first_name or "", item.last_name or "", *constants.values())
        for item in items])
    ids_by_username = dict(User._default_manager.filter(username__in=list(usernames.values()))
                           .values_list("username", "pk"))
    ids = {item.position: ids_by_username[usernames[item.position]] for item in items}
    stamps = db_values(RecipientProfile, created_at=now, updated_at=now)
    insert_many(RecipientProfile, ["user", "phone", "timezone", "locale", "chat_ids", *stamps], [
        (ids[item.position], item.phone or "", item.timezone or DEFAULT_TIMEZONE, item.locale or DEFAULT_LOCALE,
         _json(item.chat_ids or {}), *stamps.values()) for item in items])
    insert_many(ExternalId, ["user", "external_id"],
                [(ids[item.position], item.external_id) for item in items if item.external_id])
    return ids


def _update(pairs: list[tuple[_Item, _Current]], *, now) -> None:
    """Existing users: only what an item gives and differs is written, one statement per table."""
    users, profiles, new_profiles, external_changes, new_externals = [], [], [], [], []
    (updated_at,) = db_values(RecipientProfile, updated_at=now).values()
    stamps = db_values(RecipientProfile, created_at=now, updated_at=now)
    for item, current in pairs:
        email = item.email if item.email and item.email.lower() != current.email.lower() else current.email
        first = item.first_name if item.first_name is not None else current.first_name
        last = item.last_name if item.last_name is not None else current.last_name
        if (email, first, last) != (current.email, current.first_name, current.last_name):
            users.append((email, first, last, current.pk))
        given = {name: getattr(item, name) for name in ("phone", "timezone", "locale", "chat_ids")
                 if getattr(item, name) is not None}
        if current.profile_id is None:
            if given:
                new_profiles.append((current.pk, item.phone or "", item.timezone or DEFAULT_TIMEZONE,
                                     item.locale or DEFAULT_LOCALE, _json(item.chat_ids or {}), *stamps.values()))
        elif any(getattr(current, name) != value for name, value in given.items()):
            values = {name: given.get(name, getattr(current, name)) for name in ("phone", "timezone", "locale")}
            profiles.append((*values.values(), _json(given.get("chat_ids", current.chat_ids)), updated_at,
                             current.profile_id))
        if item.external_id and item.external_id != current.external_id:
            if current.external_pk is None:
                new_externals.append((current.pk, item.external_id))
            else:
                external_changes.append((item.external_id, current.external_pk))
    update_many(get_user_model(), ["email", "first_name", "last_name"], users)
    update_many(RecipientProfile, ["phone", "timezone", "locale", "chat_ids", "updated_at"], profiles)
    insert_many(RecipientProfile, ["user", "phone", "timezone", "locale", "chat_ids", *stamps], new_profiles)
    update_many(ExternalId, ["external_id"], external_changes)
    insert_many(ExternalId, ["user", "external_id"], new_externals)
