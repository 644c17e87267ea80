"""Start-up heap freezing: what importing Django and Signalbox built is never scanned again.

Python's cyclic garbage collector walks every tracked object on each full (generation 2)
collection. A Signalbox process holds ~140k of them after start-up (Django, the admin, the
adapters, compiled templates), nearly all alive until it exits, and a full collection fires
when enough new objects survived the young generations: a 10,000-recipient fan-out triggers
one, and walking the start-up heap cost 7-10 % of that fan-out's CPU time
(``python -m bench fanout_inapp`` against ``--unfrozen``). ``gc.freeze()`` moves the objects that exist now to a
permanent generation the collector ignores; later objects are collected as before.

Called once at the end of ``OpsConfig.ready()`` (``ops`` is the last installed app, so every
app's modules and ``ready()`` work are in the frozen set) in every process: web workers, task
workers, the scheduler, management commands. ``SIGNALBOX_FREEZE_STARTUP_HEAP=0`` turns it off.
"""

from __future__ import annotations

import gc

from django.conf import settings


def startup_heap_freeze() -> int:
    """Collect start-up garbage, then freeze what is left; returns how many objects are frozen
    (0 when the setting turns it off)."""
    if not getattr(settings, "SIGNALBOX_FREEZE_STARTUP_HEAP", True):
        return 0
    gc.collect()  # garbage from start-up is freed, not frozen with the rest
    gc.freeze()
    return gc.get_freeze_count()
