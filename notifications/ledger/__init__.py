"""The delivery ledger pipeline: plan → claim → send → record (DESIGN.md "The pipeline").

Reliability lives here, not in the task queue (the DB backend never retries a task and may
leave one RUNNING after a crash):

* **Plan** inserts ledger rows with a UNIQUE idempotency key, conflicts ignored, so planning the
  same thing twice creates nothing, and enqueues one send task per batch *after commit*.
* **Claim** moves due rows to ``sending`` under a lease owned by one worker: ``SELECT ... FOR
  UPDATE SKIP LOCKED`` where the database has it (PostgreSQL), otherwise a conditional UPDATE
  (SQLite serialises writers, and the WHERE clause re-checks the status).
* **Send** re-checks suppression and hands the batch to the channel adapter, which sends it
  over a bounded number of concurrent connections. Before messages leave they are marked in
  flight (one UPDATE per wave); each outcome is written as it comes back, only while the lease
  is still ours, and a row is ``sent`` only after the provider accepted it.
* **Retry**: transient errors come back as ``deferred`` with exponential backoff and full
  jitter until ``max_attempts``; permanent errors fail at once; an unknown outcome (SMS timeout)
  is ``unknown`` and never re-sent automatically, unless the category is ``at_least_once`` and
  the channel can re-send safely (email, with the same Message-ID).
* **Sweep**: leases that expired (a worker died mid-batch): deliveries never handed off are put
  back in line; in-flight ones follow their category's ``resend_policy`` (re-sent, or
  ``unknown``). Nothing becomes ``sent`` without the provider's word.
"""

from .planning import PlannedDelivery, PlanResult, deliveries_enqueue, deliveries_plan, worker_id
from .recording import (
    DIGEST_PREFIX,
    IN_FLIGHT,
    ResultRecorder,
    SendSummary,
    deliveries_record_results,
    mark_in_flight,
    resend_allowed,
    retry_delay,
)
from .recovery import (
    deliveries_requeue_stale,
    deliveries_retry_failed,
    deliveries_sweep_expired_leases,
    delivery_advance_status,
)
from .sending import deliveries_claim, deliveries_send, delivery_message_key, digest_message, outbound_message

__all__ = [
    "DIGEST_PREFIX", "IN_FLIGHT", "PlanResult", "PlannedDelivery", "ResultRecorder", "SendSummary",
    "deliveries_claim", "deliveries_enqueue", "deliveries_plan", "deliveries_record_results",
    "deliveries_requeue_stale", "deliveries_retry_failed", "deliveries_send", "deliveries_sweep_expired_leases",
    "delivery_advance_status", "delivery_message_key", "digest_message", "mark_in_flight", "outbound_message",
    "resend_allowed", "retry_delay", "worker_id",
]
