"""Erasing a person: nothing left that says who they were, every figure left as it was.

What stays: the user row as a disabled shell named ``erased-<id>`` (the ledger and inbox rows
point at it); each delivery's channel, status, reason, attempts, timestamps, campaign run,
trigger and category; each receipt's kind, source, time and hits; each inbox row's read state;
broadcast read state. So campaign totals, funnels and the analytics rollups do not move.
What goes: names, email, phone, profile, preferences, push subscriptions, audience memberships,
rendered content, provider ids, error texts, receipt payloads, captured copies, sign-in records,
their rows in uploaded CSV files, what audit and admin-log entries said about them.
Suppressions stay as keyed hashes (``querysets.suppression_hash``): the planner and the send-time
re-check look hashed rows up too, so their old address is never sent to again, even when it
comes back on a new account. Always one transaction.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.roles import allows

from channels_adapters.handler import channels as channel_adapters

from ..models import Suppression
from ..services import audit_record
from .kinds import kinds
from .people import Person, person_load

ERASE_ACTION = "person.erase"


class ErasureRefused(ValueError):
    """This person cannot be erased here (a staff account); the message says why."""


def person_erase(*, person: Person, actor) -> dict[str, int]:
    """Erase ``person``; returns rows touched per kind (also what the audit entry records).

    ``actor`` must be allowed ``person.erase`` (``PermissionDenied``). Staff accounts are refused
    (``ErasureRefused``): their names are on campaigns, approvals and the audit log as the people
    who acted, and removing a staff member is a superuser's account change. Erasing an erased
    person again changes nothing and is refused the same way.
    """
    if not allows(actor, ERASE_ACTION):
        raise PermissionDenied(_("You may not erase a person's data."))
    user = person.user
    if user.is_staff or user.is_superuser:
        raise ErasureRefused(_("Staff accounts are not erased here: a superuser removes staff accounts."))
    with transaction.atomic():
        # Locked and read again inside the transaction: a second erase waits, then sees the shell.
        locked = type(user)._default_manager.select_for_update().get(pk=user.pk)
        if locked.get_username() == f"erased-{user.pk}" and not locked.is_active:
            raise ErasureRefused(_("This person was already erased."))
        person = person_load(locked)
        touched = {kind.name: kind.erase(person) for kind in kinds()}
        # Their inbox must stay empty: the shell keeps its id, which is the inbox's address, and
        # a suppression of it keeps notify() and campaigns away (an id names nobody).
        for channel, address in person.addresses:
            if channel_adapters.features(channel).address_source == "user_id":
                Suppression.objects.get_or_create(
                    channel=channel, address=address, defaults={"reason": Suppression.Reason.MANUAL}
                )
        audit_record(actor=actor, action="person.erased", target=locked,
                     changes={"person_id": person.pk, "rows": touched})
    return touched
