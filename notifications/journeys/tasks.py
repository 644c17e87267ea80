"""Journey tasks: load by id (here: plain JSON), call the service."""

from __future__ import annotations

from django_tasks import task


@task()
def journey_firings_task(*, firings: list[dict]) -> dict:
    """Entries, goals and exit conditions matched by one committed transaction's saves."""
    from .entry import journey_firings_run

    return journey_firings_run(firings=firings)


@task()
def journeys_tick_task(*, now: str | None = None, chunk_size: int | None = None) -> dict:
    """One tick of every live journey (what ``manage.py signalbox_scheduler`` runs each round)."""
    from django.utils.dateparse import parse_datetime

    from .engine import journeys_tick

    from .engine import CHUNK_SIZE

    from .entries import scheduled_entries_scan

    when = parse_datetime(now) if now else None
    scanned = scheduled_entries_scan(now=when)
    result = journeys_tick(now=when, chunk_size=chunk_size or CHUNK_SIZE)
    return {"enrollments": result.enrollments, "steps": result.steps, "sends": result.sends,
            "finished": result.finished, "entered": scanned.entered}


@task()
def journey_campaign_entries_task(*, run_id: int, campaign_id: int) -> dict:
    """A completed campaign run's recipients enter the journeys that enter on that campaign."""
    from .entries import campaign_run_entries

    return {"entered": campaign_run_entries(run_id=run_id, campaign_id=campaign_id)}
