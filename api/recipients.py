"""Recipients through the API: finding users by id / external id / email, and upserting them.

Writes go through the same models and validators as the admin's profile form and the CSV import
(E.164 phones, known time zones, the two locales); a bad value is a ``ValidationError`` naming
the field, and nothing of that recipient is saved.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from notifications.models import RecipientProfile, e164_validator, validate_timezone

from .models import ExternalId

PROFILE_FIELDS = ("phone", "timezone", "locale", "chat_ids")
USER_FIELDS = ("first_name", "last_name")


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


def _clean(data: dict) -> None:
    errors: dict[str, list[str]] = {}
    for name, check in (("phone", e164_validator), ("timezone", validate_timezone)):
        value = data.get(name)
        if value:
            try:
                check(value)
            except ValidationError as exc:
                errors[name] = exc.messages
    chat_ids = data.get("chat_ids")
    if chat_ids is not None and not all(isinstance(v, str) for v in chat_ids.values()):
        errors["chat_ids"] = [_("Chat ids are strings.")]
    if errors:
        raise ValidationError(errors)


def recipient_upsert(*, data: dict) -> Upserted:
    """Create or update one recipient. Found by ``external_id`` first, else by ``email`` (case
    ignored); made when neither finds one (a user with no usable password, who can be invited
    later). Only the fields present in ``data`` change. Raises ``ValidationError``."""
    _clean(data)
    User = get_user_model()
    external_id, email = data.get("external_id"), (data.get("email") or "").strip()
    if not external_id and not email:
        raise ValidationError({"external_id": [_("Give an external_id or an email.")]})
    try:
        with transaction.atomic():
            return _upsert(User, data, external_id=external_id, email=email)
    except IntegrityError:
        # A concurrent upsert of the same external id made it first: this one is now an update.
        with transaction.atomic():
            return _upsert(User, data, external_id=external_id, email=email)


def _upsert(User, data: dict, *, external_id: str | None, email: str) -> Upserted:
    user, found_by = None, "external_id"
    if external_id:
        user = User._default_manager.filter(api_external_id__external_id=external_id).first()
    if user is None and email:
        user, found_by = (User._default_manager.annotate(email_key=Lower("email")).filter(email_key=email.lower())
                          .order_by("pk").first()), "email"
    if user is not None and (user.is_staff or user.is_superuser):
        # As the CSV import (dashboard.imports): a key that may write recipients must not change a
        # staff account; a new email there would receive that account's password reset.
        raise ValidationError({found_by: [_("This is a staff account: the API does not change staff accounts; "
                                            "edit it in the admin.")]})
    created = user is None
    if created:
        base = (external_id or email.partition("@")[0] or "user")[:100]
        user = User(username=f"{base}-{secrets.token_hex(4)}", email=email, password=make_password(None))
    changed = [name for name in USER_FIELDS if name in data and data[name] is not None]
    for name in changed:
        setattr(user, name, data[name])
    if email and user.email.lower() != email.lower():
        user.email = email
        changed.append("email")
    if created:
        user.save()
    elif changed:
        user.save(update_fields=changed)
    if external_id:
        ExternalId.objects.update_or_create(user=user, defaults={"external_id": external_id})
    profile_values = {name: data[name] for name in PROFILE_FIELDS if data.get(name) is not None}
    if profile_values or created:
        profile, _made = RecipientProfile.objects.get_or_create(user=user)
        for name, value in profile_values.items():
            setattr(profile, name, value)
        if profile_values:
            profile.save(update_fields=[*profile_values, "updated_at"])
    return Upserted(user_id=user.pk, created=created)
