"""The receivers behind signal triggers: a cheap check, then an enqueue after commit.

Each receiver is connected with its ``sender`` and a ``dispatch_uid`` as models and signals are
registered (``connect_receivers()`` runs in ``NotificationsConfig.ready()``; registrations made
later, in other apps' ``ready()``, connect at once). A receiver:

1. asks the per-process cache for the active triggers of (signal, model) and returns at once if
   there are none (the common case: one token read, see ``cache``);
2. checks each trigger's event filter, "field changed to" filter and conditions against the
   instance's attributes (``pre_save`` reads the old values, one query by primary key, only when
   a trigger watches a field and the new value is one it waits for);
3. queues the matches for one ``transaction.on_commit`` callback per transaction (per savepoint
   level): a rolled-back save notifies no one. After commit, that callback delivers each
   firing's in-app part at once (``inline``: no queue hop for what needs no network) and
   enqueues the rest as ``trigger_fire_task``; anything that goes wrong there falls back to
   enqueuing the whole firing.

No receiver writes to the database or resolves recipients; that happens after commit. Triggers see
what sends signals: ``save()``, ``delete()``, relation managers; ``QuerySet.update()`` and
``bulk_create()`` send none, so they fire no trigger (as with any Django receiver).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.utils import timezone

from . import cache
from . import registry as reg
from .conditions import CompiledTrigger, normalised

logger = logging.getLogger(__name__)

# Set on an instance by pre_save, taken by post_save: (snapshot, old values or None).
_STASH = "_signalbox_trigger_stash"
# Firings per task: a bulk import in one transaction becomes a few tasks, not thousands.
FIRINGS_PER_TASK = 100


def connect_receivers() -> None:
    """Connect receivers for everything registered so far, and for whatever is registered later."""
    reg._builtin_signals()
    reg.registry.on_register = _connect
    reg.ensure_user_model()
    for entry in list(reg.registry.models.values()):
        _connect(model=entry)
    for entry in list(reg.registry.signals.values()):
        if not (entry.model_signal or entry.user_signal):
            _connect(signal=entry)
    from django.contrib.auth.signals import user_logged_in

    User = get_user_model()
    user_logged_in.connect(_on_user_logged_in, sender=User, dispatch_uid="signalbox.triggers.auth.user_logged_in")
    # post_save of the user model also serves auth.user_signed_up (``created``); the user model is
    # always registered (ensure_user_model), so its post_save receiver exists.
    _connect_safety_net()


def _connect(*, model: reg.RegisteredModel | None = None, signal: reg.RegisteredSignal | None = None) -> None:
    if model is not None:
        sender, label = model.model, model.label
        pre_save.connect(_on_pre_save, sender=sender, dispatch_uid=f"signalbox.triggers.pre_save:{label}")
        post_save.connect(_on_post_save, sender=sender, dispatch_uid=f"signalbox.triggers.post_save:{label}")
        post_delete.connect(_on_post_delete, sender=sender, dispatch_uid=f"signalbox.triggers.post_delete:{label}")
        for name in model.m2m_fields:
            through = model.model._meta.get_field(name).remote_field.through
            m2m_changed.connect(
                _on_m2m_changed, sender=through, dispatch_uid=f"signalbox.triggers.m2m_changed:{label}.{name}"
            )
    if signal is not None:
        # sender=None only when the registering app asked for any sender (register_signal).
        # weak=False: the receiver is made here, and nothing else holds on to it.
        signal.signal.connect(_custom_receiver(signal.key), sender=signal.sender, weak=False,
                              dispatch_uid=f"signalbox.triggers.custom:{signal.key}")


def _connect_safety_net() -> None:
    """Any save or delete of a trigger moves the version on, even one that bypassed the services."""
    from ..models import SignalTrigger

    post_save.connect(_on_trigger_changed, sender=SignalTrigger, dispatch_uid="signalbox.triggers.safety_net.save")
    post_delete.connect(_on_trigger_changed, sender=SignalTrigger, dispatch_uid="signalbox.triggers.safety_net.delete")


def _on_trigger_changed(sender, instance, using=DEFAULT_DB_ALIAS, raw=False, **kwargs) -> None:
    # One UPDATE in the same transaction as the change (the exception to "no writes in receivers":
    # it is the bookkeeping that makes the change visible, and must commit or roll back with it).
    if not raw:
        cache.trigger_state_bump(using=using)


# --- Model signals ------------------------------------------------------------------------------

class _Values:
    """Attribute values of one instance as field types, converted at most once per save."""

    __slots__ = ("instance", "seen")

    def __init__(self, instance: models.Model) -> None:
        self.instance = instance
        self.seen: dict[str, Any] = {}

    def __call__(self, attname: str, model_field: models.Field | None) -> Any:
        try:
            return self.seen[attname]
        except KeyError:
            value = self.seen[attname] = normalised(model_field, getattr(self.instance, attname, None))
            return value


def _on_pre_save(sender, instance, raw=False, update_fields=None, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    if raw:
        return
    active = cache.active_triggers()
    old = None
    watch = active.watched.get(reg.model_label(sender))
    if watch and not instance._state.adding and instance.pk is not None:
        values = _Values(instance)
        wanted = [
            attname
            for attname, (model_field, targets) in watch.items()
            if (update_fields is None or model_field is None or model_field.name in update_fields)
            and (targets is None or values(attname, model_field) in targets)
        ]
        if wanted:
            old = _stored_values(sender, instance.pk, wanted, using=using)
    instance.__dict__[_STASH] = (active, old)


_old_value_reads: dict[tuple, tuple[str, list] | None] = {}


def _stored_values(model: type[models.Model], pk: Any, attnames: list[str], *, using: str) -> dict[str, Any]:
    """The row's current values of ``attnames``: one SELECT by primary key ({} if there is no row).

    The statement and Django's value converters are prepared once per model and fields, so a
    save pays for the query, not for building it (the ORM spends ~10x longer compiling the same
    SELECT than SQLite takes to run it). Fields stored in a parent table (multi-table
    inheritance) go through the ORM.
    """
    connection = connections[using]
    key = (using, connection.vendor, model, tuple(attnames))
    prepared = _old_value_reads.get(key, False)
    if prepared is False:
        prepared = _old_value_reads[key] = _prepare_read(model, attnames, connection)
    if prepared is None:
        return model._base_manager.using(using).filter(pk=pk).values(*attnames).first() or {}
    sql, columns = prepared
    with connection.cursor() as cursor:
        cursor.execute(sql, [model._meta.pk.get_db_prep_value(pk, connection)])
        row = cursor.fetchone()
    if row is None:
        return {}
    values = {}
    for raw, (attname, col, converters) in zip(row, columns, strict=True):
        for convert in converters:
            raw = convert(raw, col, connection)
        values[attname] = raw
    return values


def _prepare_read(model: type[models.Model], attnames: list[str], connection) -> tuple[str, list] | None:
    opts = model._meta
    fields = [next(f for f in opts.concrete_fields if f.attname == attname) for attname in attnames]
    if any(f.model._meta.db_table != opts.db_table for f in fields):
        return None
    quote = connection.ops.quote_name
    columns = []
    for model_field in fields:
        col = model_field.get_col(opts.db_table)
        converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        columns.append((model_field.attname, col, converters))
    sql = (
        f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(opts.db_table)} "
        f"WHERE {quote(opts.pk.column)} = %s"
    )
    return sql, columns


def _on_post_save(sender, instance, created, raw=False, update_fields=None, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    if raw:
        return
    stash = instance.__dict__.pop(_STASH, None)
    active, old = stash if stash is not None else (cache.active_triggers(), None)
    label = reg.model_label(sender)
    saved = active.for_signal(reg.MODEL_POST_SAVE, label)
    signed_up = active.for_signal(reg.USER_SIGNED_UP) if created and sender is get_user_model() else ()
    if not saved and not signed_up:
        return
    values = _Values(instance)
    event = "created" if created else "updated"
    matched = [t for t in saved if t.matches(event=event, get=values, old=old, update_fields=update_fields)]
    if matched:
        _fire(matched, model=label, pk=instance.pk, event=event, fields=reg.instance_fields(instance), using=using)
    matched = [t for t in signed_up if t.matches(event="fired", get=values)]
    if matched:
        _fire(matched, model=label, pk=instance.pk, event="fired", fields=reg.instance_fields(instance), using=using)


def _on_post_delete(sender, instance, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    label = reg.model_label(sender)
    triggers = cache.active_triggers().for_signal(reg.MODEL_POST_DELETE, label)
    if not triggers:
        return
    values = _Values(instance)
    matched = [t for t in triggers if t.matches(event="deleted", get=values)]
    if matched:
        # The row is gone after commit: the snapshot is all the task will have of it.
        _fire(matched, model=label, pk=instance.pk, event="deleted", fields=reg.instance_fields(instance), using=using)


_M2M_ACTIONS = {"post_add": "add", "post_remove": "remove", "post_clear": "clear"}


def _on_m2m_changed(sender, instance, action, reverse, model, pk_set, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    if action not in _M2M_ACTIONS:
        return
    active = cache.active_triggers()
    if not reverse:
        label = reg.model_label(instance)
        triggers = active.for_signal(reg.MODEL_M2M_CHANGED, label)
        if not triggers:
            return
        name = _m2m_field_name(type(instance), sender)
        values = _Values(instance)
        matched = [t for t in triggers if t.matches(event="updated", get=values, m2m_field=name)]
        if matched:
            change = {"field": name, "action": _M2M_ACTIONS[action], "ids": sorted(reg.json_safe(pk_set or []))}
            _fire(matched, model=label, pk=instance.pk, event="updated", fields=reg.instance_fields(instance),
                  using=using, change=change)
        return
    # Changed from the other side (``user.projects.add(project)``): the registered instances are
    # only known by id here, so their conditions are checked by the task after loading them.
    label = reg.model_label(model)
    triggers = active.for_signal(reg.MODEL_M2M_CHANGED, label)
    if not triggers or not pk_set:
        return
    name = _m2m_field_name(model, sender)
    matched = [t for t in triggers if t.event_matches(event="updated", m2m_field=name)]
    if not matched:
        return
    change = {"field": name, "action": _M2M_ACTIONS[action], "ids": [reg.json_safe(instance.pk)]}
    for pk in sorted(pk_set):
        _fire(matched, model=label, pk=pk, event="updated", fields={}, using=using, change=change,
              check_conditions=True)


def _m2m_field_name(model: type[models.Model], through: type[models.Model]) -> str:
    for model_field in model._meta.many_to_many:
        if model_field.remote_field.through is through:
            return model_field.name
    return ""


# --- Auth and custom signals --------------------------------------------------------------------

def _on_user_logged_in(sender, request=None, user=None, **kwargs) -> None:
    triggers = cache.active_triggers().for_signal(reg.USER_LOGGED_IN)
    if not triggers or user is None:
        return
    values = _Values(user)
    matched = [t for t in triggers if t.matches(event="fired", get=values)]
    if matched:
        _fire(matched, model=reg.model_label(user), pk=user.pk, event="fired", fields=reg.instance_fields(user),
              using=DEFAULT_DB_ALIAS)


def _custom_receiver(key: str):
    def receive(sender, **kwargs) -> None:
        triggers = cache.active_triggers().for_signal(key)
        if not triggers:
            return
        entry = reg.registry.signals[key]
        data, refs = reg.provided_fields(entry, kwargs)
        plain = {name: kwargs.get(name) for name in entry.provides}
        matched = [t for t in triggers if t.matches(event="fired", get=lambda name, _f: plain.get(name))]
        if matched:
            _fire(matched, model=key, pk=None, event="fired", fields=data, refs=refs, using=DEFAULT_DB_ALIAS)

    receive.__qualname__ = f"trigger_receiver[{key}]"
    return receive


# --- Enqueue on commit ----------------------------------------------------------------------------

class _Batch:
    """The firings of one transaction (at one savepoint level), enqueued by one on_commit callback."""

    __slots__ = ("firings", "done", "hooks", "savepoints")

    def __init__(self, hooks: list, savepoints: tuple) -> None:
        self.firings: list[dict] = []
        self.done = False
        self.hooks = hooks
        self.savepoints = savepoints


_local = threading.local()


def _fire(
    triggers: Sequence[CompiledTrigger],
    *,
    model: str,
    pk: Any,
    event: str,
    fields: dict,
    using: str,
    refs: dict | None = None,
    change: dict | None = None,
    check_conditions: bool = False,
) -> None:
    """Queue one firing per matched trigger, to be enqueued when the transaction commits."""
    fired_at = timezone.now().isoformat()
    pk = reg.json_safe(pk)
    # One id for the event, shared by every trigger it fired: the ledger key of a template sent
    # for this event is then the same whichever trigger sends it (services.trigger_key_prefix).
    event_id = uuid.uuid4().hex
    firings = []
    for trigger in triggers:
        if trigger.journey_id is not None:
            if check_conditions:
                continue  # journeys bind only what the receiver can check (not a change from the other side)
            from ..journeys.entry import journey_firing

            firings.append(journey_firing(trigger, model=model, pk=pk, event=event, fields=fields,
                                          fired_at=fired_at, event_id=event_id, refs=refs))
            continue
        firing = {"trigger_id": trigger.id, "model": model, "pk": pk, "event": event, "fields": fields,
                  "fired_at": fired_at, "event_id": event_id}
        if refs:
            firing["refs"] = refs
        if change:
            firing["change"] = change
        if check_conditions:
            firing["check_conditions"] = True
        firings.append(firing)
    connection = connections[using]
    if not connection.in_atomic_block:
        # Autocommit: the save has committed, and on_commit runs the callback at once.
        transaction.on_commit(lambda: _deliver(firings), using=using, robust=True)
        return
    _open_batch(connection).firings.extend(firings)


def _open_batch(connection) -> _Batch:
    """The batch of this transaction and savepoint level, registering its on_commit when new.

    Django drops the callbacks registered inside a savepoint that rolls back, and replaces its
    list of callbacks on every commit, rollback and savepoint rollback. A batch is reused only
    while that list is the same object, the savepoint level is the same and its callback has not
    run, so a firing never lands in a batch whose callback was dropped or has already run.
    """
    batches = getattr(_local, "batches", None)
    if batches is None:
        batches = _local.batches = {}
    savepoints = tuple(connection.savepoint_ids)
    current = batches.get(connection.alias)
    if (
        current is not None
        and not current.done
        and current.hooks is connection.run_on_commit
        and current.savepoints == savepoints
    ):
        return current
    batch = batches[connection.alias] = _Batch(connection.run_on_commit, savepoints)

    def enqueue_trigger_firings() -> None:
        batch.done = True
        _deliver(batch.firings)

    # robust: the save has committed by then; failing the request over a queue outage would tell
    # the user their change failed when it did not. Django logs the error.
    transaction.on_commit(enqueue_trigger_firings, using=connection.alias, robust=True)
    return batch


def _deliver(firings: list[dict]) -> None:
    """After commit: the in-app part of the first firings now (``inline``), the rest queued."""
    from .inline import INLINE_FIRINGS_PER_TRANSACTION, trigger_fire_local

    journeys = [firing for firing in firings if "journey_id" in firing]
    if journeys:
        from ..journeys.entry import journey_firings_worth_running
        from ..journeys.tasks import journey_firings_task

        firings = [firing for firing in firings if "journey_id" not in firing]
        journeys = journey_firings_worth_running(journeys)
        for start in range(0, len(journeys), FIRINGS_PER_TASK):
            journey_firings_task.enqueue(firings=journeys[start:start + FIRINGS_PER_TASK])
    queued = list(firings[INLINE_FIRINGS_PER_TRANSACTION:])
    for firing in firings[:INLINE_FIRINGS_PER_TRANSACTION]:
        try:
            rest = trigger_fire_local(firing=firing)
        except Exception:  # noqa: BLE001 - the save committed; the task will plan the whole firing
            logger.exception("Trigger %s: in-app part failed after commit; queued instead.", firing.get("trigger_id"))
            rest = firing
        if rest is not None:
            queued.append(rest)
    if queued:
        _enqueue(queued)


def _enqueue(firings: list[dict]) -> None:
    from .tasks import trigger_fire_task

    for start in range(0, len(firings), FIRINGS_PER_TASK):
        trigger_fire_task.enqueue(firings=firings[start:start + FIRINGS_PER_TASK])
