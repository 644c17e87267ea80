"""Tasks: load by id, call the service. Arguments are JSON (ids and strings, never instances)."""

from __future__ import annotations

from django_tasks import task

from . import services
from .models import Category


@task()
def inbox_fanout(*, recipient_ids: list[int], title: str, body: str = "", url: str = "", category_key: str = "") -> int:
    """Put one message in many inboxes, off the request path."""
    category_id = (
        Category.objects.filter(key=category_key).values_list("id", flat=True).first() if category_key else None
    )
    message = services.InboxMessage(title=title, body=body, url=url, category_id=category_id)
    return services.notifications_create(recipient_ids=recipient_ids, message=message)


@task()
def deliveries_send_task(*, delivery_ids: list[int]) -> dict:
    """Send one planned batch. Claiming makes a duplicate or retried task harmless."""
    from dataclasses import asdict

    from . import pipeline

    return asdict(pipeline.deliveries_send(delivery_ids=delivery_ids))


@task()
def deliveries_sweep_task() -> int:
    """Re-queue deliveries whose worker died mid-batch (run it every minute or so)."""
    from . import pipeline

    return pipeline.deliveries_sweep_expired_leases()


@task()
def campaigns_launch_due_task() -> list[int]:
    """Start due campaigns now (enqueued by "send now"; the scheduler does the same every tick)."""
    from .campaigns.runs import campaigns_launch_due

    return campaigns_launch_due()


@task()
def campaign_run_plan_task(*, run_id: int) -> None:
    """Freeze a run's audience into planned deliveries. Planning twice plans nothing new."""
    from .campaigns.runs import campaign_run_plan

    campaign_run_plan(run_id=run_id)
