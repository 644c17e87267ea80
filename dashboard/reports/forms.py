"""Forms of the "Reports & exports" and audit-log pages (Unfold widgets, so they look native)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from dashboard.models import Report
from notifications.models import Campaign, Category, Channel, Delivery, DeliveryEvent, Journey
from notifications.localized import localized_expression

from .data import ReportFilters

MAX_PERIOD_DAYS = 366
AUDIT_APP_LABELS = ("auth", "notifications", "dashboard", "channels_adapters", "demo_shop")


def _date_widget() -> UnfoldAdminTextInputWidget:
    return UnfoldAdminTextInputWidget(attrs={"type": "date"})


def _select() -> UnfoldAdminSelectWidget:
    return UnfoldAdminSelectWidget()


ANY = _("Any")


def _blank(choices) -> list:
    return [("", ANY), *choices]


class CampaignChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Campaign) -> str:
        return f"{obj.name} (#{obj.pk})"


def _campaigns():
    return Campaign.objects.only("id", "name").order_by("-created_at", "-pk")


class _ScopeForm(forms.Form):
    """Date range and the ledger filters shared by exports and period reports."""

    date_from = forms.DateField(label=_("From"), required=False, widget=_date_widget())
    date_to = forms.DateField(label=_("To (included)"), required=False, widget=_date_widget())
    campaign = CampaignChoiceField(
        label=_("Campaign"), queryset=_campaigns(), required=False, empty_label=ANY, widget=_select()
    )
    channel = forms.ChoiceField(label=_("Channel"), choices=_blank(Channel.choices), required=False, widget=_select())
    category = forms.ModelChoiceField(
        label=_("Category"), queryset=Category.objects.listed().order_by("name"), required=False, empty_label=ANY,
        widget=_select(),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # In the reader's language, in the order of the names they read (built per form: the
        # active language is the request's).
        self.fields["category"].queryset = (
            Category.objects.listed().annotate(shown=localized_expression("name")).order_by("shown", "pk")
        )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def filters(self) -> ReportFilters:
        cleaned = self.cleaned_data
        return ReportFilters(
            date_from=cleaned.get("date_from"),
            date_to=cleaned.get("date_to"),
            campaign_id=cleaned["campaign"].pk if cleaned.get("campaign") else None,
            channel=cleaned.get("channel") or "",
            category_id=cleaned["category"].pk if cleaned.get("category") else None,
            status=cleaned.get("status") or "",
            receipt_kind=cleaned.get("receipt_kind") or "",
        )


class ExportForm(_ScopeForm):
    kind = forms.ChoiceField(
        label=_("Export"),
        choices=[
            (Report.Kind.DELIVERIES, _("Deliveries")),
            (Report.Kind.RECEIPTS, _("Receipts")),
            (Report.Kind.CAMPAIGNS, _("Campaign summaries")),
        ],
        widget=_select(),
    )
    format = forms.ChoiceField(
        label=_("Format"), choices=[(Report.Format.CSV, "CSV"), (Report.Format.XLSX, "XLSX (Excel)")], widget=_select()
    )
    status = forms.ChoiceField(
        label=_("Delivery status"), choices=_blank(Delivery.Status.choices), required=False, widget=_select()
    )
    receipt_kind = forms.ChoiceField(
        label=_("Receipt kind"), choices=_blank(DeliveryEvent.Kind.choices), required=False, widget=_select(),
        help_text=_("Receipts exports only."),
    )

    journey = forms.ModelChoiceField(
        label=_("Journey"), queryset=Journey.objects.filter(current_version__isnull=False).only("id", "name")
        .order_by("name"), required=False, empty_label=ANY, widget=_select(),
        help_text=_("Deliveries and receipts exports: the messages of its send steps."),
    )

    field_order = ("kind", "format", "date_from", "date_to", "campaign", "journey", "channel", "category", "status",
                   "receipt_kind")

    def filters(self) -> ReportFilters:
        journey = self.cleaned_data.get("journey")
        return replace(super().filters(), journey_id=journey.pk if journey else None)


class PeriodReportForm(_ScopeForm):
    field_order = ("date_from", "date_to", "channel", "category", "campaign")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["date_from"].required = True
        self.fields["date_to"].required = True

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end - start > timedelta(days=MAX_PERIOD_DAYS):
            self.add_error("date_to", _("A period report covers at most %(days)d days.") % {"days": MAX_PERIOD_DAYS})
        return cleaned


class CampaignReportForm(forms.Form):
    campaign = CampaignChoiceField(label=_("Campaign"), queryset=_campaigns(), widget=_select())


class AuditFilterForm(forms.Form):
    """The audit-log page's filters (GET). Choices are small lists: staff, content types, actions."""

    date_from = forms.DateField(label=_("From"), required=False, widget=_date_widget())
    date_to = forms.DateField(label=_("To (included)"), required=False, widget=_date_widget())
    actor = forms.TypedChoiceField(label=_("User"), required=False, coerce=int, empty_value=None, widget=_select())
    action = forms.ChoiceField(label=_("Action"), required=False, widget=_select())
    target_type = forms.TypedChoiceField(label=_("Object type"), required=False, coerce=int, empty_value=None, widget=_select())
    q = forms.CharField(
        label=_("Search"), required=False, max_length=100,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": _("User, object or action")}),
    )

    def __init__(self, *args, actions: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        staff = (
            get_user_model().objects.filter(Q(is_staff=True) | Q(is_superuser=True))
            .order_by("username").values_list("pk", "username")
        )
        self.fields["actor"].choices = _blank(list(staff))
        self.fields["action"].choices = _blank([(action, action) for action in actions])
        types = ContentType.objects.filter(app_label__in=AUDIT_APP_LABELS).order_by("app_label", "model")
        self.fields["target_type"].choices = _blank([(ct.pk, f"{ct.app_label} · {ct.name}") for ct in types])
