"""System checks of the ops app's settings."""

from __future__ import annotations

from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured

from . import conf


def metrics_settings_check(app_configs=None, **kwargs) -> list[Error]:
    try:
        conf.metrics()
    except ImproperlyConfigured as error:
        return [Error(str(error), id="ops.E001")]
    return []
