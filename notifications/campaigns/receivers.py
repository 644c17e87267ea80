"""What campaigns do when the rooms below them announce something, and their scheduler tick.

Connected and registered in ``NotificationsConfig.ready()``; the ledger never imports campaigns.
"""

from __future__ import annotations


def runs_finish_after_batch(sender, *, run_ids, **kwargs) -> None:
    """``deliveries_batch_recorded``: complete the batch's runs that have nothing left to send."""
    if run_ids:
        from .runs import runs_finish_if_done

        runs_finish_if_done(run_ids=run_ids)


def campaigns_tick(*, once: bool = False) -> list[str]:
    """The scheduler's campaign round: start due campaigns (exactly once per occurrence, a
    compare-and-set on the campaign row), re-plan runs whose planning task was lost and complete
    runs with nothing left to send."""
    from .runs import campaigns_launch_due, runs_housekeeping

    lines = []
    started = campaigns_launch_due()
    housekeeping = runs_housekeeping()
    if started or once:
        lines.append(f"started {len(started)} campaign run(s)")
    if housekeeping["replanned"] or housekeeping["finished"]:
        lines.append(f"re-planned {housekeeping['replanned']} run(s), finished {housekeeping['finished']} run(s)")
    return lines
