"""Analytics pages and the dashboard home's live partials.

Thin views: they read the filters, call ``dashboard.analytics`` selectors and render one page
template, or one of its ``partialdef`` fragments when htmx asks (``request.htmx``). Each URL is
wrapped in ``admin.site.admin_view`` (``dashboard/urls.py``): staff only, never cached; seeing
the figures needs ``notifications.view_delivery`` (Marketers and Managers have it).
"""

from __future__ import annotations

from functools import wraps

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from notifications.ledger.outcomes import RATES
from notifications.models import Campaign, Delivery

from .. import analytics as sel
from ..analytics import AnalyticsFilters, analytics_charts, funnel_stages, runs_progress, status_labels
from .forms import AnalyticsFilterForm, RecipientFilterForm

VIEW_PERMISSION = "notifications.view_delivery"
POLL_ACTIVE = "2s"
POLL_IDLE = "10s"


def can_view_analytics(user) -> bool:
    return user.is_active and user.is_staff and user.has_perm(VIEW_PERMISSION)


def analytics_permission_required(view):
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not can_view_analytics(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _admin_context(request: HttpRequest, title: str, **extra) -> dict:
    request.current_app = admin.site.name
    return {**admin.site.each_context(request), "title": title, **extra}


def _tiles(totals) -> list[dict]:
    """The headline figures above the charts, each with its rate: figures and denominators are
    those of ``notifications.ledger.outcomes`` (``RATES``), as in exports and PDF reports."""
    of = {
        "planned": _("%(rate)s%% of planned"), "sent": _("%(rate)s%% of sent"),
        "delivered": _("%(rate)s%% of delivered"),
    }

    def rate(name: str | None) -> tuple[float | None, str]:
        value = totals.rate(name) if name else None
        if value is None:
            return None, ""
        return 100 * value, of[RATES[name][1]] % {"rate": f"{100 * value:.1f}"}

    tiles = [
        ("planned", _("Planned"), totals.planned, None),
        ("sent", _("Sent"), totals.sent, "sent_rate"),
        ("delivered", _("Delivered"), totals.delivered, "delivered_rate"),
        ("opened", _("Opened / read"), totals.opened, "open_rate"),
        ("clicked", _("Clicked"), totals.clicked, "click_rate"),
        ("failed", _("Failed / bounced"), totals.failed, "failure_rate"),
        ("unsubscribed", _("Unsubscribed"), totals.unsubscribed, "unsubscribe_rate"),
    ]
    return [
        {"key": key, "label": label, "value": value, "rate": r, "rate_label": r_label}
        for key, label, value, (r, r_label) in ((k, lab, v, rate(n)) for k, lab, v, n in tiles)
    ]


def _figures_context(filters: AnalyticsFilters) -> dict:
    figures = sel.analytics_figures(filters=filters)
    names = sel.campaign_names(figures.by_campaign)
    top = [
        {"id": campaign_id, "name": names.get(campaign_id, "—"), "counters": counters}
        for campaign_id, counters in figures.by_campaign.items()
        if campaign_id != sel.NO_CAMPAIGN
    ][:10]
    outside = figures.by_campaign.get(sel.NO_CAMPAIGN)
    return {
        "figures": figures,
        "totals": figures.totals,
        "tiles": _tiles(figures.totals),
        "time_zone": timezone.get_default_timezone_name(),
        "funnel": funnel_stages(figures.totals),
        "charts": analytics_charts(figures),
        "top_campaigns": top,
        "outside_campaigns": outside,
        "status_labels": status_labels(),
    }


# --- Analytics page --------------------------------------------------------------------------


@analytics_permission_required
def analytics_page(request: HttpRequest) -> HttpResponse:
    campaign_id = request.GET.get("campaign")
    campaigns, categories = sel.filter_choices(campaign_id=int(campaign_id) if (campaign_id or "").isdigit() else None)
    form = AnalyticsFilterForm(request.GET or None, campaigns=campaigns, categories=categories,
                               journeys=sel.journey_choices())
    filters = AnalyticsFilters(
        days=form.days(), campaign_id=form.value("campaign"), channel=form.value("channel") or None,
        category_id=form.value("category"), journey_id=form.value("journey"),
    )
    context = {"form": form, "filters": filters, **_figures_context(filters),
               "broadcasts": sel.broadcast_figures(filters=filters)}
    if request.htmx:
        return TemplateResponse(request, "dashboard/analytics.html#analytics-body", context)
    return TemplateResponse(request, "dashboard/analytics.html", {**_admin_context(request, _("Analytics")), **context})


# --- Per-campaign page -----------------------------------------------------------------------


@analytics_permission_required
def campaign_page(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("category", "audience"), pk=pk)
    runs = sel.campaign_runs(campaign_id=campaign.pk)
    form = AnalyticsFilterForm(request.GET or None, default_days=sel.campaign_days(campaign=campaign, runs=runs))
    filters = AnalyticsFilters(days=form.days(), campaign_id=campaign.pk, channel=form.value("channel") or None)
    figures_context = _figures_context(filters)
    by_run = figures_context["figures"].by_run
    context = {
        "campaign": campaign,
        "form": form,
        "filters": filters,
        "runs": [{"run": run, "counters": by_run.get(run.pk)} for run in runs],
        **figures_context,
    }
    if request.htmx:
        return TemplateResponse(request, "dashboard/campaign.html#campaign-body", context)
    recipients_form = RecipientFilterForm(runs=[(run.pk, _run_label(run)) for run in runs])
    context.update(
        recipients_form=recipients_form,
        recipients=sel.campaign_recipients(run_ids=[run.pk for run in runs]),
        purged_before=_purged_before(campaign, runs),
        **progress_context(campaign_id=campaign.pk),
    )
    return TemplateResponse(request, "dashboard/campaign.html", {**_admin_context(request, campaign.name), **context})


def _purged_before(campaign, runs) -> object:
    """The day before which data retention deleted this campaign's recipient rows, if it did."""
    return sel.details_purged_before(since=sel.campaign_days(campaign=campaign, runs=runs).start)


def _run_label(run) -> str:
    return f"{date_format(timezone.localtime(run.occurrence), 'SHORT_DATETIME_FORMAT')} · {run.get_status_display()}"


@analytics_permission_required
def campaign_recipients_partial(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    runs = sel.campaign_runs(campaign_id=campaign.pk)
    form = RecipientFilterForm(request.GET, runs=[(run.pk, _run_label(run)) for run in runs])
    run_ids = [run.pk for run in runs]
    if form.is_valid() and form.value("run") in run_ids:
        run_ids = [form.value("run")]
    page = sel.campaign_recipients(
        run_ids=run_ids if form.is_valid() else [],
        status=form.value("status") or None,
        channel=form.value("channel") or None,
        search=form.value("q") or "",
        before=form.value("before"),
        after=form.value("after"),
    )
    context = {
        "campaign": campaign, "recipients_form": form, "recipients": page, "status_labels": status_labels(),
        "purged_before": _purged_before(campaign, runs),
    }
    return TemplateResponse(request, "dashboard/campaign.html#recipients", context)


@analytics_permission_required
def delivery_timeline_partial(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(Delivery.objects.to_people().only("id", "created_at", "status", "status_reason", "last_error"), pk=pk)
    context = {"delivery": delivery, "events": sel.delivery_timeline(delivery_id=delivery.pk)}
    return TemplateResponse(request, "dashboard/campaign.html#timeline", context)


# --- Dashboard home partials ------------------------------------------------------------------


def progress_context(*, campaign_id: int | None = None) -> dict:
    runs = runs_progress(campaign_id=campaign_id)
    return {
        "runs_progress": runs,
        "progress_campaign": campaign_id,
        "progress_poll": POLL_ACTIVE if any(r.is_active for r in runs) else POLL_IDLE,
    }


@analytics_permission_required
def runs_progress_partial(request: HttpRequest) -> HttpResponse:
    campaign = request.GET.get("campaign")
    context = progress_context(campaign_id=int(campaign) if (campaign or "").isdigit() else None)
    return TemplateResponse(request, "dashboard/_runs_progress.html", context)


# A rise is bad news for these.
KPIS_BAD_WHEN_UP = frozenset({"failed", "unsubscribed"})


def home_kpis_context(days: int) -> dict:
    period = sel.kpis_compare(days=days)
    labels = {
        "sent": _("Sent"), "delivered": _("Delivered"), "opened": _("Opened / read"), "clicked": _("Clicked"),
        "failed": _("Failed / bounced"), "unsubscribed": _("Unsubscribed"),
    }
    kpis = []
    for kpi in period.kpis:
        change = kpi.change
        direction = "flat" if not change else ("up" if change > 0 else "down")
        kpis.append({
            "key": kpi.key, "label": labels[kpi.key], "value": kpi.value, "previous": kpi.previous,
            "change_percent": None if change is None else round(100 * change, 1),
            "direction": direction,
            "good": direction == "flat" or (direction == "up") != (kpi.key in KPIS_BAD_WHEN_UP),
        })
    return {"kpi_period": period, "kpi_days": days, "kpi_rows": kpis, "kpi_choices": (7, 30)}


@analytics_permission_required
def home_kpis_partial(request: HttpRequest) -> HttpResponse:
    days = 7 if request.GET.get("days") == "7" else 30
    return TemplateResponse(request, "admin/index.html#analytics-kpis", home_kpis_context(days))
