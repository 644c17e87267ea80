"""Staff roles: which Django permissions each staff group holds (DESIGN.md "Who uses it").

``ROLE_PERMISSIONS`` is the single source of truth; ``roles_ensure`` makes the database match it.
It runs after every ``migrate`` (``DashboardConfig.ready``), so a fresh install has the groups
without loading demo data. Adding a model to a role is a one-line change to the map below; the
next ``migrate`` (or ``seed_demo``) applies it.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, transaction

logger = logging.getLogger(__name__)

VIEW = ("view",)
MANAGE = ("view", "add", "change", "delete")


def _perms(model: str, actions: tuple[str, ...]) -> list[str]:
    """``"notifications.category", MANAGE`` -> ``["notifications.view_category", ...]``."""
    app_label, model_name = model.split(".")
    return [f"{app_label}.{action}_{model_name}" for action in actions]


# Every model a staff member may see. Managers view all of it; the other roles pick from it.
VIEWABLE_MODELS = [
    "auth.user",
    "notifications.recipientprofile",
    "notifications.category",
    "notifications.preference",
    "notifications.suppression",
    "notifications.notification",
    "notifications.delivery",
    "notifications.deliveryevent",
    "notifications.auditentry",
    "notifications.audience",
    "notifications.audiencemember",
    "notifications.messagetemplate",
    "notifications.messagetemplatevariant",
    "notifications.campaign",
    "notifications.campaignrun",
    "notifications.signaltrigger",
    "channels_adapters.capturedmessage",
    "demo_shop.customer",
    "demo_shop.order",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    # Audiences, templates, campaigns; watches progress and analytics.
    "Marketers": [
        *_perms("auth.user", VIEW),
        *_perms("notifications.recipientprofile", VIEW),
        *_perms("notifications.category", MANAGE),
        *_perms("notifications.notification", MANAGE),
        *_perms("notifications.delivery", VIEW),
        *_perms("notifications.deliveryevent", VIEW),
        *_perms("channels_adapters.capturedmessage", VIEW),
        *_perms("notifications.audience", MANAGE),
        *_perms("notifications.audiencemember", MANAGE),
        *_perms("notifications.messagetemplate", MANAGE),
        *_perms("notifications.messagetemplatevariant", MANAGE),
        *_perms("notifications.campaign", MANAGE),
        *_perms("notifications.campaignrun", VIEW),
        *_perms("notifications.signaltrigger", MANAGE),
        # Starting, pausing, resuming and cancelling sends is its own permission: a group or a
        # user may build campaigns without being allowed to send them.
        "notifications.launch_campaign",
    ],
    # Imports user lists, manages suppressions and preferences on behalf of users.
    "Operators": [
        *_perms("auth.user", ("view", "add", "change")),
        *_perms("notifications.recipientprofile", ("view", "add", "change")),
        # Preferences are per category: an operator must see which categories exist.
        *_perms("notifications.category", VIEW),
        *_perms("notifications.preference", MANAGE),
        *_perms("notifications.suppression", MANAGE),
        *_perms("notifications.audience", VIEW),  # "add the imported users to static audience X"
        *_perms("notifications.audiencemember", ("view", "add")),
        *_perms("dashboard.importjob", ("view", "add")),
        "dashboard.import_users",
    ],
    # Approves large campaigns, downloads reports: reads everything, including the audit log.
    # Approval is theirs alone, and never for a campaign they wrote (checked by the service).
    "Managers": [
        *(perm for model in VIEWABLE_MODELS for perm in _perms(model, VIEW)),
        "notifications.approve_campaign",
        *_perms("dashboard.importjob", VIEW),
        *_perms("dashboard.report", ("view", "add")),
        "dashboard.export_data",
        "dashboard.download_reports",
    ],
}


def roles_ensure(*, using: str = DEFAULT_DB_ALIAS, strict: bool = True) -> None:
    """Create the staff groups and give each exactly the permissions in ``ROLE_PERMISSIONS``.

    Idempotent, and it also *removes* permissions that are no longer in the map, so a group
    edited by hand in the admin is put back to the documented role. All permissions are looked
    up in one query.

    ``strict`` raises ``ImproperlyConfigured`` for a permission that does not exist (a typo, or a
    model that was removed). ``post_migrate`` passes ``strict=False``: a database migrated only
    part of the way legitimately lacks the permissions of models added by later migrations, and
    those are logged and applied by the migrate that creates them.
    """
    wanted = {perm for perms in ROLE_PERMISSIONS.values() for perm in perms}
    app_labels = {perm.split(".", 1)[0] for perm in wanted}
    ids_by_name = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.using(using)
        .filter(content_type__app_label__in=app_labels)
        .values_list("pk", "content_type__app_label", "codename")
    }
    missing = sorted(wanted - ids_by_name.keys())
    if missing and strict:
        raise ImproperlyConfigured(f"ROLE_PERMISSIONS names permissions that do not exist: {', '.join(missing)}")
    if missing:
        logger.warning("Staff roles: permissions not created yet, skipped: %s", ", ".join(missing))

    with transaction.atomic(using=using):
        for name, perms in ROLE_PERMISSIONS.items():
            group, _ = Group.objects.using(using).get_or_create(name=name)
            group.permissions.set([ids_by_name[perm] for perm in perms if perm in ids_by_name])
