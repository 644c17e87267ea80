"""Services every room uses: the audit trail and ensuring a category exists.

Keyword-only and typed (STYLE.md). The rooms' own writes live in their ``services`` modules
(``inbox.services``, ``campaigns.services``, ...).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import translation

from .models import AuditEntry, Category


def category_ensure(
    *, key: str, name: str, kind: str, user_can_opt_out: bool = True, name_zh_hans: str = ""
) -> Category:
    """The category ``key``, created when missing; a Chinese name fills an empty one."""
    category, created = Category.objects.get_or_create(
        key=key, defaults={"name": name, "name_zh_hans": name_zh_hans, "kind": kind,
                           "user_can_opt_out": user_can_opt_out,
                           "resend_policy": Category.ResendPolicy.for_kind(kind)}
    )
    if not created and name_zh_hans and not category.name_zh_hans:
        category.name_zh_hans = name_zh_hans
        category.save(update_fields=["name_zh_hans"])
    return category


def audit_record(
    *, actor, action: str, target: models.Model | None = None, changes: dict | None = None
) -> AuditEntry:
    """Append an audit entry. ``actor`` may be None for the system (tasks, triggers).

    What it names is written in the site's language, whoever acts: a category is "Newsletter" in
    the log whether a Manager working in Chinese or in English changed it (one text to search for).
    """
    with translation.override(settings.LANGUAGE_CODE):
        target_repr = str(target)[:200] if target is not None else ""
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_repr=str(actor) if actor is not None else "system",
        action=action,
        target_type=ContentType.objects.get_for_model(target) if target is not None else None,
        target_id=str(target.pk) if target is not None else "",
        target_repr=target_repr,
        changes=changes or {},
    )

