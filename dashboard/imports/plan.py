"""The outcome of an import's check: what writing would do, row by row (plain data, no database)."""

from __future__ import annotations

from dataclasses import dataclass, field

from notifications.models import RecipientProfile

from .validation import CleanRow, RowProblem

SAMPLE_SIZE = 20
DEFAULT_TIMEZONE = "UTC"
DEFAULT_LOCALE = RecipientProfile.Locale.EN


@dataclass(slots=True)
class UserUpdate:
    """An existing user whose row changes something. ``profile_id`` is None when they have no profile yet."""

    line: int
    user_id: int
    email: str
    first_name: str
    last_name: str
    profile_id: int | None
    phone: str
    timezone: str
    locale: str
    user_changed: bool
    profile_changed: bool
    changes: dict[str, list[str]]


@dataclass
class ImportPlan:
    """The outcome of the check: what writing would do, row by row. Nothing is written yet."""

    headers: list[str]
    total: int = 0
    new: list[CleanRow] = field(default_factory=list)
    updates: list[UserUpdate] = field(default_factory=list)
    unchanged_user_ids: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    user_id_watermark: int = 0  # the highest user id when the check started

    @property
    def counts(self) -> dict[str, int]:
        return {
            "total": self.total,
            "new": len(self.new),
            "updated": len(self.updates),
            "unchanged": len(self.unchanged_user_ids),
            "invalid": len(self.problems),
        }

    def samples(self, size: int = SAMPLE_SIZE) -> dict[str, list[dict]]:
        """The first rows of each kind, for the preview page (plain data, stored as JSON)."""
        return {
            "new": [
                {"line": row.line, "email": row.email, "username": row.username,
                 "first_name": row.first_name or "", "last_name": row.last_name or "",
                 "phone": row.phone or "", "timezone": row.timezone or DEFAULT_TIMEZONE,
                 "locale": row.locale or DEFAULT_LOCALE}
                for row in self.new[:size]
            ],
            "updated": [
                {"line": update.line, "email": update.email,
                 "changes": [[name, old, new] for name, (old, new) in update.changes.items()]}
                for update in self.updates[:size]
            ],
        }


@dataclass(frozen=True)
class ImportResult:
    new: int
    updated: int
    unchanged: int
    invalid: int
    audience_added: int = 0
    new_ids: tuple[int, ...] = ()  # the users this import created, e.g. to invite them
