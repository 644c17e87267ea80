"""Campaign admin: build, schedule, submit, approve, launch, pause, resume, cancel, watch runs.

State changes are POST-only admin views that call ``notifications.campaigns.services``; the
service checks the permission and the current state, so a stale page or a forged request gets
a clear message and changes nothing.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin, TabularInline
from unfold.widgets import UnfoldAdminSelectWidget

from accounts.roles import allows

from ..campaigns import ab_tests, schedule_builder, services
from ..campaigns.ab_tests import MAX_VARIANTS, variant_problems
from ..campaigns.approvals import may_approve
from ..campaigns.followups import campaign_run_followup_create, followup_offer
from ..campaigns.progress import runs_progress_of
from ..campaigns.schedules import (
    RecurrenceSpec, ScheduleError, recurrence_check, recurrence_preview, schedule_date_check,
)
from ..campaigns.services import CampaignError
from ..models import Campaign, CampaignRun, CampaignVariant, Channel
from .campaign_composer import FORM_EDITS, ComposerMixin, add_value_fields, clean_values
from .conditional import ConditionsOnlyWhenEditable
from .ledger import ReadOnlyAdminMixin

CHANNEL_SLOTS = 3
EDITABLE = services.EDITABLE
TRANSITIONS = {
    "submit": services.campaign_submit,
    "approve": services.campaign_approve,
    "reject": services.campaign_reject,
    "launch": services.campaign_launch,
    "pause": services.campaign_pause,
    "resume": services.campaign_resume,
    "cancel": services.campaign_cancel,
    "release": services.campaign_run_release,
}
DONE = {
    "submit": _("Submitted for approval."),
    "approve": _("Approved. The author can launch it now."),
    "reject": _("Sent back to draft."),
    "launch": _("Launched."),
    "pause": _("Paused: nothing more goes out until you resume."),
    "resume": _("Resumed."),
    "cancel": _("Cancelled: unsent messages will not go out."),
    "release": _("Approved for its audience as it is now; the run carries on."),
}


class CampaignForm(forms.ModelForm):
    """Channels are chosen as 1st, 2nd, 3rd choice: all of them, or the first that reaches."""

    class Meta:
        model = Campaign
        fields = [
            "name", "audience", "template", "category", "delivery_mode", "schedule", "send_at", "rrule",
            "schedule_timezone", "recurrence_start", "local_send_date", "local_send_time", "max_lateness",
            "throttle_per_minute", "frequency_cap_per_day", "test_share", "test_metric", "test_window",
        ]

    channel_1 = forms.ChoiceField(label=_("First channel"), choices=Channel.choices, widget=UnfoldAdminSelectWidget())
    channel_2 = forms.ChoiceField(
        label=_("Second channel"), choices=[("", "—"), *Channel.choices], required=False, widget=UnfoldAdminSelectWidget()
    )
    channel_3 = forms.ChoiceField(
        label=_("Third channel"), choices=[("", "—"), *Channel.choices], required=False, widget=UnfoldAdminSelectWidget()
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = list(self.instance.channels or []) if self.instance.pk else ["email"]
        for slot in range(CHANNEL_SLOTS):
            if f"channel_{slot + 1}" in self.fields:  # absent when the campaign is read-only
                self.fields[f"channel_{slot + 1}"].initial = current[slot] if slot < len(current) else ""
        add_value_fields(self)
        schedule_builder.install(self)  # rrule: the schedule builder; schedule_timezone: the zone picker

    def clean(self):
        data = super().clean()
        picked = [data.get(f"channel_{slot + 1}") for slot in range(CHANNEL_SLOTS)]
        picked = [c for c in picked if c]
        if len(set(picked)) != len(picked):
            self.add_error("channel_2", _("Each channel may be chosen once."))
        data["channels"] = picked
        schedule = data.get("schedule")
        required = {
            Campaign.Schedule.ONCE: ["send_at"],
            Campaign.Schedule.RECURRING: ["rrule", "recurrence_start"],
            Campaign.Schedule.LOCAL_TIME: ["local_send_date", "local_send_time"],
        }.get(schedule, [])
        for name in required:
            if not data.get(name) and name not in self.errors:  # one sentence per field
                self.add_error(name, _("Required for this schedule."))
        self._clean_schedule(data, schedule, now=timezone.now())
        clean_values(self, data)
        return data

    def _clean_schedule(self, data: dict, schedule: str, *, now: datetime) -> None:
        """Dates in 2000..2100; a recurrence that reads, recurs at most hourly and occurs within
        the horizon (``recurrence_check``). Each problem is a sentence next to its field."""
        if schedule == Campaign.Schedule.RECURRING and data.get("rrule") and data.get("recurrence_start"):
            try:
                recurrence_check(_spec_from(data), now=now)
            except ScheduleError as error:
                self.add_error(SCHEDULE_ERROR_FIELDS.get(error.part, "rrule"), str(error))
        dated = {Campaign.Schedule.ONCE: "send_at", Campaign.Schedule.LOCAL_TIME: "local_send_date"}.get(schedule)
        if dated and data.get(dated):
            try:
                schedule_date_check(data[dated])
            except ScheduleError as error:
                self.add_error(dated, str(error))
            else:
                if dated == "send_at" and data["send_at"] < now:
                    self.add_error("send_at", _("The send time is in the past."))

    def save(self, commit=True):
        self.instance.channels = self.cleaned_data["channels"]
        self.instance.template_values = self.cleaned_data.get("template_values", {})
        return super().save(commit=commit)


SCHEDULE_ERROR_FIELDS = {"start": "recurrence_start", "timezone": "schedule_timezone"}  # else "rrule"


def _spec_from(data) -> RecurrenceSpec:
    return RecurrenceSpec(
        rrule=data.get("rrule") or "", tz=data.get("schedule_timezone") or "UTC",
        start=data.get("recurrence_start") or timezone.now(),
    )


class CampaignVariantFormSet(forms.BaseInlineFormSet):
    """2-4 variants or none; a subject-only variant needs the email channel; no two alike
    (``ab_tests.variant_problems``, the rules pre-flight applies too)."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        variants = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE"):
                continue
            template = data.get("template")
            variants.append((data.get("label"), template.pk if template else None, data.get("email_subject", "")))
        problems = variant_problems(variants=variants, channels=list(self.instance.channels or []),
                                    template_id=self.instance.template_id)
        if problems:
            raise ValidationError(problems)


