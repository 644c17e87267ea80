"""``manage.py signalbox_retention [--dry-run]``: what data retention removes, or remove it now.

The scheduler applies the same service every ``SIGNALBOX_RETENTION_INTERVAL_SECONDS`` within a
time budget per tick; this command runs it to the end (batches of ``SIGNALBOX_RETENTION_BATCH``).
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand

from ops.retention import describe_day, retention_apply, retention_plan


class Command(BaseCommand):
    help = "Delete data older than its retention period (README 'Data retention'); --dry-run only counts it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Print per kind what would be deleted; change nothing.")

    def handle(self, *args, dry_run: bool, **options) -> None:
        for plan in retention_plan():
            kept = "forever" if plan.days is None else f"{plan.days} days"
            line = f"{plan.kind}: kept {kept}; "
            if plan.before is None:
                line += "nothing to delete"
            else:
                line += f"{plan.count} to delete (before {plan.before.isoformat()})"
                if plan.count:
                    line += f", created {describe_day(plan.oldest)} .. {describe_day(plan.newest)}"
            if plan.note:
                line += f" [{plan.note}]"
            self.stdout.write(line)
        if dry_run:
            self.stdout.write("Dry run: nothing was deleted.")
            return
        result = retention_apply(budget=timedelta.max)
        for kind in result.kinds:
            files = f", {kind.files} file(s)" if kind.files or kind.file_errors else ""
            errors = f", {kind.file_errors} file(s) could not be deleted (see the log)" if kind.file_errors else ""
            self.stdout.write(
                f"{kind.kind}: deleted {kind.deleted} row(s){files}{errors} in {kind.batches} batch(es), "
                f"longest {kind.longest_ms:.0f} ms"
            )
