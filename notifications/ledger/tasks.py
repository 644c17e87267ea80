"""The ledger's tasks: load by id, call the service. Arguments are JSON (ids, never instances)."""

from __future__ import annotations

from django_tasks import task


@task(takes_context=True)
def deliveries_send_task(context, *, delivery_ids: list[int]) -> dict:
    """Send one planned batch. Claiming makes a duplicate or retried task harmless."""
    from dataclasses import asdict

    from config.logs import log_context

    from .sending import deliveries_send

    with log_context(task_id=context.task_result.id):
        return asdict(deliveries_send(delivery_ids=delivery_ids))


@task()
def deliveries_sweep_task() -> int:
    """Re-queue deliveries whose worker died mid-batch (run it every minute or so)."""
    from .recovery import deliveries_sweep_expired_leases

    return deliveries_sweep_expired_leases()
