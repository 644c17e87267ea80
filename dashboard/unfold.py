"""Callbacks named in ``settings.UNFOLD``."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from . import selectors


def environment_callback(request):
    """The coloured label in the admin header: which setup this is."""
    if settings.DEBUG:
        return [_("Development"), "warning"]
    return None


def dashboard_callback(request, context):
    context["kpis"] = selectors.overview_kpis()
    return context
