"""Roles as policy: who may do what, declared once (DESIGN.md "Who uses it", README "Security model").

Two tables, and nothing else decides:

* ``ROLE_PERMISSIONS``: role (a staff group) × Django permission. Model permissions
  (``view``/``add``/``change``/``delete``) are what the admin asks; ``roles_ensure`` makes the
  groups in the database match the table after every ``migrate``.
* ``ACTIONS``: the verbs services, views and the admin ask about by name (``allows(user,
  "campaign.launch")``), each backed by the permissions it needs, or reserved for superusers.

Superusers may do everything. Managing staff accounts, groups, permissions and staff passwords is
reserved for them: no group holds a permission for it, so no group edit can hand it out.
``accounts.url_policy`` says which of these guards every URL; a test walks every URL for every role.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
    "notifications.campaignvariant",
    "notifications.campaignrun",
    "notifications.signaltrigger",
    "notifications.journey",
    "notifications.journeyversion",
    "notifications.journeyenrollment",
    "notifications.journeysteprun",
    "notifications.webhookendpoint",
    "notifications.webhookmessage",
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
        # Announcements to every inbox (or a category's subscribers): one row, no approval.
        "notifications.send_broadcast",
        *_perms("notifications.delivery", VIEW),
        *_perms("notifications.deliveryevent", VIEW),
        *_perms("channels_adapters.capturedmessage", VIEW),
        *_perms("notifications.audience", MANAGE),
        *_perms("notifications.audiencemember", MANAGE),
        *_perms("notifications.messagetemplate", MANAGE),
        *_perms("notifications.messagetemplatevariant", MANAGE),
        *_perms("notifications.campaign", MANAGE),
        *_perms("notifications.campaignvariant", MANAGE),
        *_perms("notifications.campaignrun", VIEW),
        *_perms("notifications.signaltrigger", MANAGE),
        *_perms("notifications.journey", MANAGE),
        *_perms("notifications.journeyversion", VIEW),
        *_perms("notifications.journeyenrollment", VIEW),
        *_perms("notifications.journeysteprun", VIEW),
        # Starting, pausing, resuming and cancelling sends is its own permission: a group or a
        # user may build campaigns without being allowed to send them.
        "notifications.launch_campaign",
    ],
    # Imports user lists, manages suppressions and preferences on behalf of users.
    # Users here are recipients only: the user admin lets Operators change non-staff accounts and
    # never staff flags, groups, permissions or passwords (``staff.manage``, superusers only).
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
        # They run the day-to-day: whether workers take tasks, queues drain, imports finish.
        "ops.view_system_status",
    ],
    # Approves large campaigns, downloads reports: reads everything, including the audit log.
    # Approval is theirs alone, and never for a campaign they wrote (checked by the service).
    "Managers": [
        *(perm for model in VIEWABLE_MODELS for perm in _perms(model, VIEW)),
        "notifications.approve_campaign",
        # A category change that would reach people who opted out (making it transactional, or
        # one recipients may not leave) is a Manager's decision, shown with the number affected.
        "notifications.change_category",
        "notifications.override_optouts",
        *_perms("dashboard.importjob", VIEW),
        *_perms("dashboard.report", ("view", "add")),
        "dashboard.export_data",
        "dashboard.download_reports",
        # A person's access and erasure requests (GDPR): the export holds everything about them,
        # including what they were sent, which Operators may not read; erasure cannot be undone.
        "notifications.export_personal_data",
        "notifications.erase_personal_data",
        "ops.view_system_status",
        # Outbound webhooks send delivery events to integrators' systems: who receives what is a
        # Manager's decision (and the staff told when an endpoint is disabled).
        *_perms("notifications.webhookendpoint", ("add", "change", "delete")),  # viewing: VIEWABLE_MODELS
    ],
}


@dataclass(frozen=True)
class Action:
    """A verb of the policy: the permissions it needs (all of them), or superusers only."""

    perms: tuple[str, ...] = ()
    superuser_only: bool = False
    description: str = ""


ACTIONS: dict[str, Action] = {
    "campaign.edit": Action(("notifications.change_campaign",), description="build and edit campaigns"),
    "campaign.launch": Action(("notifications.launch_campaign",), description="launch, pause, resume, cancel"),
    "campaign.approve": Action(
        ("notifications.approve_campaign",), description="approve a large campaign or trigger (not their own)"
    ),
    # A trigger sends by itself once enabled: building one is launching it.
    "trigger.edit": Action(
        ("notifications.change_signaltrigger", "notifications.launch_campaign"),
        description="create, edit, enable and disable signal triggers",
    ),
    # Trying a trigger on a real instance reads it, sends nothing (sending the test to oneself is
    # "trigger.edit").
    "trigger.dry_run": Action(
        ("notifications.view_signaltrigger",), description="try a signal trigger on a real instance (dry run)"
    ),
    "journey.edit": Action(("notifications.change_journey",), description="build and edit journey drafts"),
    # A live journey sends by itself, as a trigger does: publishing one is launching it.
    "journey.publish": Action(
        ("notifications.change_journey", "notifications.launch_campaign"),
        description="publish, pause, resume and stop journeys",
    ),
    "broadcast.send": Action(
        ("notifications.send_broadcast",), description="send and withdraw broadcasts to every inbox"
    ),
    "category.edit": Action(("notifications.change_category",), description="edit categories"),
    "category.override_optouts": Action(
        ("notifications.change_category", "notifications.override_optouts"),
        description="make a category reach people who opted out of it",
    ),
    "recipient.manage": Action(
        ("auth.change_user",), description="change recipients (non-staff users) and their profiles"
    ),
    "recipient.send_password_reset": Action(
        ("auth.change_user",), description="email a recipient a link to choose a new password"
    ),
    "suppression.manage": Action(("notifications.add_suppression",), description="add and lift suppressions"),
    "preference.manage": Action(("notifications.change_preference",), description="change recipients' choices"),
    "users.import": Action(("dashboard.import_users",), description="import users from CSV"),
    "person.export": Action(
        ("notifications.export_personal_data",), description="export everything held about one person (ZIP)"
    ),
    "person.erase": Action(
        ("notifications.erase_personal_data",),
        description="erase one person's personal data (anonymise their ledger, keep suppressions hashed)",
    ),
    "data.export": Action(("dashboard.export_data",), description="export CSV/XLSX"),
    "reports.download": Action(("dashboard.download_reports",), description="download PDF reports"),
    "analytics.view": Action(("notifications.view_delivery",), description="see analytics and the ledger"),
    "audit.view": Action(("notifications.view_auditentry",), description="read the audit log"),
    # Health checks, queue depth, unknown outcomes, job states: figures, nothing about a person.
    # Operators and Managers (and superusers); Marketers watch their campaigns' progress instead.
    "system.view_status": Action(("ops.view_system_status",), description="see the system status page"),
    "outbox.view": Action(("channels_adapters.view_capturedmessage",), description="read captured messages"),
    # Captured messages carry recipients' working links (unsubscribe, preferences, password reset).
    "outbox.reveal": Action(superuser_only=True, description="see captured messages with working links"),
    # REST API server keys (api.ApiKey): a key can send to everyone and read every delivery.
    "apikey.manage": Action(superuser_only=True, description="make, see and revoke REST API keys"),
    "webhook.manage": Action(
        ("notifications.change_webhookendpoint",),
        description="configure outbound webhooks: endpoints, secrets, resends, test events",
    ),
    "staff.manage": Action(
        superuser_only=True, description="manage staff users, groups, permissions and staff passwords"
    ),
}


def allows(user, action: str) -> bool:
    """May ``user`` do ``action`` (a key of ``ACTIONS``; an unknown name is a ``KeyError``)?"""
    spec = ACTIONS[action]
    if user is None or not getattr(user, "is_active", False):
        return False
    if user.is_superuser:
        return True
    if spec.superuser_only:
        return False
    return all(user.has_perm(perm) for perm in spec.perms)


def role_of(user) -> str:
    """The role a user acts in, for display and tests: superuser, a group name, staff, recipient."""
    if user is None or not user.is_authenticated:
        return "anonymous"
    if user.is_superuser:
        return "superuser"
    names = sorted(set(user.groups.values_list("name", flat=True)) & set(ROLE_PERMISSIONS))
    if names:
        return names[0]
    return "staff" if user.is_staff else "recipient"


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


def roles_allowed(action: str) -> list[str]:
    """The roles (group names of ``ROLE_PERMISSIONS``) whose permissions cover ``action``;
    superusers, who may do everything, are not listed. Read from the same two tables as ``allows``."""
    spec = ACTIONS[action]
    if spec.superuser_only:
        return []
    return [role for role, perms in ROLE_PERMISSIONS.items() if set(spec.perms) <= set(perms)]


def roles_holding(perm: str) -> list[str]:
    """The roles that hold the Django permission ``perm`` (``"app_label.codename"``)."""
    return [role for role, perms in ROLE_PERMISSIONS.items() if perm in perms]
