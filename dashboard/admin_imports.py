"""CSV user import in the admin: history (the ImportJob changelist), the flow pages, live progress.

Flow, all under ``admin/dashboard/importjob/``:

| URL name (``admin:``) | method | what |
|---|---|---|
| ``dashboard_importjob_upload`` | GET, POST | choose a file, the mode and an optional static audience |
| ``dashboard_importjob_mapping`` | GET, POST | match file columns to fields; POST runs the dry run |
| ``dashboard_importjob_preview`` | GET | counts, invalid rows with reasons (paged), first new/updated rows |
| ``dashboard_importjob_confirm`` | POST | start the import (inline when small, else a background task) |
| ``dashboard_importjob_cancel`` | POST | drop an import that was not confirmed |
| ``dashboard_importjob_progress`` | GET | the status/progress fragment the job page polls every second |
| ``dashboard_importjob_error_report`` | GET | the CSV of rows not imported, with reasons |

Running an import needs ``dashboard.import_users`` + ``dashboard.add_importjob`` +
``auth.add_user`` + ``auth.change_user`` (the Operators role); adding to an audience also needs
``notifications.add_audiencemember``. Seeing the history, a job and its error report needs
``dashboard.view_importjob`` (Operators and Managers). Everything else is a 403.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminRadioSelectWidget,
    UnfoldAdminSelectWidget,
    UnfoldBooleanSwitchWidget,
)

from notifications.models import Audience

from . import conf
from .imports import (
    FIELDS,
    ImportFileError,
    ImportMappingError,
    ImportStateError,
    import_job_cancel,
    import_job_confirm,
    import_job_is_background,
    import_job_preview,
    import_job_upload,
)
from .models import ImportJob

IMPORT_PERMISSIONS = ("dashboard.import_users", "dashboard.add_importjob", "auth.add_user", "auth.change_user")
AUDIENCE_PERMISSION = "notifications.add_audiencemember"
PROBLEMS_PER_PAGE = 25
HEADER_LABEL_CHARS = 60  # a header may be a whole line long; the selects show its start
Status = ImportJob.Status
LIVE = (Status.QUEUED, Status.RUNNING)
DELIMITER_NAMES = {",": _("comma"), ";": _("semicolon"), "\t": _("tab"), "|": _("pipe")}
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": _("UTF-8 with BOM"), "gb18030": "GBK / GB18030", "utf-16": "UTF-16"}


def can_import(user) -> bool:
    return user.is_active and user.is_staff and user.has_perms(IMPORT_PERMISSIONS)


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), widget=UnfoldAdminFileFieldWidget(attrs={"accept": ".csv,.txt,text/csv"}))
    mode = forms.ChoiceField(
        label=_("If some rows are invalid"), choices=ImportJob.Mode.choices, initial=ImportJob.Mode.VALID_ROWS,
        widget=UnfoldAdminRadioSelectWidget(),
    )
    audience = forms.ModelChoiceField(
        label=_("Add the imported users to a static audience"), required=False, empty_label=_("— no audience —"),
        queryset=Audience.objects.filter(kind=Audience.Kind.STATIC).order_by("name"),
        widget=UnfoldAdminSelectWidget(),
        help_text=_("Every valid row's user (new, updated or unchanged) becomes a member."),
    )

    def __init__(self, *args, can_add_members: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_add_members:
            del self.fields["audience"]
        max_bytes, max_rows = conf.import_max_bytes(), conf.import_max_rows()
        self.fields["file"].help_text = _(
            "UTF-8 (with or without BOM) or GBK; comma, semicolon, tab or pipe separated; a header row first. "
            "At most %(mb)s MB, %(rows)s rows and %(columns)s columns."
        ) % {"mb": f"{max_bytes / 1048576:g}", "rows": f"{max_rows:,}", "columns": f"{conf.import_max_columns():,}"}

    def clean_file(self):
        upload = self.cleaned_data["file"]
        max_bytes = conf.import_max_bytes()
        if upload.size > max_bytes:
            raise ValidationError(
                _("The file is %(size)s MB; the largest file you can import is %(max)s MB. Split it into smaller files."),
                params={"size": f"{upload.size / 1048576:.1f}", "max": f"{max_bytes / 1048576:g}"},
                code="too_big",
            )
        return upload


class ImportMappingForm(forms.Form):
    """One select per import field, listing the file's columns with a sample value each."""

    def __init__(self, *args, job: ImportJob, **kwargs):
        super().__init__(*args, **kwargs)
        headers = job.details.get("headers", [])
        sample = job.details.get("sample", [])
        choices = [("", _("— not imported —"))]
        for index, header in enumerate(headers):
            label = header[:HEADER_LABEL_CHARS] or _("Column %(number)d") % {"number": index + 1}
            example = next((row[index] for row in sample if index < len(row) and row[index]), "")
            choices.append((str(index), f"{label} — {example[:40]}" if example else str(label)))
        self.column_count = len(headers)
        for field in FIELDS:
            initial = job.mapping.get(field.key)
            self.fields[field.key] = forms.ChoiceField(
                label=field.label, help_text=field.help_text, required=field.required, choices=choices,
                error_messages={"required": _("Choose the column that holds the email address.")},
                initial="" if initial is None else str(initial),
                widget=UnfoldAdminSelectWidget(attrs={"data-testid": f"mapping-{field.key}"}),
            )

    def mapping(self) -> dict[str, int]:
        return {key: int(value) for key, value in self.cleaned_data.items() if value not in ("", None)}


