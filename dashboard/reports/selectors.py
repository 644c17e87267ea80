"""Reads for the report pages: a user's recent reports, and pages of the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils import timezone

from dashboard.models import Report
from notifications.models import AuditEntry

RECENT_REPORTS = 20
AUDIT_PAGE_SIZE = 50
AUDIT_ACTIONS_CACHE_KEY = "dashboard:audit-actions:v1"
AUDIT_ACTIONS_CACHE_SECONDS = 300
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reports_recent(*, user, limit: int = RECENT_REPORTS) -> list[Report]:
    """The user's latest reports, newest first (``report_owner_idx``): one query."""
    return list(Report.objects.filter(created_by=user).order_by("-created_at", "-pk")[:limit])


def audit_actions() -> list[str]:
    """The distinct actions in the audit log, for the filter's choices (cached: a full index scan)."""
    actions = cache.get(AUDIT_ACTIONS_CACHE_KEY)
    if actions is None:
        actions = sorted(AuditEntry.objects.order_by().values_list("action", flat=True).distinct())
        cache.set(AUDIT_ACTIONS_CACHE_KEY, actions, AUDIT_ACTIONS_CACHE_SECONDS)
    return actions


@dataclass(frozen=True)
class AuditFilters:
    date_from: date | None = None
    date_to: date | None = None
    actor_id: int | None = None
    action: str = ""
    target_type_id: int | None = None
    search: str = ""


@dataclass(frozen=True)
class AuditCursor:
    """Where a page of the log starts: strictly older than (created_at, id)."""

    created_at: datetime
    pk: int

    def encode(self) -> str:
        micros = (self.created_at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}-{self.pk}"

    @classmethod
    def decode(cls, value: str) -> AuditCursor | None:
        try:
            micros, pk = (int(part) for part in value.split("-", 1))
        except (TypeError, ValueError):
            return None
        return cls(created_at=_EPOCH + timedelta(microseconds=micros), pk=pk)


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: AuditCursor | None


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def audit_entries(*, filters: AuditFilters) -> QuerySet[AuditEntry]:
    """Newest first, in the order of ``audit_created_idx``; each filter matches an index column
    (``actor``'s foreign-key index, ``audit_action_idx``, ``audit_target_idx``) except the search.
    """
    qs = AuditEntry.objects.select_related("target_type").order_by("-created_at", "-id")
    if filters.date_from:
        qs = qs.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        qs = qs.filter(created_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.actor_id:
        qs = qs.filter(actor_id=filters.actor_id)
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.target_type_id:
        qs = qs.filter(target_type_id=filters.target_type_id)
    if filters.search:
        term = filters.search
        qs = qs.filter(
            Q(actor_repr__icontains=term) | Q(target_repr__icontains=term) | Q(action__icontains=term)
            | Q(target_id=term)
        )
    return qs


def audit_page(*, filters: AuditFilters, after: AuditCursor | None = None, size: int | None = None) -> AuditPage:
    """One page of the log (keyset pagination: no COUNT, no OFFSET, as fast on page 1,000 as on page 1)."""
    size = size or AUDIT_PAGE_SIZE
    qs = audit_entries(filters=filters)
    if after is not None:
        qs = qs.filter(Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, id__lt=after.pk))
    rows = list(qs[: size + 1])
    entries = rows[:size]
    next_cursor = AuditCursor(created_at=entries[-1].created_at, pk=entries[-1].pk) if len(rows) > size else None
    return AuditPage(entries=entries, next_cursor=next_cursor)
