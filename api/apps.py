from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    """The REST API: server keys (admin), endpoints under /api/v1/, schema and local docs."""

    name = "api"
    verbose_name = _("API")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notifications.privacy.kinds import kind_register

        from .personal_data import KINDS

        for kind in KINDS:
            kind_register(kind)  # a person's external id, in exports and erasure
