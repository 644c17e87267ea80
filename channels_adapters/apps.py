from django.apps import AppConfig
from django.core.signals import setting_changed
from django.utils.translation import gettext_lazy as _


class ChannelsAdaptersConfig(AppConfig):
    name = "channels_adapters"
    verbose_name = _("Channels")

    def ready(self) -> None:
        from django.core import checks

        from .checks import channels_configuration_check, wechat_token_cache_check
        from .handler import reset_on_setting_changed

        checks.register(wechat_token_cache_check)
        checks.register(channels_configuration_check)

        # Tests that change NOTIFICATION_CHANNELS get adapters built from the new value.
        setting_changed.connect(reset_on_setting_changed, dispatch_uid="channels_adapters_reset_on_setting_changed")
