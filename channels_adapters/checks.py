"""System checks of the channel layer, registered in ``ChannelsAdaptersConfig.ready()``."""

from __future__ import annotations

from django.core import checks


def wechat_token_cache_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn when a WeChat alias keeps its access token in a per-process cache: every worker
    process would fetch its own token, and each fetch retires the others' a few minutes later
    (they then refresh again, and so on)."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    from .handler import channels
    from .wechat import WeChatChannel

    found = []
    for alias in channels.aliases_with_backend(WeChatChannel):
        cache_alias = (channels.settings[alias].get("OPTIONS") or {}).get("cache", "default")
        backend = (getattr(settings, "CACHES", {}).get(cache_alias) or {}).get("BACKEND", "")
        try:
            per_process = issubclass(import_string(backend), import_string(
                "django.core.cache.backends.locmem.LocMemCache"))
        except ImportError:
            per_process = False
        if per_process:
            found.append(checks.Warning(
                f"NOTIFICATION_CHANNELS[{alias!r}] shares its WeChat access token through the cache "
                f"{cache_alias!r}, which each process keeps for itself.",
                hint="Set REDIS_URL (or give the alias OPTIONS['cache'] a cache all workers share), so "
                     "worker processes do not retire each other's access tokens.",
                id="signalbox.W201",
            ))
    return found


def channels_configuration_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Build every configured alias once, so a bad OPTIONS (a missing credential, a timeout of 0)
    stops start-up with its reason instead of failing each delivery later."""
    from .errors import ChannelConfigurationError
    from .handler import channels

    found = []
    try:
        aliases = list(channels.settings)
    except ChannelConfigurationError as error:
        return [checks.Error(str(error), id="signalbox.E202")]
    for alias in aliases:
        try:
            channels[alias]
        except ChannelConfigurationError as error:
            found.append(checks.Error(str(error), hint=f"Fix NOTIFICATION_CHANNELS[{alias!r}]['OPTIONS'].",
                                      id="signalbox.E202"))
    return found
