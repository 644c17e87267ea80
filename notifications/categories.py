"""Categories: creating and changing them without quietly overriding anyone's opt-out.

A category *respects opt-outs* when it is not transactional and recipients may leave it. A change
that makes such a category stop respecting them (kind → transactional, or "recipients may opt
out" switched off) would send to the people who left it. Such a change, when anybody has left,
needs ``allows(actor, "category.override_optouts")`` (Managers), an explicit confirmation given
with the number of people it reaches, and is audited with that number. Every other change is
allowed to whoever may change categories, and audited too.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.roles import allows

from .models import Category, Channel, Preference
from .services import audit_record

# The fields staff may set, in form order.
EDITABLE_FIELDS: tuple[str, ...] = (
    "name", "name_zh_hans", "key", "description", "kind", "user_can_opt_out", "default_enabled", "resend_policy",
)


class CategoryChangeRefused(PermissionDenied):
    """A change would override opt-outs and the actor may not, or did not confirm it."""


@dataclass(frozen=True)
class OptoutOverride:
    """What a change would override: how many people opted out, and what the change makes it."""

    opted_out: int
    becomes: str  # "transactional" or "locked" (recipients may no longer leave it)

    def message(self, *, may_override: bool) -> str:
        n = self.opted_out
        if self.becomes == "transactional":
            if may_override:
                return ngettext(
                    "This category has %(count)s person who opted out; making it transactional will send to "
                    "them. Tick the confirmation to go ahead.",
                    "This category has %(count)s people who opted out; making it transactional will send to "
                    "them. Tick the confirmation to go ahead.",
                    n,
                ) % {"count": n}
            return ngettext(
                "This category has %(count)s person who opted out; making it transactional would send to them. "
                "Only a Manager can make this change.",
                "This category has %(count)s people who opted out; making it transactional would send to them. "
                "Only a Manager can make this change.",
                n,
            ) % {"count": n}
        if may_override:
            return ngettext(
                "This category has %(count)s person who opted out; making it one recipients cannot leave will "
                "send to them. Tick the confirmation to go ahead.",
                "This category has %(count)s people who opted out; making it one recipients cannot leave will "
                "send to them. Tick the confirmation to go ahead.",
                n,
            ) % {"count": n}
        return ngettext(
            "This category has %(count)s person who opted out; making it one recipients cannot leave would "
            "send to them. Only a Manager can make this change.",
            "This category has %(count)s people who opted out; making it one recipients cannot leave would "
            "send to them. Only a Manager can make this change.",
            n,
        ) % {"count": n}


def respects_optouts(*, kind: str, user_can_opt_out: bool) -> bool:
    return kind != Category.Kind.TRANSACTIONAL and bool(user_can_opt_out)


def category_optouts_count(*, category: Category) -> int:
    """Distinct active people who do not get ``category`` on some channel because of an opt-out.

    An opt-out is a ``Preference`` row turned off. For a category that is off by default (opt-in),
    everyone who has not turned it on for every channel is out on some channel too, and counted.
    """
    users = get_user_model().objects.filter(is_active=True)
    if category.default_enabled:
        return (
            Preference.objects.filter(category=category, enabled=False, user__in=users)
            .values("user_id").distinct().count()
        )
    fully_in = (
        Preference.objects.filter(category=category, enabled=True, user__in=users)
        .values("user_id").annotate(channels=Count("channel", distinct=True))
        .filter(channels__gte=len(Channel.values)).count()
    )
    return users.count() - fully_in


def category_override_check(*, category: Category, changes: dict) -> OptoutOverride | None:
    """The opt-outs ``changes`` to the stored ``category`` would override; None if it overrides none.

    A change that overrides nobody's choice (nobody opted out, or the category already ignores
    opt-outs) is not an override.
    """
    if category.pk is None:
        return None
    stored = Category.objects.get(pk=category.pk)
    kind = changes.get("kind", stored.kind)
    can_leave = changes.get("user_can_opt_out", stored.user_can_opt_out)
    if not respects_optouts(kind=stored.kind, user_can_opt_out=stored.user_can_opt_out):
        return None
    if respects_optouts(kind=kind, user_can_opt_out=can_leave):
        return None
    opted_out = category_optouts_count(category=stored)
    if not opted_out:
        return None
    return OptoutOverride(opted_out=opted_out, becomes="transactional" if kind == Category.Kind.TRANSACTIONAL else "locked")


def category_create(*, actor, fields: dict) -> Category:
    """Create a category (``fields`` from ``EDITABLE_FIELDS``). Nobody has opted out of a new one."""
    if not (actor is not None and actor.is_active and actor.has_perm("notifications.add_category")):
        raise PermissionDenied(_("You may not add categories."))
    _refuse_unknown(fields)
    if not fields.get("resend_policy"):  # not chosen: what its kind suggests
        fields = {**fields, "resend_policy": Category.ResendPolicy.for_kind(fields.get("kind", Category.Kind.MARKETING))}
    with transaction.atomic():
        category = Category(**fields)
        category.full_clean()
        category.save()
        audit_record(actor=actor, action="category.create", target=category,
                     changes={name: _plain(value) for name, value in fields.items()})
    return category


def category_update(*, actor, category: Category, changes: dict, confirm_override: bool = False) -> Category:
    """Apply ``changes`` (field → new value) to ``category`` and save; returns the stored row.

    Refused (``CategoryChangeRefused``, nothing saved) when it would override opt-outs and the
    actor lacks ``category.override_optouts`` or ``confirm_override`` is False. The check runs on
    the locked row, so the count audited is the count at the moment of the change.
    """
    if not allows(actor, "category.edit"):
        raise PermissionDenied(_("You may not change categories."))
    _refuse_unknown(changes)
    with transaction.atomic():
        stored = Category.objects.select_for_update().get(pk=category.pk)
        changed = {name: value for name, value in changes.items() if getattr(stored, name) != value}
        override = category_override_check(category=stored, changes=changed)
        if override is not None:
            may_override = allows(actor, "category.override_optouts")
            if not may_override or not confirm_override:
                raise CategoryChangeRefused(override.message(may_override=may_override))
        before = {name: getattr(stored, name) for name in changed}
        for name, value in changed.items():
            setattr(stored, name, value)
        stored.full_clean()
        stored.save()
        details = {name: [_plain(before[name]), _plain(value)] for name, value in changed.items()}
        if override is not None:
            audit_record(actor=actor, action="category.override_optouts", target=stored,
                         changes={**details, "opted_out": override.opted_out})
        elif changed:
            audit_record(actor=actor, action="category.update", target=stored, changes=details)
    return stored


def _refuse_unknown(fields: dict) -> None:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not a category field staff may set: {', '.join(sorted(unknown))}.")


def _plain(value):
    return value if isinstance(value, (bool, int, str)) or value is None else str(value)
