"""Every change to someone's privileges is an ``AuditEntry``, whatever made it.

The admin, a management command, the shell and a data migration can all make someone staff, a
superuser, a member of a group or give them a permission or a new password. Rather than trust
every one of those paths to remember, receivers on the user model and on the group and
permission relations record each change in the same transaction. This is the one place where a
receiver of ours writes (like the trigger version's safety net): the entry must commit or roll
back with the change it records.

The actor is whoever the admin is acting for (``acting_as``); elsewhere it is "system".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_save, pre_save

PRIVILEGE_FIELDS = ("is_active", "is_staff", "is_superuser", "password")
_STASH = "_signalbox_privileges_before"
_actor: ContextVar = ContextVar("signalbox_privileges_actor", default=None)


@contextmanager
def acting_as(user) -> Iterator[None]:
    """Attribute privilege changes made inside the block to ``user``."""
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


def _record(*, action: str, target, changes: dict) -> None:
    from notifications.services import audit_record

    audit_record(actor=_actor.get(), action=action, target=target, changes=changes)


def _on_user_pre_save(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(PRIVILEGE_FIELDS):
        return  # e.g. the last_login update on every sign-in: nothing to compare
    before = sender._base_manager.filter(pk=instance.pk).values(*PRIVILEGE_FIELDS).first()
    instance.__dict__[_STASH] = before


def _on_user_post_save(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    before = instance.__dict__.pop(_STASH, None)
    if created:
        granted = {name: True for name in ("is_staff", "is_superuser") if getattr(instance, name)}
        if granted:
            _record(action="user.privileges_changed", target=instance,
                    changes={name: [False, True] for name in granted})
        return
    if before is None:
        return
    changes = {
        name: [before[name], getattr(instance, name)]
        for name in ("is_active", "is_staff", "is_superuser")
        if before[name] != getattr(instance, name)
    }
    if changes:
        _record(action="user.privileges_changed", target=instance, changes=changes)
    if before["password"] != instance.password:
        # Never the hash itself: only that it changed, and whether it can be used to sign in.
        _record(action="user.password_changed", target=instance,
                changes={"usable": instance.has_usable_password()})


_M2M_ACTIONS = {"post_add": "added", "post_remove": "removed", "pre_clear": "cleared"}


def _related_pks(*, instance, through, model, reverse: bool) -> set:
    """The rows on the other side of ``instance`` in the relation ``through``."""
    if reverse:
        field = next(f for f in model._meta.many_to_many if f.remote_field.through is through)
        return set(model._base_manager.filter(**{field.name: instance}).values_list("pk", flat=True))
    field = next(f for f in type(instance)._meta.many_to_many if f.remote_field.through is through)
    return set(getattr(instance, field.name).values_list("pk", flat=True))


def _relation_receiver(action_name: str):
    """Audit one relation that grants privileges (user↔group, user↔permission, group↔permission).

    Recorded on the side that gains or loses: the user (or group) whose privileges changed.
    ``clear()`` is seen before it happens (``pre_clear``), while what it removes can still be read.
    """

    def receive(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
        verb = _M2M_ACTIONS.get(action)
        if verb is None:
            return
        if action == "pre_clear":
            pk_set = _related_pks(instance=instance, through=sender, model=model, reverse=reverse)
        if not pk_set:
            return
        related = list(model._base_manager.filter(pk__in=pk_set))
        if reverse:
            for target in related:
                _record(action=action_name, target=target, changes={verb: [str(instance)]})
        else:
            _record(action=action_name, target=instance, changes={verb: sorted(str(obj) for obj in related)})

    receive.__qualname__ = f"privileges[{action_name}]"
    return receive


def connect_privilege_audit() -> None:
    User = get_user_model()
    pre_save.connect(_on_user_pre_save, sender=User, dispatch_uid="signalbox.privileges.user_pre_save")
    post_save.connect(_on_user_post_save, sender=User, dispatch_uid="signalbox.privileges.user_post_save")
    for through, action_name in (
        (User.groups.through, "user.groups_changed"),
        (User.user_permissions.through, "user.permissions_changed"),
        (Group.permissions.through, "group.permissions_changed"),
    ):
        m2m_changed.connect(_relation_receiver(action_name), sender=through, weak=False,
                            dispatch_uid=f"signalbox.privileges.{action_name}")
