"""Callbacks named in ``settings.UNFOLD``."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.roles import allows
from notifications.campaigns.approval_desk import awaiting_approval

from . import selectors
from .analytics import recent_failures, scheduled_campaigns


def environment_callback(request):
    """The coloured label in the admin header: which setup this is."""
    if settings.DEBUG:
        return [_("Development"), "warning"]
    return None


def dashboard_callback(request, context):
    """The admin home: overview cards for all staff; figures, live runs and failures for those who
    may see deliveries (``notifications.view_delivery``), scheduled campaigns for those who may see
    campaigns."""
    from .views.analytics import can_view_analytics, home_kpis_context, progress_context  # noqa: PLC0415

    user = request.user
    if can_view_analytics(user):
        kpis = home_kpis_context(7)
        context.update(
            analytics=True,
            kpis=selectors.overview_kpis(week=kpis["kpi_period"].totals),  # the same 7 days: computed once
            failures=recent_failures(),
            **kpis,
            **progress_context(),
        )
    else:
        context["kpis"] = selectors.overview_kpis()
    if user.has_perm("notifications.view_campaign"):
        context["scheduled"] = scheduled_campaigns()
    if allows(user, "campaign.approve"):
        context["awaiting_approval"] = awaiting_approval()
    return context
