from django.db import models
from django.utils.translation import gettext_lazy as _


class Heartbeat(models.Model):
    """The last time a kind of process proved it works: one row per kind (``ops.services``).

    ``scheduler``: written by the scheduler at the end of every tick. ``worker``: written by
    whichever task worker ran the heartbeat task the scheduler enqueued at ``requested_at``, so its
    age measures that some worker takes tasks, not merely that a worker process exists.
    ``ledger_count``: not a process but the scheduler's count of the ledger (``LedgerCount``).
    """

    SCHEDULER = "scheduler"
    WORKER = "worker"
    LEDGER_COUNT = "ledger_count"  # beat_at: when LedgerCount was last taken; requested_at: a count began

    name = models.CharField(primary_key=True, max_length=40)
    beat_at = models.DateTimeField(null=True, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=200, blank=True)  # host:pid of the process that beat

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")
        # The staff "System status" page (accounts.roles: system.view_status).
        permissions = [("view_system_status", _("Can see the system status page"))]

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at}"


class Counter(models.Model):
    """A running total that only goes up, kept in the database so every process adds to the same one.

    Prometheus counters of this deployment (``ops.metrics``): a process restart must not reset
    them, and several web and worker processes must not each keep their own.
    """

    LEASE_SWEEPS_PREFIX = "lease_sweeps:"  # + how the sweep settled a delivery: requeued, resent, unknown

    name = models.CharField(primary_key=True, max_length=80)
    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("counter")
        verbose_name_plural = _("counters")

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


class LedgerCount(models.Model):
    """How many deliveries the ledger holds per channel and status, at the last count.

    Counting a million-row ledger takes about a second, too long for every scrape of ``/metrics``:
    the scheduler counts every ``SIGNALBOX_METRICS_COUNT_SECONDS`` (``ops.services.ledger_count``)
    and scrapes read these rows. One row per (channel, status) present at the last count, replaced
    as a whole; when that count was taken is the ``ledger_count`` heartbeat's ``beat_at``.
    """

    channel = models.CharField(max_length=16)
    status = models.CharField(max_length=16)
    deliveries = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("ledger count")
        verbose_name_plural = _("ledger counts")
        constraints = [models.UniqueConstraint(fields=["channel", "status"], name="ledgercount_channel_status_uniq")]

    def __str__(self) -> str:
        return f"{self.channel}/{self.status}: {self.deliveries}"
