"""Journeys: multi-step flows on the delivery ledger (DESIGN.md "Domain model", issue 13).

``enter(journey_key, user, context=None, entry_key=None)`` puts a person on a live journey; the
scheduler's ``journeys`` tick (``engine.journeys_tick``) advances due enrollments in bulk. The
graph format and its validation are in ``graph``; signal entries, goals and exit conditions in
``entry``; editing, publishing, pause/resume/stop in ``services``.

The ledger never imports this package: journeys plan through it like campaigns do.
"""

from __future__ import annotations


def enter(journey_key: str, user, context: dict | None = None, entry_key: str | None = None) -> bool:
    """Put ``user`` on the live journey ``journey_key``; whether they entered (see ``services.journey_enter``)."""
    from .services import enter as _enter

    return _enter(journey_key, user, context=context, entry_key=entry_key)


def journeys_tick_lines(*, once: bool = False) -> list[str]:
    """The scheduler's journeys round (``scheduling.register_tick``)."""
    from .engine import journeys_tick
    from .entries import scheduled_entries_scan

    scanned = scheduled_entries_scan()
    result = journeys_tick()
    lines = [f"journeys: {scanned.entered} entered from audiences and dates"] if scanned.entered else []
    if result.enrollments or once:
        return lines + [f"journeys: advanced {result.enrollments} enrollment(s), {result.steps} step(s), "
                f"planned {result.sends} delivery(ies), {result.finished} finished"]
    return lines
