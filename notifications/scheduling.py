"""Periodic work, registered by the room it belongs to and run by ``manage.py signalbox_scheduler``.

Each room registers its ticks in its ``AppConfig.ready()`` (campaign launches and run
housekeeping, the ledger's lease sweep, the analytics rollups), so the command imports none of
them. A tick is ``fn(*, once) -> list[str]``: it does one round of its work and returns the lines
to print (``once`` asks for a line even when nothing happened). Ticks run in ``order``, then in
registration order; registering a name again replaces its tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

TickFunction = Callable[..., list[str]]


@dataclass(frozen=True)
class Tick:
    name: str
    run: TickFunction
    order: int = 0


_ticks: dict[str, Tick] = {}


def register_tick(name: str, fn: TickFunction, *, order: int = 0) -> None:
    """Run ``fn(once=...)`` on every scheduler tick under ``name``."""
    _ticks[name] = Tick(name=name, run=fn, order=order)


def ticks() -> list[Tick]:
    """The registered ticks in the order they run."""
    return sorted(_ticks.values(), key=lambda t: t.order)  # sorted() is stable: then registration order


def ticks_run(*, once: bool = False) -> list[str]:
    """One round of every registered tick; the lines they report."""
    lines: list[str] = []
    for registered in ticks():
        lines.extend(registered.run(once=once))
    return lines