class ImportConfirmForm(forms.Form):
    mode = forms.ChoiceField(choices=ImportJob.Mode.choices, widget=UnfoldAdminRadioSelectWidget())
    invite = forms.BooleanField(
        label=_("Email each new user an invitation to choose a password"), required=False,
        widget=UnfoldBooleanSwitchWidget(attrs={"data-testid": "confirm-invite"}),
        help_text=_("Without it, new users can sign in only after “Forgot your password?”."),
    )


@admin.register(ImportJob)
class ImportJobAdmin(ModelAdmin):
    """The import history; a job's page shows its live progress, counts and error report."""

    list_display = [
        "original_name", "status_label", "total_rows", "new_rows", "updated_rows", "unchanged_rows",
        "invalid_rows", "created_by", "created_at",
    ]
    list_filter = ["status", "mode"]
    search_fields = ["original_name"]
    list_select_related = ["created_by"]
    list_per_page = 25
    change_form_outer_before_template = "dashboard/import_status.html"
    fieldsets = [
        (None, {"fields": ["original_name", "status", "mode", "audience", "created_by", "created_at", "finished_at"]}),
        (_("Rows"), {"fields": ["total_rows", "new_rows", "updated_rows", "unchanged_rows", "invalid_rows"]}),
        (_("File"), {"fields": ["size", "encoding", "delimiter", "mapping", "error"]}),
    ]

    # --- permissions: a job is a record; it is made by the flow, never edited -------------------

    def has_add_permission(self, request, obj=None):
        return can_import(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    # Every status has a key: Unfold shows the raw value ("PREVIEWED") for a value missing here.
    @display(description=_("Status"), label={
        Status.UPLOADED: None, Status.PREVIEWED: None,
        Status.COMPLETED: "success", Status.FAILED: "danger", Status.RUNNING: "info", Status.QUEUED: "info",
        Status.CANCELLED: "warning",
    })
    def status_label(self, obj: ImportJob):
        return obj.status, obj.get_status_display()

    def add_view(self, request, form_url="", extra_context=None):
        if not can_import(request.user):
            raise PermissionDenied
        return HttpResponseRedirect(reverse("admin:dashboard_importjob_upload"))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self._status_context(request, obj))
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("upload/", view(self.upload_view), name="dashboard_importjob_upload"),
            path("<int:pk>/mapping/", view(self.mapping_view), name="dashboard_importjob_mapping"),
            path("<int:pk>/preview/", view(self.preview_view), name="dashboard_importjob_preview"),
            path("<int:pk>/confirm/", view(self.confirm_view), name="dashboard_importjob_confirm"),
            path("<int:pk>/cancel/", view(self.cancel_view), name="dashboard_importjob_cancel"),
            path("<int:pk>/progress/", view(self.progress_view), name="dashboard_importjob_progress"),
            path("<int:pk>/error-report/", view(self.error_report_view), name="dashboard_importjob_error_report"),
            *super().get_urls(),
        ]

    # --- the flow ----------------------------------------------------------------------------

    def _page(self, request: HttpRequest, template: str, title, **context) -> TemplateResponse:
        return TemplateResponse(request, template, {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": title,
            "history_url": reverse("admin:dashboard_importjob_changelist"), **context,
        })

    def _require_import(self, request: HttpRequest) -> None:
        if not can_import(request.user):
            raise PermissionDenied

    def _job_in_flow(self, request: HttpRequest, pk: int) -> ImportJob:
        self._require_import(request)
        return get_object_or_404(ImportJob, pk=pk)

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        return require_http_methods(["GET", "POST"])(self._upload)(request)

    def _upload(self, request: HttpRequest) -> HttpResponse:
        self._require_import(request)
        can_add_members = request.user.has_perm(AUDIENCE_PERMISSION)
        form = ImportUploadForm(request.POST or None, request.FILES or None, can_add_members=can_add_members)
        if request.method == "POST" and form.is_valid():
            try:
                job = import_job_upload(
                    upload=form.cleaned_data["file"], mode=form.cleaned_data["mode"],
                    audience=form.cleaned_data.get("audience"), actor=request.user,
                )
            except ImportFileError as exc:
                form.add_error("file", str(exc))
            else:
                return HttpResponseRedirect(reverse("admin:dashboard_importjob_mapping", args=[job.pk]))
        return self._page(request, "dashboard/import_upload.html", _("Import users from CSV"), form=form)

    def mapping_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_http_methods(["GET", "POST"])(self._mapping)(request, pk)

    def _mapping(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = self._job_in_flow(request, pk)
        if job.status not in (Status.UPLOADED, Status.PREVIEWED):
            return HttpResponseRedirect(reverse("admin:dashboard_importjob_change", args=[job.pk]))
        form = ImportMappingForm(request.POST or None, job=job)
        if request.method == "POST" and form.is_valid():
            try:
                import_job_preview(job=job, mapping=form.mapping())
            except ImportMappingError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            except (ImportFileError, ImportStateError) as exc:
                form.add_error(None, str(exc))
            else:
                return HttpResponseRedirect(reverse("admin:dashboard_importjob_preview", args=[job.pk]))
        return self._page(
            request, "dashboard/import_mapping.html", _("Match the columns"), job=job, form=form,
            file_facts=self._file_facts(job), sample_rows=job.details.get("sample", []),
            headers=job.details.get("headers", []),
        )

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_GET(self._preview)(request, pk)

    def _preview(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = self._job_in_flow(request, pk)
        if job.status == Status.UPLOADED:
            return HttpResponseRedirect(reverse("admin:dashboard_importjob_mapping", args=[job.pk]))
        if job.status != Status.PREVIEWED:
            return HttpResponseRedirect(reverse("admin:dashboard_importjob_change", args=[job.pk]))
        preview = job.details.get("preview", {})
        problems = Paginator(preview.get("problems", []), PROBLEMS_PER_PAGE)
        page = problems.get_page(request.GET.get("page"))
        context = {
            "job": job, "page": page, "samples": preview.get("samples", {}),
            "shown_problems": problems.count, "confirm_form": ImportConfirmForm(initial={"mode": job.mode}),
            "formula_rows": preview.get("formula_rows", 0), "formulas": preview.get("formulas", []),
            "suppressed_rows": preview.get("suppressed_rows", 0),
            "background": import_job_is_background(job), "file_facts": self._file_facts(job),
            "mapped": [(f.label, job.details.get("headers", [])[job.mapping[f.key]]) for f in FIELDS
                       if f.key in job.mapping],
        }
        if request.htmx:
            return TemplateResponse(request, "dashboard/import_preview.html#problems", context)
        return self._page(request, "dashboard/import_preview.html", _("Check and confirm the import"), **context)

    def confirm_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_POST(self._confirm)(request, pk)

    def _confirm(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = self._job_in_flow(request, pk)
        form = ImportConfirmForm(request.POST)
        if not form.is_valid():
            raise PermissionDenied  # a tampered mode
        try:
            job = import_job_confirm(
                job=job, actor=request.user, mode=form.cleaned_data["mode"], language=request.LANGUAGE_CODE,
                invite=form.cleaned_data["invite"],
            )
        except ImportStateError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
        else:
            if job.status == Status.COMPLETED:
                self.message_user(request, _("Import finished."), level=messages.SUCCESS)
            elif job.status == Status.FAILED:
                self.message_user(request, job.error, level=messages.ERROR)
            else:
                self.message_user(request, _("The import is running in the background."), level=messages.INFO)
        return HttpResponseRedirect(reverse("admin:dashboard_importjob_change", args=[job.pk]))

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_POST(self._cancel)(request, pk)

    def _cancel(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = self._job_in_flow(request, pk)
        try:
            import_job_cancel(job=job, actor=request.user)
        except ImportStateError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
        else:
            self.message_user(request, _("Import cancelled; nothing was imported."), level=messages.INFO)
        return HttpResponseRedirect(reverse("admin:dashboard_importjob_changelist"))

    # --- watching a job ----------------------------------------------------------------------

    def _viewable_job(self, request: HttpRequest, pk: int) -> ImportJob:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(ImportJob.objects.select_related("audience", "created_by"), pk=pk)

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_GET(self._progress)(request, pk)

    def _progress(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = self._viewable_job(request, pk)
        return TemplateResponse(request, "dashboard/import_status.html#progress", self._status_context(request, job))

    def error_report_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_GET(self._error_report)(request, pk)

    def _error_report(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = self._viewable_job(request, pk)
        if not job.error_report:
            raise Http404
        try:
            handle = job.error_report.open("rb")
        except FileNotFoundError:
            raise Http404 from None
        name = job.error_report.name.rsplit("/", 1)[-1]
        return FileResponse(handle, as_attachment=True, filename=name, content_type="text/csv; charset=utf-8")

    def _status_context(self, request: HttpRequest, job: ImportJob) -> dict:
        total = job.total_rows or 0
        percent = round(100 * job.processed_rows / total) if total else 0
        flow = can_import(request.user) and job.status in (Status.UPLOADED, Status.PREVIEWED)
        return {
            "job": job,
            "live": job.status in LIVE,
            "percent": min(percent, 100),
            "phase": job.details.get("phase", ""),
            "audience_added": job.details.get("audience_added"),
            "invited": job.details.get("invited"),
            "continue_url": (
                reverse("admin:dashboard_importjob_preview" if job.status == Status.PREVIEWED
                        else "admin:dashboard_importjob_mapping", args=[job.pk]) if flow else ""
            ),
        }

    @staticmethod
    def _file_facts(job: ImportJob) -> dict:
        return {
            "encoding": ENCODING_NAMES.get(job.encoding, job.encoding),
            "delimiter": DELIMITER_NAMES.get(job.delimiter, job.delimiter),
            "rows": job.total_rows,
            "columns": len(job.details.get("headers", [])),
        }
