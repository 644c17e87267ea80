"""Filter forms of the analytics pages (crispy, ``unfold_crispy`` pack, Unfold widgets)."""

from __future__ import annotations

from datetime import date, timedelta

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout, Row
from django import forms
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from notifications.models import Channel

from ..analytics import STATUS_GROUPS, DayRange, status_labels
from ..analytics.figures import site_today

DEFAULT_DAYS = 30
MAX_DAYS = 731


class DateInput(UnfoldAdminTextInputWidget):
    input_type = "date"


def _parse_day(value) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _helper(*fields: str) -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False  # the page's <form> carries the htmx attributes
    helper.disable_csrf = True  # GET forms
    helper.layout = Layout(Row(*(Field(name, wrapper_class="min-w-32") for name in fields)))
    return helper


class AnalyticsFilterForm(forms.Form):
    """Date range (site time zone, both days included), campaign, channel and category."""

    start = forms.DateField(label=_("From"), required=False, widget=DateInput())
    end = forms.DateField(label=_("To"), required=False, widget=DateInput())
    campaign = forms.TypedChoiceField(label=_("Campaign"), coerce=int, required=False, empty_value=None,
                                      widget=UnfoldAdminSelectWidget())
    channel = forms.ChoiceField(label=_("Channel"), required=False, widget=UnfoldAdminSelectWidget())
    category = forms.TypedChoiceField(label=_("Category"), coerce=int, required=False, empty_value=None,
                                      widget=UnfoldAdminSelectWidget())
    journey = forms.TypedChoiceField(label=_("Journey"), coerce=int, required=False, empty_value=None,
                                     widget=UnfoldAdminSelectWidget())

    def __init__(self, data=None, *, campaigns=None, categories=None, journeys=None,
                 default_days: DayRange | None = None, **kwargs):
        """``campaigns``/``categories``/``journeys``: ``(id, name)`` choices, or ``None`` to leave the filter out."""
        self.default_days = default_days or DayRange.last(DEFAULT_DAYS)
        kwargs.setdefault("initial", {"start": self.default_days.start, "end": self.default_days.end})
        if data is not None:  # show the range actually used: a missing day is filled in
            data = data.copy()
            end = _parse_day(data.get("end"))
            if not data.get("end"):
                data["end"] = self.default_days.end.isoformat()
            if not data.get("start"):
                start = end - timedelta(days=DEFAULT_DAYS - 1) if end else self.default_days.start
                data["start"] = start.isoformat()
        super().__init__(data, **kwargs)
        self.fields["channel"].choices = [("", _("All channels")), *Channel.choices]
        for name, choices, everything in (
            ("campaign", campaigns, _("All campaigns")), ("category", categories, _("All categories")),
            ("journey", journeys, _("All journeys")),
        ):
            if choices is None:
                del self.fields[name]
            else:
                self.fields[name].choices = [("", everything), *choices]
        self.helper = _helper(*self.fields)

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            self.add_error("end", _("The end is before the start."))
        elif start and end and (end - start).days >= MAX_DAYS:
            self.add_error("start", _("Choose at most two years."))
        return data

    def days(self) -> DayRange:
        """The chosen range: a missing end is the default's, a missing start 30 days before the end."""
        if not self.is_bound or not self.is_valid():
            return self.default_days
        return DayRange(self.cleaned_data["start"], self.cleaned_data["end"])

    def value(self, name: str):
        return self.cleaned_data.get(name) if self.is_valid() and name in self.fields else None

    def presets(self) -> list[tuple[str, date, date]]:
        """Quick ranges, each ending today."""
        today = site_today()
        return [
            (str(label), today - timedelta(days=n - 1), today)
            for n, label in ((7, _("7 days")), (30, _("30 days")), (90, _("90 days")))
        ]


class RecipientFilterForm(forms.Form):
    """The per-campaign recipient table: run, outcome, channel and a search."""

    run = forms.TypedChoiceField(label=_("Run"), coerce=int, required=False, empty_value=None,
                                 widget=UnfoldAdminSelectWidget())
    status = forms.ChoiceField(label=_("Outcome"), required=False, widget=UnfoldAdminSelectWidget())
    channel = forms.ChoiceField(label=_("Channel"), required=False, widget=UnfoldAdminSelectWidget())
    q = forms.CharField(label=_("Search"), required=False, max_length=100,
                        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": _("Address, username or email")}))
    before = forms.IntegerField(required=False, widget=forms.HiddenInput())
    after = forms.IntegerField(required=False, widget=forms.HiddenInput())

    def __init__(self, data=None, *, runs=(), **kwargs):
        super().__init__(data, **kwargs)
        self.fields["run"].choices = [("", _("All runs")), *runs]
        labels = status_labels()
        self.fields["status"].choices = [("", _("Any outcome")), *((key, labels[key]) for key in STATUS_GROUPS)]
        self.fields["channel"].choices = [("", _("All channels")), *Channel.choices]
        self.helper = _helper("run", "status", "channel", "q")

    def value(self, name: str):
        return self.cleaned_data.get(name) if self.is_valid() else None
