from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = _("Dashboard")

    def ready(self) -> None:
        from .privileges import connect_privilege_audit

        connect_privilege_audit()

        from notifications.scheduling import register_tick

        from .analytics.rollups import analytics_tick

        register_tick("analytics", analytics_tick, order=30)

        from notifications.privacy.kinds import kind_register

        from .imports.personal_data import ImportRowsKind

        kind_register(ImportRowsKind())  # rows of uploaded CSV files that mention a person
