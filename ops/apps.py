from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    """Running Signalbox: health endpoints, /metrics, the system status page and what feeds them, and data retention."""

    name = "ops"
    verbose_name = _("Operations")

    def ready(self) -> None:
        from django.core import checks

        from notifications.models import Delivery
        from notifications.scheduling import register_tick
        from notifications.signals import deliveries_swept

        from .checks import metrics_settings_check
        from .receivers import lease_sweeps_count
        from .retention import retention_tick
        from .services import heartbeats_tick, ledger_count_tick

        # After the analytics rollups (order 30): a round purges only days they cover.
        register_tick("retention", retention_tick, order=40)
        register_tick("ledger_count", ledger_count_tick, order=80)
        # Last in the round: a scheduler heartbeat says a whole tick got through, not just that it started.
        register_tick("heartbeats", heartbeats_tick, order=90)
        deliveries_swept.connect(lease_sweeps_count, sender=Delivery, dispatch_uid="ops.lease_sweeps_count")
        checks.register(metrics_settings_check)

        # Last thing at start-up (ops is the last installed app): see ops/heap.py.
        from .heap import startup_heap_freeze

        startup_heap_freeze()
