"""The delivery ledger pipeline: plan → claim → send → record (DESIGN.md "The pipeline").

Reliability lives here, not in the task queue (the DB backend never retries a task and may
leave one RUNNING after a crash):

* **Plan** inserts ledger rows with a UNIQUE idempotency key, conflicts ignored, so planning the
  same thing twice creates nothing, and enqueues one send task per batch *after commit*.
* **Claim** moves due rows to ``sending`` under a lease owned by one worker: ``SELECT ... FOR
  UPDATE SKIP LOCKED`` where the database has it (PostgreSQL), otherwise a conditional UPDATE
  (SQLite serialises writers, and the WHERE clause re-checks the status).
* **Send** re-checks suppression, hands the batch to the channel adapter and records each
  result. Results are only written while the lease is still ours, and a row is ``sent`` only
  after the provider accepted it.
* **Retry**: transient errors come back as ``deferred`` with exponential backoff and full
  jitter until ``max_attempts``; permanent errors fail at once; an unknown outcome (SMS timeout)
  is ``unknown`` and never re-sent automatically.
* **Sweep**: leases that expired (a worker died mid-batch) are put back to ``deferred`` and
  re-enqueued, except on channels where a re-send could duplicate a message that may have gone
  out (``UNKNOWN_ON_LOST_LEASE``), which become ``unknown``.
"""

from .planning import PlannedDelivery, PlanResult, deliveries_enqueue, deliveries_plan, worker_id
from .recovery import (
    UNKNOWN_ON_LOST_LEASE,
    deliveries_requeue_stale,
    deliveries_retry_failed,
    deliveries_sweep_expired_leases,
    delivery_advance_status,
)
from .sending import (
    DIGEST_PREFIX,
    HANDED_OFF,
    SendSummary,
    deliveries_claim,
    deliveries_record_results,
    deliveries_send,
    digest_message,
    outbound_message,
    retry_delay,
)

__all__ = [
    "DIGEST_PREFIX", "HANDED_OFF", "UNKNOWN_ON_LOST_LEASE", "PlanResult", "PlannedDelivery", "SendSummary",
    "deliveries_claim", "deliveries_enqueue", "deliveries_plan", "deliveries_record_results",
    "deliveries_requeue_stale", "deliveries_retry_failed", "deliveries_send", "deliveries_sweep_expired_leases",
    "delivery_advance_status", "digest_message", "outbound_message", "retry_delay", "worker_id",
]