class CampaignVariantInline(TabularInline):
    """The campaign composer's "A/B test" variants; editable while the campaign form is."""

    model = CampaignVariant
    formset = CampaignVariantFormSet
    fields = ["label", "template", "email_subject"]
    extra = 0
    max_num = MAX_VARIANTS
    verbose_name = _("A/B variant")
    verbose_name_plural = _("A/B test: variants (2 to 4, or none for no test)")

    def _editable(self, obj) -> bool:
        return obj is None or obj.status in FORM_EDITS

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._editable(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._editable(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._editable(obj)


class CampaignRunInline(ReadOnlyAdminMixin, TabularInline):
    model = CampaignRun
    fields = ["occurrence", "status", "audience_size", "planned", "suppressed", "started_at", "finished_at", "status_note"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    ordering = ["-started_at"]
    tab = True


class AwaitingApprovalFilter(admin.SimpleListFilter):
    """"Awaiting approval": submitted, or with a run held for a Manager (``approval_desk``)."""

    title = _("Approval")
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("yes", _("Awaiting approval"))]

    def queryset(self, request, queryset):
        from ..campaigns.approval_desk import awaiting_campaigns

        return queryset.filter(pk__in=awaiting_campaigns().values("pk")) if self.value() == "yes" else queryset


@admin.register(Campaign)
class CampaignAdmin(ConditionsOnlyWhenEditable, ComposerMixin, ModelAdmin):
    form = CampaignForm
    list_display = ["name", "status", "schedule", "audience", "next_run_at", "author", "updated_at"]
    list_filter = [AwaitingApprovalFilter, "status", "schedule", "category"]
    search_fields = ["name"]
    list_select_related = ["audience", "author"]
    inlines = [CampaignVariantInline, CampaignRunInline]
    change_form_outer_before_template = "notifications/admin/campaign_status.html"
    change_form_outer_after_template = "notifications/admin/campaign_preflight_slot.html"
    conditional_fields = {
        "send_at": "schedule == 'once'",
        "rrule": "schedule == 'recurring'",
        "schedule_timezone": "schedule == 'recurring'",
        "recurrence_start": "schedule == 'recurring'",
        "local_send_date": "schedule == 'local_time'",
        "local_send_time": "schedule == 'local_time'",
    }
    fieldsets = [  # the composer's steps; the Schedule section is the schedule builder's
        (_("1. Audience"), {"fields": ["name", "audience", "audience_summary", "category"]}),
        (_("2. Content"), {"fields": ["template", "content_preview"]}),
        (_("3. Channels"), {"fields": ["channel_1", "channel_2", "channel_3", "delivery_mode"]}),
        (_("Schedule"), {"fields": [
            "schedule", "send_at", "rrule", "schedule_timezone", "recurrence_start", "local_send_date",
            "local_send_time", "max_lateness",
        ]}),
        (_("Limits"), {"fields": ["throttle_per_minute", "frequency_cap_per_day"]}),
        (_("A/B test"), {"fields": ["test_share", "test_metric", "test_window"],
                         "description": _("Add 2 to 4 variants below to test them on a share of the audience "
                                          "first; the winner goes to everyone else when the window ends.")}),
    ]

    def save_model(self, request, obj, form, change):
        # Through the services, so the rules (audit, approval voided by an edit) hold for every
        # interface; a refusal there (the campaign was launched meanwhile) is a message, not a 500.
        try:
            if change:
                services.campaign_update(campaign=obj, actor=request.user, changed=list(form.changed_data))
            else:
                services.campaign_create(campaign=obj, actor=request.user)
        except CampaignError as error:
            raise PermissionDenied(str(error)) from error

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        variants = [fs for fs in formsets if fs.model is CampaignVariant]
        services.campaign_variants_saved(campaign=form.instance, actor=request.user,
                                         changed=any(fs.has_changed() for fs in variants))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # A page the user may not change (a campaign past its draft, or a viewer's page) has no
        # schedule inputs for Unfold's show/hide conditions: ConditionsOnlyWhenEditable drops them.
        if obj is not None:
            context.update(self._status_context(request, obj))
            # Every state before launch: what a launch would send, and what stops it.
            context["preflight_shown"] = obj.status in EDITABLE
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def _status_context(self, request: HttpRequest, obj: Campaign) -> dict:
        user = request.user
        can_launch = services.may_launch(user)
        can_edit = allows(user, "campaign.edit")
        can_approve = may_approve(user, author_id=obj.author_id)
        status = obj.status
        actions = []
        approval = services.campaign_approval(campaign=obj) if status in EDITABLE else None
        resubmit = status == Campaign.Status.APPROVED and approval is not None and approval.needed
        if (status in (Campaign.Status.DRAFT, Campaign.Status.CHANGES_REQUESTED) or resubmit) and can_edit:
            actions.append(("submit", _("Submit for approval"), "secondary"))
        held = obj.runs.filter(status=CampaignRun.Status.AWAITING_APPROVAL).exists()
        if (status == Campaign.Status.PENDING_APPROVAL or resubmit) and can_approve and (approval is None or approval.needed):
            actions += [("approve", _("Approve"), "primary"), ("reject", _("Send back"), "secondary")]
        if held and can_approve:
            actions.append(("release", _("Approve and send"), "primary"))
        if status in EDITABLE and can_launch:
            actions.append(("launch", _("Launch"), "primary"))
        if status == Campaign.Status.RUNNING and can_launch:
            actions.append(("pause", _("Pause"), "secondary"))
        if status == Campaign.Status.PAUSED and can_launch:
            actions.append(("resume", _("Resume"), "primary"))
        if status not in (Campaign.Status.COMPLETED, Campaign.Status.CANCELLED, Campaign.Status.FAILED) and can_launch:
            actions.append(("cancel", _("Cancel campaign"), "danger"))
        preview = []
        # Where the form edits the schedule, its builder shows the next send times live; the
        # panel lists them only on a page that cannot change them.
        schedule_in_form = self.has_change_permission(request, obj)
        if obj.schedule == Campaign.Schedule.RECURRING and obj.rrule and not schedule_in_form:
            try:
                preview = recurrence_preview(
                    RecurrenceSpec(obj.rrule, obj.schedule_timezone, obj.recurrence_start or obj.created_at),
                    after=timezone.now(),
                )
            except ScheduleError:
                preview = []
        return {
            "campaign": obj,
            "approval": approval,
            "campaign_actions": actions,
            "schedule_in_form": schedule_in_form,
            "next_occurrences": [(when, when.astimezone(zoneinfo.ZoneInfo(obj.schedule_timezone))) for when in preview],
            "can_pick_winner": can_launch,  # ending an A/B test early sends the rest: a launch verb
            **self._progress_context(obj),
        }

    def _progress_context(self, obj: Campaign) -> dict:
        # The staff UI reads the retention horizon from the dashboard's rollup state (imported
        # here: the dashboard imports this admin at module level).
        from dashboard.analytics.figures import day_start, local_day_hour  # noqa: PLC0415
        from dashboard.analytics.rollups import details_purged_before  # noqa: PLC0415

        runs = list(obj.runs.select_related("winner_chosen_by").order_by("-started_at")[:5])  # who picked an A/B winner
        for run in runs:  # "send to those who did not open" (or why not), from what is loaded
            run.followup = followup_offer(run=run, campaign=obj)
        progress = runs_progress_of(runs)
        purged_before = details_purged_before(since=local_day_hour(runs[-1].started_at)[0]) if runs else None
        # A finished run from before the retention boundary lost its ledger rows: counting what is
        # left would be wrong, so its figures are on the campaign's analytics page instead.
        purged = {
            run.pk for run in runs
            if purged_before and run.started_at < day_start(purged_before) and run.finished_at is not None
        }
        return {
            "runs": [(run, None if run.pk in purged else progress.get(run.pk)) for run in runs],
            "purged_runs": purged,
            "live": obj.status in (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED),
            "ab_tests": ab_tests.runs_test_results(campaign=obj, runs=runs),  # the runs above that were tested
        }

    def get_urls(self):
        return [
            path("<int:pk>/transition/<slug:action>/", self.admin_site.admin_view(self.transition_view),
                 name="notifications_campaign_transition"),
            path("<int:pk>/progress/", self.admin_site.admin_view(self.progress_view),
                 name="notifications_campaign_progress"),
            path("<int:pk>/runs/<int:run_id>/winner/<str:label>/",
                 self.admin_site.admin_view(self.winner_view), name="notifications_campaign_winner"),
            path("schedule-preview/", self.admin_site.admin_view(self.schedule_preview_view),
                 name="notifications_campaign_schedule_preview"),
            *self.composer_urls(),
            *super().get_urls(),
        ]

    def transition_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        return require_POST(self._transition)(request, pk, action)

    def _transition(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=pk)
        if action not in TRANSITIONS:
            raise PermissionDenied
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        try:
            TRANSITIONS[action](campaign=campaign, actor=request.user)
        except CampaignError as error:
            self.message_user(request, str(error), level=messages.ERROR)
            # A refused request by someone who lacks the permission is a 403, not a redirect.
            if _lacks_permission(request.user, action):
                raise PermissionDenied(str(error)) from error
        else:
            self.message_user(request, DONE[action], level=messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:notifications_campaign_change", args=[pk]))

    def winner_view(self, request: HttpRequest, pk: int, run_id: int, label: str) -> HttpResponse:
        return require_POST(self._winner)(request, pk, run_id, label)

    def _winner(self, request: HttpRequest, pk: int, run_id: int, label: str) -> HttpResponse:
        """The marketer ends an A/B test early: ``label`` goes to everyone else."""
        # Who may, before what: a refused role gets 403 whichever run the URL names.
        if not services.may_launch(request.user):
            raise PermissionDenied(_("You may not start or stop campaigns."))
        run = get_object_or_404(CampaignRun, pk=run_id, campaign_id=pk)
        if not self.has_view_permission(request, run.campaign):
            raise PermissionDenied
        try:
            ab_tests.campaign_winner_pick(run=run, label=label, actor=request.user)
        except ab_tests.WinnerError as error:
            self.message_user(request, str(error), level=messages.ERROR)
        else:
            self.message_user(request, _("Variant %(label)s goes to everyone else now.") % {"label": label},
                              level=messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:notifications_campaign_change", args=[pk]))

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), **self._status_context(request, campaign)}
        return TemplateResponse(request, "notifications/admin/campaign_status.html#panel", context)

    def schedule_preview_view(self, request: HttpRequest) -> HttpResponse:
        """The next 5 send times of the schedule being built, in its zone and the viewer's (GET: changes nothing).

        Checked as the form checks it (``recurrence_check``, bounded), so a problem shows as the
        same sentence the form would give, never as Python's text.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            preview = schedule_builder.schedule_preview(
                request.GET, start=_preview_start(request.GET), now=timezone.now(),
                viewer_zone=schedule_builder.viewer_zone_of(request),
            )
        except ScheduleError as exc:
            preview = schedule_builder.Preview(error=str(exc))
        return TemplateResponse(request, "notifications/admin/schedule_builder_preview.html", {"preview": preview})


def _preview_start(query) -> datetime:
    """The start the admin's split date/time widget sends, read as the form reads it (a date and
    a time in the current time zone); now when there is none yet."""
    day, clock = query.get("recurrence_start_0", "").strip(), query.get("recurrence_start_1", "").strip()
    if not day:
        return timezone.now()
    try:
        return forms.SplitDateTimeField().clean([day, clock or "00:00"])
    except ValidationError as error:
        raise ScheduleError(" ".join(error.messages), part="start") from error



def _lacks_permission(user, action: str) -> bool:
    needed = {
        "approve": "notifications.approve_campaign", "reject": "notifications.approve_campaign",
        "release": "notifications.approve_campaign",
        "submit": "notifications.change_campaign",
    }.get(action, "notifications.launch_campaign")
    return not user.has_perm(needed)


@admin.register(CampaignRun)
class CampaignRunAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["campaign", "occurrence", "status", "audience_size", "planned", "suppressed", "started_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["campaign__name"]
    list_select_related = ["campaign"]
    change_form_before_template = "notifications/admin/campaign_run_followup.html"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            obj.followup = followup_offer(run=obj)
            context["run"] = obj
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def get_urls(self):
        return [
            path("<int:pk>/follow-up/", self.admin_site.admin_view(self.followup_view),
                 name="notifications_campaignrun_followup"),
            *super().get_urls(),
        ]

    def followup_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_POST(self._followup)(request, pk)

    def _followup(self, request: HttpRequest, pk: int) -> HttpResponse:
        """"Send to those who did not open": a new draft, opened in the composer."""
        if not allows(request.user, "campaign.edit"):
            raise PermissionDenied
        run = get_object_or_404(CampaignRun.objects.select_related("campaign"), pk=pk)
        try:
            copy = campaign_run_followup_create(run=run, actor=request.user)
        except CampaignError as error:
            self.message_user(request, str(error), level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:notifications_campaign_change", args=[run.campaign_id]))
        size = services.campaign_audience_size(campaign=copy)
        self.message_user(
            request,
            ngettext(
                "A draft to the %(n)s person who did not open it: check it, run pre-flight, then submit or launch.",
                "A draft to the %(n)s people who did not open it: check it, run pre-flight, then submit or launch.",
                size,
            ) % {"n": intcomma(size)},
            level=messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:notifications_campaign_change", args=[copy.pk]))
