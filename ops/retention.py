"""Data retention: old ledger rows, Outbox copies, import uploads, report files and audit entries go.

One service for the scheduler's tick and for ``manage.py signalbox_retention``; the dry run is
the same selection, counted instead of deleted. Settings: ``ops.conf.retention()``.

Invariants:
- A delivery goes only when the analytics rollups cover its day (site time zone), and those
  days are frozen first (``analytics_rollup_freeze``), so every figure read from the rollups is
  the same before and after, and no later refresh rebuilds a day from what is left of it.
- Kept whatever their age (``DELIVERY_KEPT``): deliveries still waiting or in flight (planned,
  paused, deferred, sending), those whose outcome is unknown (the only record that a message may
  have gone out), those of a campaign run that is not finished, and in-app deliveries whose
  inbox notification is still unread (reading it records a receipt on the delivery), and those
  opened on a day the rollups may still rebuild (until that day is frozen too). Inbox
  notifications themselves are the recipient's and are never purged; a read one loses only its
  link to the ledger row. Suppressions hold the address itself, so purging never un-suppresses.
- Imports and reports still queued or running are kept; files go with their rows, after commit.
- Deletes run by primary key, at most ``batch`` rows of the kind per statement, one short
  transaction per batch (the delivery's receipts, tracked links and inbox link in the same one),
  so a campaign writing the ledger meanwhile waits at most one batch on SQLite and never on
  PostgreSQL (row locks only, on rows nobody else touches). A round stops after ``tick_budget``.
- Each DELETE re-checks what it selected (a failed delivery retried meanwhile is ``planned``
  again and stays).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from channels_adapters.models import CapturedMessage
from dashboard.analytics.figures import OPEN_KINDS, day_start, site_today
from dashboard.analytics.rollups import analytics_rollup_freeze, rollups_cover_through
from dashboard.models import ImportJob, Report
from notifications.models import (
    AuditEntry,
    CampaignRun,
    Delivery,
    DeliveryEvent,
    Notification,
    TrackedLink,
    WebhookAttempt,
)

from . import conf

logger = logging.getLogger(__name__)

S = Delivery.Status
DELIVERY_KEPT = (S.PLANNED, S.PAUSED, S.DEFERRED, S.SENDING, S.UNKNOWN)
RUN_UNFINISHED = (
    CampaignRun.Status.PLANNING, CampaignRun.Status.AWAITING_APPROVAL, CampaignRun.Status.SENDING, CampaignRun.Status.PAUSED,
)
FILES_BUSY = {"imports": (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING), "reports": (Report.Status.QUEUED, Report.Status.RUNNING)}


@dataclass(frozen=True)
class KindPlan:
    """What one kind would lose now: rows created before ``before``, and their date range."""

    kind: str
    days: int | None  # None: kept forever
    before: datetime | None  # None: nothing may go (kept forever, or no rollups yet for deliveries)
    count: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    note: str = ""


@dataclass
class KindResult:
    kind: str
    deleted: int = 0
    files: int = 0
    file_errors: int = 0
    batches: int = 0
    longest_ms: float = 0.0  # the longest single delete transaction
    finished: bool = True  # False: the round's time ran out with rows left


@dataclass
class RetentionResult:
    kinds: list[KindResult] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return all(result.finished for result in self.kinds)

    @property
    def deleted(self) -> int:
        return sum(result.deleted for result in self.kinds)


# --- What goes -------------------------------------------------------------------------------


def _deliveries_boundary(*, days: int, now: datetime, freeze: bool) -> tuple[datetime | None, str]:
    """Deliveries created before the returned moment may go: the start of the first day that is
    still inside the retention period or not yet in the rollups. With ``freeze`` the days before
    it are made final in the rollups first (the apply path); the dry run only reads."""
    last_day = site_today(now) - timedelta(days=days + 1)  # the last day that is old enough
    if freeze:
        frozen = analytics_rollup_freeze(through=last_day)
    else:
        covered = rollups_cover_through()
        frozen = min(last_day, covered) if covered else None
    if frozen is None:
        return None, "no analytics rollups yet: nothing is purged until they cover a day"
    note = "" if frozen >= last_day else f"waiting for the analytics rollups, which cover days up to {frozen}"
    return day_start(frozen + timedelta(days=1)), note


def _deliveries(before: datetime) -> QuerySet:
    """Deliveries that may go by their own row; ``_deliveries_kept`` then drops, per batch, those
    that something else still holds (two index probes per batch: as a correlated NOT EXISTS in
    this query, PostgreSQL may plan a nested loop over every unread inbox row instead)."""
    unfinished_runs = list(CampaignRun.objects.filter(status__in=RUN_UNFINISHED).values_list("id", flat=True))
    qs = Delivery.objects.filter(created_at__lt=before).exclude(status__in=DELIVERY_KEPT)
    if unfinished_runs:
        qs = qs.exclude(run_id__in=unfinished_runs)
    return qs


def _deliveries_kept(ids: list[int], *, before: datetime) -> set[int]:
    """Of ``ids``, those an unread inbox row still shows, and those opened after ``before``: the
    hour-of-day rollup counts an open on the day it happened, so such a delivery waits until that
    day is past the boundary too (else rebuilding that day would lose the open)."""
    unread = Notification.objects.filter(delivery_id__in=ids, read_at__isnull=True).values_list("delivery_id", flat=True)
    opened = (
        DeliveryEvent.objects.filter(delivery_id__in=ids, occurred_at__gte=before, kind__in=OPEN_KINDS)
        .values_list("delivery_id", flat=True).distinct()
    )
    return {*unread, *opened}


def _candidates(kind: str, before: datetime) -> QuerySet:
    if kind == "deliveries":
        return _deliveries(before)
    if kind == "outbox":
        return CapturedMessage.objects.filter(created_at__lt=before)
    if kind == "imports":
        return ImportJob.objects.filter(created_at__lt=before).exclude(status__in=FILES_BUSY["imports"])
    if kind == "reports":
        return Report.objects.filter(created_at__lt=before).exclude(status__in=FILES_BUSY["reports"])
    if kind == "audit":
        return AuditEntry.objects.filter(created_at__lt=before)
    raise ValueError(f"Unknown retention kind: {kind!r}.")


def _boundary(kind: str, days: int | None, *, now: datetime, freeze: bool) -> tuple[datetime | None, str]:
    if days is None:
        return None, "kept forever"
    if kind == "deliveries":
        return _deliveries_boundary(days=days, now=now, freeze=freeze)
    return now - timedelta(days=days), ""


def retention_plan(*, now: datetime | None = None) -> list[KindPlan]:
    """The dry run: per kind, how many rows would go now and when the oldest and newest were
    created. Reads only: the purge's own walk, counted."""
    now = now or timezone.now()
    settings = conf.retention()
    plans = []
    for kind, days in settings.days.items():
        before, note = _boundary(kind, days, now=now, freeze=False)
        if before is None:
            plans.append(KindPlan(kind=kind, days=days, before=None, note=note))
            continue
        count, oldest, newest = 0, None, None
        for rows in _id_batches(kind, before, size=settings.batch):  # the same walk as the purge, counted
            if rows:
                count += len(rows)
                oldest = oldest or rows[0][0]
                newest = rows[-1][0]
        plans.append(KindPlan(kind=kind, days=days, before=before, count=count, oldest=oldest, newest=newest, note=note))
    return plans


