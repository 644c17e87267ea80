from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsAdaptersConfig(AppConfig):
    name = "channels_adapters"
    verbose_name = _("Channels")
