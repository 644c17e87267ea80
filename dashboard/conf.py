"""Dashboard app settings (CSV user import), read in one place with their defaults.

| setting | default | what |
|---|---|---|
| ``SIGNALBOX_IMPORT_MAX_BYTES`` | 20 MB | largest CSV file an operator may upload |
| ``SIGNALBOX_IMPORT_MAX_ROWS`` | 200,000 | most data rows in one file |
| ``SIGNALBOX_IMPORT_MAX_COLUMNS`` | 200 | most columns (values on one line) in one file |
| ``SIGNALBOX_IMPORT_MAX_LINE_CHARS`` | 100,000 | most characters on one line (or in one record that spans lines) |
| ``SIGNALBOX_IMPORT_SYNC_ROWS`` | 5,000 | files with more rows are imported by a background task |
| ``SIGNALBOX_IMPORT_PHONE_REGION`` | ``""`` | ISO country (``"CN"``, ``"US"``) for phone numbers written without ``+``; empty: only international numbers are accepted |
"""

from __future__ import annotations

import phonenumbers
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _positive_int(name: str, default: int) -> int:
    value = int(getattr(settings, name, default))
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive number.")
    return value


def import_max_bytes() -> int:
    return _positive_int("SIGNALBOX_IMPORT_MAX_BYTES", 20 * 1024 * 1024)


def import_max_rows() -> int:
    return _positive_int("SIGNALBOX_IMPORT_MAX_ROWS", 200_000)


def import_sync_rows() -> int:
    """Imports of at most this many rows run inside the confirming request; bigger ones are tasks."""
    return _positive_int("SIGNALBOX_IMPORT_SYNC_ROWS", 5_000)


def import_phone_region() -> str | None:
    """The region national phone numbers are read in, or None to require ``+country code``."""
    region = (getattr(settings, "SIGNALBOX_IMPORT_PHONE_REGION", "") or "").upper()
    if not region:
        return None
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ImproperlyConfigured(
            f"SIGNALBOX_IMPORT_PHONE_REGION={region!r} is not a region phonenumbers knows (e.g. 'CN', 'US')."
        )
    return region


def import_max_columns() -> int:
    """Most columns a file may have (the header and every line): the mapping page lists them all."""
    return _positive_int("SIGNALBOX_IMPORT_MAX_COLUMNS", 200)


def import_max_line_chars() -> int:
    """Most characters on one line of a file (and in one record spanning lines)."""
    return _positive_int("SIGNALBOX_IMPORT_MAX_LINE_CHARS", 100_000)
