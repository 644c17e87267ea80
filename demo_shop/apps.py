from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoShopConfig(AppConfig):
    """A small shop an integrator would recognise, so signal triggers have real models to bind."""

    name = "demo_shop"
    verbose_name = _("Demo shop")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import audiences  # noqa: F401  (registers the shop's audience conditions)
        from . import triggers  # noqa: F401  (registers Customer and Order for signal triggers)

        from notifications.privacy.kinds import kind_register

        from .personal_data import KINDS

        for kind in KINDS:
            kind_register(kind)  # the shop's rows about a person, in exports and erasure
