from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    """Running Signalbox: health endpoints and the heartbeats behind them."""

    name = "ops"
    verbose_name = _("Operations")

    def ready(self) -> None:
        from notifications.scheduling import register_tick

        from .services import heartbeats_tick

        # Last in the round: a scheduler heartbeat says a whole tick got through, not just that it started.
        register_tick("heartbeats", heartbeats_tick, order=90)
