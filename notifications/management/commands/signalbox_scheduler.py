"""``manage.py signalbox_scheduler``: the periodic housekeeping every deployment runs once.

Each tick starts due campaigns (exactly once per occurrence, however many schedulers run: a
compare-and-set on the campaign row), re-plans runs whose planning task was lost, completes runs
with nothing left to send, re-queues deliveries whose worker died mid-batch (expired leases) and
deliveries that have been due for a while without a task (a lost task), and keeps the analytics
rollups up to date. Safe to run on several
machines at once: everything it enqueues is claimed under a lease before anything is sent.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from dashboard.analytics import analytics_rollup_tick
from notifications import ledger
from notifications.campaigns.runs import campaigns_launch_due, runs_housekeeping


class Command(BaseCommand):
    help = "Start due campaigns, sweep expired delivery leases and re-queue stale deliveries, every --interval seconds."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=float, default=5.0)
        parser.add_argument("--once", action="store_true", help="Run one tick and exit.")

    def handle(self, *args, interval: float, once: bool, **options) -> None:
        while True:
            started = campaigns_launch_due()
            housekeeping = runs_housekeeping()
            if started or once:
                self.stdout.write(f"started {len(started)} campaign run(s)")
            if housekeeping["replanned"] or housekeeping["finished"]:
                self.stdout.write(
                    f"re-planned {housekeeping['replanned']} run(s), finished {housekeeping['finished']} run(s)"
                )
            swept = ledger.deliveries_sweep_expired_leases()
            requeued = ledger.deliveries_requeue_stale()
            if swept or requeued or once:
                self.stdout.write(f"swept {swept} expired lease(s), re-queued {requeued} stale delivery(ies)")
            rolled = analytics_rollup_tick()  # at most every SIGNALBOX_ANALYTICS_REFRESH_SECONDS
            if rolled is not None and once:
                self.stdout.write("refreshed the analytics rollups")
            if once:
                return
            time.sleep(interval)
