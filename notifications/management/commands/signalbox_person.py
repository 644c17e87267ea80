"""``manage.py signalbox_person``: one person's data, for access and erasure requests.

    manage.py signalbox_person export <id|email|phone> -o person.zip --actor <staff username>
    manage.py signalbox_person erase  <id|email|phone> --actor <staff username> [--yes]

The actor is the staff member answering the request: the services check them against
``accounts.roles`` (``person.export``, ``person.erase``) and audit the change as theirs, exactly as
in the admin. ``erase`` asks for the person's id to be typed unless ``--yes`` is given.
"""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from notifications.privacy import ErasureRefused, PersonNotFound, person_erase, person_export, person_find


class Command(BaseCommand):
    help = "Export everything held about a person as a ZIP, or erase their personal data."

    def add_arguments(self, parser) -> None:
        parser.add_argument("operation", choices=["export", "erase"])
        parser.add_argument("person", help="A user id, an email address or a phone number.")
        parser.add_argument("-o", "--output", help="Where export writes the ZIP ('-' for standard output).")
        parser.add_argument("--actor", required=True, help="Username of the staff member answering the request.")
        parser.add_argument("--yes", action="store_true", help="Erase without asking for the id to be typed.")

    def handle(self, *args, operation: str, person: str, output: str | None, actor: str, yes: bool, **options):
        staff = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: actor}).first()
        if staff is None:
            raise CommandError(f"No user named {actor!r}.")
        try:
            found = person_find(person)
        except PersonNotFound as exc:
            raise CommandError(str(exc)) from None
        try:
            if operation == "export":
                self._export(found, staff, output)
            else:
                self._erase(found, staff, yes)
        except PermissionDenied as exc:
            raise CommandError(str(exc) or "Permission denied.") from None
        except ErasureRefused as exc:
            raise CommandError(str(exc)) from None

    def _export(self, person, staff, output: str | None) -> None:
        if not output:
            raise CommandError("export needs -o FILE (or -o - for standard output).")
        if output == "-":
            counts = person_export(person=person, actor=staff, out=sys.stdout.buffer)
        else:
            with open(output, "wb") as out:
                counts = person_export(person=person, actor=staff, out=out)
        total = sum(counts.values())
        self.stderr.write(f"Exported person #{person.pk}: {total} rows in {len(counts)} kinds.")

    def _erase(self, person, staff, yes: bool) -> None:
        if not yes:
            typed = input(f"Erase person #{person.pk}? This cannot be undone. Type {person.pk} to confirm: ")
            if typed.strip() != str(person.pk):
                raise CommandError("Not confirmed: nothing was erased.")
        rows = person_erase(person=person, actor=staff)
        self.stdout.write(
            f"Erased person #{person.pk}: {rows.get('deliveries', 0)} deliveries and {rows.get('inbox', 0)} "
            "inbox messages anonymised, suppressions kept as keyed hashes."
        )
