"""``manage.py signalbox_scheduler``: the periodic housekeeping every deployment runs once.

Each tick runs the work the rooms registered in their ``AppConfig.ready()``
(``notifications.scheduling``): campaigns start due ones (exactly once per occurrence, however
many schedulers run: a compare-and-set on the campaign row), re-plan runs whose planning task
was lost and complete runs with nothing left to send; the ledger re-queues deliveries whose
worker died mid-batch (expired leases) and deliveries that have been due for a while without a
task (a lost task); the dashboard keeps the analytics rollups up to date. Safe to run on several
machines at once: everything it enqueues is claimed under a lease before anything is sent.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from notifications.scheduling import ticks_run


class Command(BaseCommand):
    help = "Start due campaigns, sweep expired delivery leases and re-queue stale deliveries, every --interval seconds."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=float, default=5.0)
        parser.add_argument("--once", action="store_true", help="Run one tick and exit.")

    def handle(self, *args, interval: float, once: bool, **options) -> None:
        while True:
            for line in ticks_run(once=once):
                self.stdout.write(line)
            if once:
                return
            time.sleep(interval)
