"""The in-app part of a firing, delivered as soon as the save commits: no queue hop.

A trigger's inbox messages need no network, so waiting for a worker to poll the queue is all
the latency they have. The receivers' on-commit callback (``receivers._deliver``) therefore
plans each firing's in-app channels here, in the process that saved, and enqueues only the rest
(email, SMS...) as a ``trigger_fire_task``. What stays the same:

* nothing happens inside the saving transaction, and a rolled-back save fires nothing (this runs
  from ``transaction.on_commit``);
* the firing goes through ``services.trigger_fire``: the trigger is re-read, the per-event cap
  and the approval are checked, holds are recorded once, the firing is counted once;
* the ledger keys of both parts are the firing's, so whatever runs twice plans nothing twice;
* it cannot fail the request: any error here falls back to enqueuing the whole firing, which
  the task then plans as it always did (in-app rows already written are known to the ledger).

Only bounded work is done here: triggers that reach people through a recipient path with a cap
of ``INLINE_MAX_RECIPIENTS`` or fewer (the default cap is 100), and at most
``INLINE_FIRINGS_PER_TRANSACTION`` firings of one transaction (a bulk import that fires
thousands of times still goes to the queue). An audience trigger always goes to the queue.
"""

from __future__ import annotations

from collections.abc import Mapping

INLINE_MAX_RECIPIENTS = 100
INLINE_FIRINGS_PER_TRANSACTION = 20


def trigger_fire_local(*, firing: Mapping) -> dict | None:
    """Plan the part of ``firing`` whose channels deliver while planning (the inbox) now.

    Returns what is left for the task: the firing narrowed to its other channels (not counted
    again), the whole firing when nothing could be done here, or ``None`` when nothing is left
    (all delivered, or the firing no longer applies: trigger disabled, held, instance gone).
    Raises whatever planning raises; the caller then enqueues the whole firing.
    """
    from ..ledger.local import delivers_while_planning
    from .services import trigger_active, trigger_fire

    trigger = trigger_active(trigger_id=firing["trigger_id"])
    if trigger is None:
        return None  # disabled since the save: the task would skip it too
    channels = list(trigger.channels or [])
    local = [c for c in channels if delivers_while_planning(c)]
    if not local or trigger.audience_id is not None or trigger.max_recipients > INLINE_MAX_RECIPIENTS:
        return dict(firing)
    rest = [c for c in channels if c not in local]
    if trigger_fire(**firing, channels=local, trigger=trigger) is None:
        return None
    return {**firing, "channels": rest, "counted": False} if rest else None
