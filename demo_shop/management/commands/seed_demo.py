"""``manage.py seed_demo``: load (or top up) the demo data and print how to log in."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from demo_shop.seeding.data import DEMO_PASSWORD, demo_data_seed


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Create demo recipients, staff logins, a demo shop and weeks of delivery history. "
        "Idempotent: running it again adds nothing that exists. Refuses to run with DEBUG off "
        f"unless --force is given, because every demo login uses the password {DEMO_PASSWORD!r}."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=_non_negative, default=2000, help="Recipients to create (default 2000).")
        parser.add_argument("--days", type=_non_negative, default=60, help="Days of delivery history (default 60).")
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (never on a production database)."
        )

    def handle(self, *args, users: int, days: int, force: bool, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                _(
                    "seed_demo creates logins with the published password %(password)s, so it refuses to "
                    "run with DEBUG off. Set DEBUG=1, or pass --force if this really is not production."
                )
                % {"password": DEMO_PASSWORD}
            )
        started = time.monotonic()
        result = demo_data_seed(users=users, days=days)
        elapsed = time.monotonic() - started

        self.stdout.write(
            self.style.SUCCESS(_("Demo data ready in %(seconds).1f s (%(users)d recipients, %(days)d days).")
                               % {"seconds": elapsed, "users": users, "days": days})
        )
        width = max(len(str(label)) for label, _created, _total in result.rows)
        created_heading = pgettext("seed summary column", "created")
        total_heading = pgettext("seed summary column", "total")
        self.stdout.write(f"  {'':<{width}}  {created_heading:>8}  {total_heading:>8}")
        for label, created, total in result.rows:
            self.stdout.write(f"  {str(label):<{width}}  {created:>8}  {total:>8}")

        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING(_("Logins")))
        rows = [(_("username"), _("password"), _("role"))]
        rows += [(login.username, DEMO_PASSWORD, str(login.role)) for login in result.logins]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            self.stdout.write("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        self.stdout.write(
            "  " + _("Every seeded recipient (r00001, r00002, ...) uses the same password.")
        )
        self.stdout.write("")
        self.stdout.write(_("Admin: %(url)s") % {"url": settings.SITE_URL + reverse("admin:index")})
        self.stdout.write(_("Inbox: %(url)s") % {"url": settings.SITE_URL + reverse("notifications:inbox")})
