from django.db import models
from django.utils.translation import gettext_lazy as _


class Heartbeat(models.Model):
    """The last time a kind of process proved it works: one row per kind (``ops.services``).

    ``scheduler``: written by the scheduler at the end of every tick. ``worker``: written by
    whichever task worker ran the heartbeat task the scheduler enqueued at ``requested_at``, so its
    age measures that some worker takes tasks, not merely that a worker process exists.
    """

    SCHEDULER = "scheduler"
    WORKER = "worker"

    name = models.CharField(primary_key=True, max_length=40)
    beat_at = models.DateTimeField(null=True, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=200, blank=True)  # host:pid of the process that beat

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at}"