# --- Deleting --------------------------------------------------------------------------------


def _id_batches(kind: str, before: datetime, *, size: int) -> Iterator[list[tuple]]:
    """``(created_at, pk)`` rows of ``kind`` that may go, oldest first, at most ``size`` at a time:
    a keyset walk on ``(created_at, pk)``, so every query is an index range scan from where the
    last one stopped (rows that are kept are not read again), never an OFFSET. A batch may be
    empty when everything in it is kept."""
    qs = _candidates(kind, before)
    after: tuple[datetime, int] | None = None
    while True:
        page = qs
        if after is not None:
            at, pk = after
            page = page.filter(created_at__gte=at).filter(Q(created_at__gt=at) | Q(pk__gt=pk))
        rows = list(page.order_by("created_at", "pk").values_list("created_at", "pk")[:size])
        if not rows:
            return
        fetched, after = len(rows), rows[-1]
        if kind == "deliveries":
            kept = _deliveries_kept([pk for _at, pk in rows], before=before)
            rows = [row for row in rows if row[1] not in kept]
        yield rows
        if fetched < size:
            return


def _delete_deliveries(ids: list[int], *, before: datetime) -> int:
    """One batch of deliveries, with their receipts and tracked links, in the caller's transaction.

    The DELETE re-checks the status (a delivery retried since it was selected stays) and a new
    open (``_opened_since``), and returns the ids it removed; only their children follow.
    """
    quote = connection.ops.quote_name
    table, events = quote(Delivery._meta.db_table), quote(DeliveryEvent._meta.db_table)
    kept = ", ".join(["%s"] * len(DELIVERY_KEPT))
    opens = ", ".join(["%s"] * len(OPEN_KINDS))
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN ({marks}) AND status NOT IN ({kept}) "  # noqa: S608
            f"AND NOT EXISTS (SELECT 1 FROM {events} e WHERE e.delivery_id = {table}.id "
            f"AND e.occurred_at >= %s AND e.kind IN ({opens})) RETURNING id",
            [*ids, *DELIVERY_KEPT, before, *OPEN_KINDS],
        )
        gone = [row[0] for row in cursor.fetchall()]
    if gone:
        # Foreign keys are checked at commit (Django creates them DEFERRABLE INITIALLY DEFERRED).
        DeliveryEvent.objects.filter(delivery_id__in=gone)._raw_delete(DeliveryEvent.objects.db)
        TrackedLink.objects.filter(delivery_id__in=gone)._raw_delete(TrackedLink.objects.db)
        WebhookAttempt.objects.filter(delivery_id__in=gone)._raw_delete(WebhookAttempt.objects.db)  # a webhook post's log
        Notification.objects.filter(delivery_id__in=gone).update(delivery=None)
    return len(gone)


