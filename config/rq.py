"""The RQ worker Signalbox runs: ``manage.py rqworker default --with-scheduler
--job-class django_tasks_rq.Job --worker-class config.rq.Worker``.

RQ's default worker forks a "work horse" process for every job. For Signalbox's jobs (a send
batch of a hundred messages, a planning chunk) that fork is most of the cost: the child starts
with no database connection and no SMTP or HTTP session, so every job pays for a fresh
connection, and the parent's memory is copied page by page as the child touches it. Signalbox's
jobs keep no state between runs and every job is idempotent (claims and ledger keys), so they run
in the worker process itself, one after another, reusing its connections.

What a fork bought: a job that leaks memory or crashes the interpreter takes only its horse with
it. Here it takes the worker, which the process manager restarts; its claimed deliveries come back
when their lease expires. Database connections are checked between jobs as Django checks them
between requests (``CONN_MAX_AGE``, ``CONN_HEALTH_CHECKS``).
"""

from __future__ import annotations

from django.db import close_old_connections
from rq.worker import SimpleWorker


class Worker(SimpleWorker):
    """RQ's ``SimpleWorker`` (jobs run in this process) with Django's connection hygiene."""

    def execute_job(self, job, queue):
        close_old_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            close_old_connections()
