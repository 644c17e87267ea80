"""Builds channel adapters from ``NOTIFICATION_CHANNELS`` (the shape of ``STORAGES``/``TASKS``)::

    NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": "channels_adapters.email.EmailChannel", "OPTIONS": {...}},
    }

``channels["email"]`` returns that alias's adapter, built once per thread. When the setting
changes (tests using the ``settings`` fixture or ``override_settings``), the ``setting_changed``
receiver connected in ``ChannelsAdaptersConfig.ready()`` calls ``channels.reset()``, so the next
lookup reads the new setting. Call ``reset()`` yourself if you change the setting another way.
"""

from __future__ import annotations

from typing import Any

from asgiref.local import Local
from django.conf import settings as django_settings
from django.utils.connection import BaseConnectionHandler
from django.utils.module_loading import import_string

from .base import BaseChannel
from .conf import DEFAULT_CHANNELS
from .errors import ChannelConfigurationError
from .features import ChannelFeatures, features_for_alias


#: Channel values the ledger keeps for deliveries no adapter sends: ``webhook`` marks an outbound
#: webhook post (``notifications.webhooks``), sent by its endpoint's drain. No alias may take one.
RESERVED_ALIASES = frozenset({"webhook"})


class ChannelHandler(BaseConnectionHandler):
    settings_name = "NOTIFICATION_CHANNELS"
    exception_class = ChannelConfigurationError

    def __init__(self, settings: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__(settings)
        # BaseConnectionHandler overwrites ``_settings`` once configured; keep what was passed
        # so ``reset()`` can tell "read the Django setting again" from "use this dict".
        self._explicit_settings = settings
        # Features never differ between threads (every thread builds its adapter from the same
        # setting), so they are kept once per alias: planning asks for them per recipient, and
        # each adapter lookup goes through a thread-local.
        self._features: dict[str, ChannelFeatures] = {}

    def configure_settings(self, settings: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
        if settings is None:
            settings = getattr(django_settings, self.settings_name, DEFAULT_CHANNELS)
        if not isinstance(settings, dict):
            raise ChannelConfigurationError(f"{self.settings_name} must be a dict of aliases, not {type(settings).__name__}.")
        for alias, config in settings.items():
            if alias in RESERVED_ALIASES:
                raise ChannelConfigurationError(
                    f"{self.settings_name}[{alias!r}]: {alias!r} is reserved (the ledger's outbound webhook posts); "
                    "name the channel otherwise.")
            if not isinstance(config, dict) or "BACKEND" not in config:
                raise ChannelConfigurationError(f"{self.settings_name}[{alias!r}] must be a dict with a BACKEND.")
        return settings

    def __getitem__(self, alias: str) -> BaseChannel:
        if alias not in self.settings:
            configured = ", ".join(sorted(self.settings)) or "none"
            raise ChannelConfigurationError(
                f"No channel {alias!r} in {self.settings_name} (configured: {configured})."
            )
        return super().__getitem__(alias)

    def features(self, alias: str) -> ChannelFeatures:
        """What the channel ``alias`` can do: its adapter's features, or, for an alias that is not
        configured here, those of the standard channel of that name (an SMS number arriving on a
        webhook is compared in E.164 even where SMS is not sent)."""
        features = self._features.get(alias)
        if features is None:
            features = self[alias].features if alias in self.settings else features_for_alias(alias)
            self._features[alias] = features
        return features

    def aliases_where(self, fact: str) -> list[str]:
        """The configured aliases whose adapter declares ``fact`` (a boolean feature)."""
        return [alias for alias in self.settings if getattr(self[alias].features, fact)]

    def aliases_with_backend(self, backend: type[BaseChannel]) -> list[str]:
        """The configured aliases built from ``backend`` or a subclass (whose provider sends the
        receipts a webhook receives), read from the setting without building any adapter; with
        them, the aliases routing some of their messages through one (``sms_routes.SmsRoutes``):
        their deliveries carry that provider's ids."""
        classes = {alias: self._backend_class(config) for alias, config in self.settings.items()}
        direct = {alias for alias, cls in classes.items() if cls is not None and issubclass(cls, backend)}
        found = []
        for alias, backend_class in classes.items():
            if alias in direct:
                found.append(alias)
            elif backend_class is not None and hasattr(backend_class, "routed_aliases"):
                if backend_class.routed_aliases(self.settings[alias].get("OPTIONS") or {}) & direct:
                    found.append(alias)
        return found

    @staticmethod
    def _backend_class(config: dict) -> type | None:
        try:
            backend_class = import_string(config["BACKEND"])
        except ImportError:
            return None
        return backend_class if isinstance(backend_class, type) else None

    def create_connection(self, alias: str) -> BaseChannel:
        config = self.settings[alias]
        path = config["BACKEND"]
        try:
            backend_class = import_string(path)
        except ImportError as error:
            raise ChannelConfigurationError(
                f"{self.settings_name}[{alias!r}]: cannot import BACKEND {path!r}: {error}"
            ) from error
        if not (isinstance(backend_class, type) and issubclass(backend_class, BaseChannel)):
            raise ChannelConfigurationError(
                f"{self.settings_name}[{alias!r}]: BACKEND {path!r} is not a BaseChannel subclass."
            )
        options = config.get("OPTIONS", {})
        try:
            return backend_class(alias, **options)
        except TypeError as error:
            raise ChannelConfigurationError(f"{self.settings_name}[{alias!r}]: bad OPTIONS: {error}") from error

    def reset(self) -> None:
        """Forget the built adapters (in every thread) and re-read the setting on next use."""
        self._connections = Local(self.thread_critical)
        self._settings = self._explicit_settings
        self._features = {}
        self.__dict__.pop("settings", None)


channels = ChannelHandler()


def reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == ChannelHandler.settings_name:
        channels.reset()
