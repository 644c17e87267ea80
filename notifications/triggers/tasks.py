"""The trigger task: load by id, call the service. Arguments are JSON (ids, labels, plain data)."""

from __future__ import annotations

import logging

from django_tasks import task

logger = logging.getLogger(__name__)


@task()
def trigger_fire_task(*, firings: list[dict]) -> dict:
    """Fire the triggers one committed transaction matched (``trigger_fire`` keyword arguments each).

    Each firing is planned in its own transaction, so one that fails (a template deleted
    meanwhile...) does not hold back the others; the first error is raised once all were tried,
    so the task is reported failed. Re-running the task plans nothing twice (ledger keys).
    """
    from .services import trigger_fire

    planned = skipped = 0
    first_error: Exception | None = None
    for firing in firings:
        try:
            result = trigger_fire(**firing)
        except Exception as exc:  # noqa: BLE001 - logged here, re-raised below
            logger.exception("Trigger %s failed for %s %s.", firing.get("trigger_id"), firing.get("model"),
                             firing.get("pk"))
            first_error = first_error or exc
            continue
        if result is None:
            skipped += 1
        else:
            planned += result.planned
    if first_error is not None:
        raise first_error
    return {"firings": len(firings), "planned": planned, "skipped": skipped}
