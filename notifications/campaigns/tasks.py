"""Campaign tasks: load by id, call the service. Arguments are JSON (ids, never instances)."""

from __future__ import annotations

from django_tasks import task


@task()
def campaigns_launch_due_task() -> list[int]:
    """Start due campaigns now (enqueued by "send now"; the scheduler does the same every tick)."""
    from .runs import campaigns_launch_due

    return campaigns_launch_due()


@task(takes_context=True)
def campaign_run_plan_task(context, *, run_id: int) -> None:
    """Freeze a run's audience into planned deliveries. Planning twice plans nothing new."""
    from config.logs import log_context

    from .runs import campaign_run_plan

    with log_context(task_id=context.task_result.id):
        campaign_run_plan(run_id=run_id)
