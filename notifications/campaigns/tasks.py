"""Campaign tasks: load by id, call the service. Arguments are JSON (ids, never instances)."""

from __future__ import annotations

from django_tasks import task


@task()
def campaigns_launch_due_task() -> list[int]:
    """Start due campaigns now (enqueued by "send now"; the scheduler does the same every tick)."""
    from .runs import campaigns_launch_due

    return campaigns_launch_due()


@task()
def campaign_run_plan_task(*, run_id: int) -> None:
    """Freeze a run's audience into planned deliveries. Planning twice plans nothing new."""
    from .runs import campaign_run_plan

    campaign_run_plan(run_id=run_id)
