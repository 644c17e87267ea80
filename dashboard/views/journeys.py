"""The journey analytics pages: every journey with its headline figures, and one journey's page
(funnel per step, exits, conversions and time to convert, split arms, the messages it sent).

Thin views over ``dashboard.analytics.journeys``; seeing them needs the analytics permission
(``notifications.view_delivery``), as the campaign page does.
"""

from __future__ import annotations

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from notifications.models import Journey, JourneyEnrollment

from ..analytics.journeys import journey_figures, journey_funnel_chart
from .analytics import _admin_context, analytics_permission_required

State = JourneyEnrollment.State


def duration_text(span) -> str:
    """A time to convert for people: "2 d 4 h", "3 h 20 min", "45 min"; "—" when there is none."""
    if span is None:
        return "—"
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("%(days)d d %(hours)d h") % {"days": days, "hours": hours}
    if hours:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d min") % {"minutes": minutes}


def _reason_text(reason: str) -> str:
    """Why an enrollment ended, in words (the engine's ``state_reason`` codes)."""
    fixed = {"end": _("reached the end"), "exit_step": _("an exit step"), "opted_out": _("opted out of the category"),
             "journey_stopped": _("the journey was stopped"), "missing_step": _("a step was missing")}
    if reason in fixed:
        return fixed[reason]
    kind, _colon, name = reason.partition(":")
    if kind == "exit" and name:
        return _("exit condition “%(name)s”") % {"name": name}
    return reason


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.1f}%"


@analytics_permission_required
def journeys_page(request: HttpRequest) -> HttpResponse:
    """Every journey with its enrollments and conversions (two queries whatever the count)."""
    journeys = (Journey.objects.select_related("current_version")
                .annotate(entered=Count("enrollments"),
                          converted=Count("enrollments", filter=Q(enrollments__state=State.CONVERTED)),
                          active=Count("enrollments", filter=Q(enrollments__state=State.ACTIVE)))
                .order_by("name"))
    context = {"journeys": journeys}
    return TemplateResponse(request, "dashboard/journeys.html", {**_admin_context(request, _("Journey analytics")),
                                                                  **context})


@analytics_permission_required
def journey_page(request: HttpRequest, pk: int) -> HttpResponse:
    journey = get_object_or_404(Journey.objects.select_related("category"), pk=pk)
    versions = list(journey.versions.order_by("-number"))
    wanted = request.GET.get("version", "")
    version = next((v for v in versions if str(v.number) == wanted), None)
    if version is None:
        version = next((v for v in versions if v.pk == journey.current_version_id), versions[0] if versions else None)
    context = {"journey": journey, "versions": versions, "version": version}
    if version is not None:
        figures = journey_figures(version=version)
        labels = dict(State.choices)
        context.update(
            figures=figures, chart=journey_funnel_chart(figures),
            median_text=duration_text(figures.time_to_convert_median),
            p90_text=duration_text(figures.time_to_convert_p90),
            conversion_percent=_percent(figures.conversion_rate),
            exits=[(state, labels.get(state, state), _reason_text(reason), n) for state, reason, n in figures.exits],
            splits=[{"step_id": split.step_id, "note": split.note,
                     "rows": [{"name": arm.name, "entered": arm.entered, "converted": arm.converted,
                               "percent": _percent(arm.rate)} for arm in split.arms]}
                    for split in figures.splits],
        )
    if request.htmx:
        return TemplateResponse(request, "dashboard/journey.html#journey-body", context)
    return TemplateResponse(request, "dashboard/journey.html", {**_admin_context(request, journey.name), **context})