MODELS = {"outbox": CapturedMessage, "imports": ImportJob, "reports": Report, "audit": AuditEntry}
FILE_FIELDS = {"imports": ("file", "error_report"), "reports": ("file",)}


def _delete_rows(kind: str, ids: list[int]) -> tuple[int, list[str]]:
    """One batch of ``kind`` in the caller's transaction: how many rows went, and their files.

    A job or report queued again since it was selected stays (the rows are locked while read,
    so the files returned are exactly those of the rows deleted).
    """
    qs = MODELS[kind].objects.filter(pk__in=ids)
    names: list[str] = []
    if kind in FILES_BUSY:
        qs = qs.exclude(status__in=FILES_BUSY[kind])
        going = list(qs.select_for_update().values_list("pk", *FILE_FIELDS[kind]))
        names = [name for _pk, *files in going for name in files if name]
        qs = MODELS[kind].objects.filter(pk__in=[row[0] for row in going])
    return qs._raw_delete(qs.db), names


def _delete_files(kind: str, names: list[str]) -> tuple[int, int]:
    """Files of rows that are gone (after commit): how many went, how many could not."""
    storage = MODELS[kind]._meta.get_field("file").storage
    deleted = errors = 0
    for name in names:
        try:
            storage.delete(name)
            deleted += 1
        except OSError:
            # The row is gone either way; an orphan file is logged for the operator, never retried.
            logger.warning("Retention: could not delete %s file %s.", kind, name, exc_info=True)
            errors += 1
    return deleted, errors


def retention_apply(
    *,
    now: datetime | None = None,
    budget: timedelta | None = None,
    batch: int | None = None,
    kinds: list[str] | None = None,
    on_batch: Callable[[str, int, float], None] | None = None,
) -> RetentionResult:
    """Purge what the settings say is old, kind after kind, in batches, until done or ``budget``
    (default ``SIGNALBOX_RETENTION_TICK_SECONDS``; ``timedelta.max`` for no limit) runs out.

    ``on_batch(kind, rows, milliseconds)`` is called after each committed batch (the bench
    measures with it). Returns what went per kind; ``finished`` is False when time ran out.
    """
    settings = conf.retention()
    now = now or timezone.now()
    batch = batch or settings.batch
    budget = settings.tick_budget if budget is None else budget
    deadline = time.monotonic() + min(budget.total_seconds(), 10**9)
    result = RetentionResult()
    for kind, days in settings.days.items():
        if kinds is not None and kind not in kinds:
            continue
        outcome = KindResult(kind=kind)
        result.kinds.append(outcome)
        before, _note = _boundary(kind, days, now=now, freeze=True)
        if before is None:
            continue
        for rows in _id_batches(kind, before, size=batch):
            if time.monotonic() >= deadline:
                outcome.finished = False
                break
            if not rows:
                continue
            ids = [row[1] for row in rows]
            started = time.perf_counter()
            names: list[str] = []
            with transaction.atomic():
                if kind == "deliveries":
                    gone = _delete_deliveries(ids, before=before)
                else:
                    gone, names = _delete_rows(kind, ids)
            elapsed_ms = (time.perf_counter() - started) * 1000
            outcome.deleted += gone
            outcome.batches += 1
            outcome.longest_ms = max(outcome.longest_ms, elapsed_ms)
            if names:
                done, errors = _delete_files(kind, names)
                outcome.files += done
                outcome.file_errors += errors
            if on_batch:
                on_batch(kind, gone, elapsed_ms)
        if not outcome.finished:
            break
    if result.deleted:
        logger.info(
            "Retention: deleted %s.", ", ".join(f"{r.deleted} {r.kind}" for r in result.kinds if r.deleted)
        )
    return result


# --- The scheduler's round -------------------------------------------------------------------

_last_round: dict[str, float] = {}


def retention_tick(*, once: bool = False) -> list[str]:
    """The scheduler's retention round (registered in ``OpsConfig.ready()``): every
    ``SIGNALBOX_RETENTION_INTERVAL_SECONDS``, or on the next tick while the last round ran out of
    time with rows left. Several schedulers may purge at once: a row is deleted once, and each
    DELETE is its own short transaction."""
    settings = conf.retention()
    due_at = _last_round.get("finished_at")
    if not once and due_at is not None and time.monotonic() - due_at < settings.interval.total_seconds():
        return []
    result = retention_apply()
    if result.finished:
        _last_round["finished_at"] = time.monotonic()
    if once or result.deleted:
        gone = ", ".join(f"{r.deleted} {r.kind}" for r in result.kinds if r.deleted) or "nothing"
        return [f"retention: deleted {gone}" + ("" if result.finished else " (more next tick)")]
    return []


def describe_day(moment: datetime | None) -> str:
    return timezone.localtime(moment).date().isoformat() if moment else "—"


__all__ = [
    "DELIVERY_KEPT", "KindPlan", "KindResult", "RetentionResult", "describe_day", "retention_apply", "retention_plan",
    "retention_tick",
]