"""Staff pages: "Reports & exports" (exports, PDF reports, my reports, downloads) and the audit log.

Thin views (STYLE.md): forms turn requests into ``ReportFilters``; ``dashboard.reports.services``
checks permissions, audits and does the work; ``selectors`` read. Every view is wrapped in
``admin.site.admin_view`` by ``report_urls`` (staff login, ``never_cache``, CSRF); state changes
are POST. Files are only ever served here, after the permission and ownership check, as
attachments: ``MEDIA_ROOT`` has no public URL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import PurePath
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from dashboard.analytics.rollups import details_purged_before
from dashboard.models import Report
from notifications.models import AuditEntry, Campaign

from .reports import exports, selectors, services
from .reports.forms import (
    AuditFilterForm,
    CampaignReportForm,
    ExportForm,
    PeriodReportForm,
)
from .reports.selectors import AuditCursor, AuditFilters

INDEX_TEMPLATE = "dashboard/reports/index.html"
AUDIT_TEMPLATE = "dashboard/reports/audit_log.html"
AUDIT_PERMISSION = "notifications.view_auditentry"
CHANGES_SHOWN = 300
POLL_FOR = timedelta(hours=1)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    return response


# --- Reports & exports ------------------------------------------------------------------------


def _params_summary(report: Report, campaign_names: dict[int, str]) -> str:
    params = report.params or {}
    parts = []
    if campaign_id := params.get("campaign_id"):
        parts.append(campaign_names.get(campaign_id, _("campaign #%(id)s") % {"id": campaign_id}))
    if params.get("date_from") or params.get("date_to"):
        parts.append(f"{params.get('date_from') or '…'} → {params.get('date_to') or '…'}")
    for key in ("channel", "status", "receipt_kind"):
        if params.get(key):
            parts.append(params[key])
    return " · ".join(parts) or _("everything")


def _watched(request: HttpRequest) -> int | None:
    """The report this page was opened to wait for (``?watch=<id>``): its status is announced and
    its file downloaded when ready."""
    raw = request.GET.get("watch", "")
    return int(raw) if raw.isdigit() else None


def _my_reports_context(request: HttpRequest) -> dict:
    reports = selectors.reports_recent(user=request.user)
    campaign_ids = {r.params.get("campaign_id") for r in reports if (r.params or {}).get("campaign_id")}
    names = dict(Campaign.objects.filter(pk__in=campaign_ids).values_list("pk", "name")) if campaign_ids else {}
    watch = _watched(request)
    rows = [
        {
            "id": report.pk,
            "title": report.get_kind_display(),
            # PDF reports say so in their name; exports name their format.
            "format": "" if report.kind in services.PDF_KINDS else report.get_format_display(),
            "scope": _params_summary(report, names),
            "requested": report.created_at,
            "status": report.status,
            "status_label": report.get_status_display(),
            "rows": report.rows,
            "error": report.error,
            "download_url": reverse("reports:download", args=[report.pk])
            if report.status == Report.Status.READY and services.report_can_download(user=request.user, report=report)
            else "",
            "watched": report.pk == watch,
        }
        for report in reports
    ]
    # Poll while something is being generated, but not forever for a report a crashed worker
    # left behind (the DB task backend does not retry).
    recent = timezone.now() - POLL_FOR
    pending = any(
        row["status"] in (Report.Status.QUEUED, Report.Status.RUNNING) and row["requested"] > recent for row in rows
    )
    watched = next((row for row in rows if row["watched"]), None)
    poll_url = reverse("reports:mine") + (f"?watch={watch}" if watched else "")
    return {"my_reports": rows, "reports_pending": pending, "watched_report": watched, "poll_url": poll_url}


def _render_index(request: HttpRequest, **forms) -> TemplateResponse:
    user = request.user
    if not services.can_use_reports(user):
        raise PermissionDenied
    can_export = user.has_perm(services.EXPORT_PERMISSION)
    can_pdf = user.has_perm(services.PDF_PERMISSION)
    context = {
        **admin.site.each_context(request),
        "title": _("Reports & exports"),
        "can_export": can_export,
        "can_pdf": can_pdf,
        "export_form": forms.get("export_form") or (ExportForm(prefix="export") if can_export else None),
        "campaign_form": forms.get("campaign_form") or (CampaignReportForm(prefix="campaign") if can_pdf else None),
        "period_form": forms.get("period_form") or (PeriodReportForm(prefix="period") if can_pdf else None),
        "inline_rows": services.inline_row_limit(),
        "purged_before": details_purged_before(),
        **_my_reports_context(request),
    }
    return TemplateResponse(request, INDEX_TEMPLATE, context)


@require_GET
def reports_index(request: HttpRequest) -> HttpResponse:
    return _render_index(request)


@require_GET
def my_reports(request: HttpRequest) -> HttpResponse:
    """The "My reports" list alone: what the page polls (htmx) while a report is being generated."""
    if not services.can_use_reports(request.user):
        raise PermissionDenied
    return TemplateResponse(request, f"{INDEX_TEMPLATE}#my-reports", _my_reports_context(request))


@require_POST
def export(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(services.EXPORT_PERMISSION):
        raise PermissionDenied
    form = ExportForm(request.POST, prefix="export")
    if not form.is_valid():
        return _render_index(request, export_form=form)
    result = services.export_start(
        actor=request.user, kind=form.cleaned_data["kind"], format=form.cleaned_data["format"],
        filters=form.filters(), language=request.LANGUAGE_CODE,
    )
    if isinstance(result, Report):
        return _after_request(request, result, download_when_ready=False)
    if result.chunks is not None:
        chunks = exports.async_chunks(result.chunks) if isinstance(request, ASGIRequest) else result.chunks
        response = StreamingHttpResponse(chunks, content_type=result.content_type)
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=result.filename)
    else:
        response = FileResponse(result.file, as_attachment=True, filename=result.filename, content_type=result.content_type)
    return _no_store(response)


def _after_request(request: HttpRequest, report: Report, *, download_when_ready: bool) -> HttpResponse:
    """Back to the reports page at once, watching ``report``: the page shows its status while a
    worker builds it and downloads the file when ready (``static/signalbox/reports.js``)."""
    if report.status == Report.Status.READY and download_when_ready:
        return redirect("reports:download", report.pk)
    if report.status == Report.Status.FAILED:
        messages.error(request, _("The report could not be generated: %(error)s") % {"error": report.error})
    return redirect(f"{reverse('reports:index')}?watch={report.pk}#report-{report.pk}")


@require_POST
def request_pdf(request: HttpRequest) -> HttpResponse:
    """A PDF report for a campaign or for a period, from the "Reports & exports" page."""
    if not request.user.has_perm(services.PDF_PERMISSION):
        raise PermissionDenied
    kind = request.POST.get("kind")
    if kind == Report.Kind.CAMPAIGN_PDF:
        form = CampaignReportForm(request.POST, prefix="campaign")
        if not form.is_valid():
            return _render_index(request, campaign_form=form)
        params = {"campaign_id": form.cleaned_data["campaign"].pk}
    elif kind == Report.Kind.PERIOD_PDF:
        form = PeriodReportForm(request.POST, prefix="period")
        if not form.is_valid():
            return _render_index(request, period_form=form)
        params = form.filters().to_params()
    else:
        raise Http404
    report = services.report_request(
        actor=request.user, kind=kind, format=Report.Format.PDF, params=params, language=request.LANGUAGE_CODE
    )
    return _after_request(request, report, download_when_ready=False)


@require_POST
def campaign_pdf(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """"Download PDF report" on a campaign page: the file at once when small, else the reports page."""
    if not request.user.has_perm(services.PDF_PERMISSION):
        raise PermissionDenied
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    report = services.report_request(
        actor=request.user, kind=Report.Kind.CAMPAIGN_PDF, format=Report.Format.PDF,
        params={"campaign_id": campaign.pk}, language=request.LANGUAGE_CODE,
    )
    return _after_request(request, report, download_when_ready=True)


@require_GET
def download(request: HttpRequest, pk: int) -> HttpResponse:
    report = get_object_or_404(Report, pk=pk)
    try:
        handle = services.report_download(actor=request.user, report=report)
    except services.ReportError as exc:
        raise Http404(str(exc)) from exc
    response = FileResponse(
        handle, as_attachment=True, filename=PurePath(report.file.name).name,
        content_type=services.CONTENT_TYPES[report.format],
    )
    return _no_store(response)


# --- Audit log --------------------------------------------------------------------------------


def _target_url(entry: AuditEntry) -> str:
    target_type = entry.target_type
    if target_type is None or not entry.target_id:
        return ""
    try:
        return reverse(f"admin:{target_type.app_label}_{target_type.model}_change", args=[entry.target_id])
    except NoReverseMatch:
        return ""


def _changes_summary(changes) -> str:
    if not changes:
        return ""
    text = json.dumps(changes, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= CHANGES_SHOWN else text[: CHANGES_SHOWN - 1] + "…"


def _query(request: HttpRequest, **overrides) -> str:
    params = {key: value for key, value in request.GET.items() if key != "after" and value}
    params.update({key: value for key, value in overrides.items() if value})
    return "?" + urlencode(params) if params else "?"


@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """Who did what, newest first, filterable, 50 a page with "older" / "newest" links."""
    if not request.user.has_perm(AUDIT_PERMISSION):
        raise PermissionDenied
    form = AuditFilterForm(request.GET or None, actions=selectors.audit_actions())
    filters = AuditFilters()
    if form.is_bound and form.is_valid():
        cleaned = form.cleaned_data
        filters = AuditFilters(
            date_from=cleaned.get("date_from"), date_to=cleaned.get("date_to"), actor_id=cleaned.get("actor"),
            action=cleaned.get("action") or "", target_type_id=cleaned.get("target_type"),
            search=(cleaned.get("q") or "").strip(),
        )
    after = AuditCursor.decode(request.GET.get("after", ""))
    page = selectors.audit_page(filters=filters, after=after)
    rows = [
        {
            "id": entry.pk,
            "when": timezone.localtime(entry.created_at),
            "actor": entry.actor_label or "—",
            "action": entry.action,
            "type": entry.target_type.name if entry.target_type else "",
            "target": entry.target_repr or entry.target_id,
            "target_url": _target_url(entry),
            "changes": _changes_summary(entry.changes),
        }
        for entry in page.entries
    ]
    context = {
        **admin.site.each_context(request),
        "title": _("Audit log"),
        "form": form,
        "rows": rows,
        "older_url": _query(request, after=page.next_cursor.encode()) if page.next_cursor else "",
        "newest_url": _query(request) if after else "",
        "page_size": selectors.AUDIT_PAGE_SIZE,
    }
    template = f"{AUDIT_TEMPLATE}#results" if request.htmx else AUDIT_TEMPLATE
    return TemplateResponse(request, template, context)
