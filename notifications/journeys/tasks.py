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

    result = journeys_tick(now=parse_datetime(now) if now else None, chunk_size=chunk_size or CHUNK_SIZE)
    return {"enrollments": result.enrollments, "steps": result.steps, "sends": result.sends,
            "finished": result.finished}
