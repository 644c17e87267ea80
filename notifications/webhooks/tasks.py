"""Webhook tasks: load by id, call the service. Claiming makes duplicated tasks harmless."""

from __future__ import annotations

from django_tasks import task


@task()
def webhook_endpoint_drain_task(*, endpoint_id: int) -> dict:
    """POST what is due for one endpoint, in order per delivery; schedule its retries."""
    from dataclasses import asdict

    from .sending import webhook_endpoint_drain

    return asdict(webhook_endpoint_drain(endpoint_id=endpoint_id))
