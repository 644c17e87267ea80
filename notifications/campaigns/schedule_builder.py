"""The campaign form's schedule builder: every day / every week on some days / every month on a
day, at a time, in a zone, written as the RRULE ``Campaign.rrule`` stores.

The builder is the ``rrule`` field's widget, so the form keeps its field names: the widget reads
its inputs (``rrule_mode``, ``rrule_days``, ``rrule_monthday``, ``rrule_time``) and the field
cleans them into rule text; the ``advanced`` mode is the RRULE typed as before. A stored rule the
builder can say (``rule_describe``) opens in the builder; any other opens in ``advanced``.

``schedule_preview`` is what the live preview shows while a marketer edits: the same checks as a
save (``ScheduleRuleField``, ``TimeZoneField``, ``recurrence_check``), each problem a sentence.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time

from dateutil.rrule import DAILY, MONTHLY, WEEKLY
from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from ..timezones import AdminTimeZoneWidget, TimeZoneField, canonical_zone
from .rrules import WEEKDAYS, ScheduleError, rule_parse
from .schedules import RecurrenceSpec, recurrence_check

PREVIEW_COUNT = 5
MODES = [
    ("daily", _("Every day")),
    ("weekly", _("Every week on…")),
    ("monthly", _("Every month on day…")),
    ("advanced", _("Advanced: RRULE")),
]
DAYS = [
    ("MO", pgettext_lazy("weekday", "Mon")), ("TU", pgettext_lazy("weekday", "Tue")),
    ("WE", pgettext_lazy("weekday", "Wed")), ("TH", pgettext_lazy("weekday", "Thu")),
    ("FR", pgettext_lazy("weekday", "Fri")), ("SA", pgettext_lazy("weekday", "Sat")),
    ("SU", pgettext_lazy("weekday", "Sun")),
]
LAST_DAY = -1
MONTH_DAYS = [(str(day), str(day)) for day in range(1, 32)] + [(str(LAST_DAY), _("Last day"))]
BUILDER_PARTS = {"byhour", "byminute", "bysecond"}


@dataclass(frozen=True)
class Builder:
    """What the builder shows: a mode, its days or day of month, and a time of day."""

    mode: str = "weekly"
    days: tuple[str, ...] = ("MO",)
    monthday: int = 1
    at: time = time(9, 0)


def rule_build(builder: Builder) -> str:
    """The RRULE for ``builder`` (not ``advanced``), e.g. ``FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=9;BYMINUTE=30``."""
    clock = f"BYHOUR={builder.at.hour};BYMINUTE={builder.at.minute}"
    if builder.mode == "daily":
        return f"FREQ=DAILY;{clock}"
    if builder.mode == "weekly":
        days = [code for code, _label in DAYS if code in builder.days]
        return f"FREQ=WEEKLY;BYDAY={','.join(days)};{clock}"
    return f"FREQ=MONTHLY;BYMONTHDAY={builder.monthday};{clock}"


def rule_describe(text: str) -> Builder | None:
    """The builder that writes ``text``, or None when only the advanced box can show it."""
    try:
        parts = rule_parse(text, zone=zoneinfo.ZoneInfo("UTC"))
    except ScheduleError:
        return None
    by = parts.by
    if (parts.interval != 1 or parts.count is not None or parts.until is not None or parts.wkst != 0
            or len(by.get("byhour", ())) != 1 or len(by.get("byminute", ())) != 1
            or by.get("bysecond", (0,)) != (0,)):
        return None
    at = time(by["byhour"][0], by["byminute"][0])
    extra = set(by) - BUILDER_PARTS
    if parts.freq == DAILY and not extra:
        return Builder(mode="daily", at=at)
    if parts.freq == WEEKLY and extra == {"byweekday"} and all(day.n is None for day in by["byweekday"]):
        codes = {day.weekday for day in by["byweekday"]}
        return Builder(mode="weekly", days=tuple(code for code, day in WEEKDAYS.items() if day.weekday in codes), at=at)
    if parts.freq == MONTHLY and extra == {"bymonthday"} and len(by["bymonthday"]) == 1:
        day = by["bymonthday"][0]
        if day > 0 or day == LAST_DAY:
            return Builder(mode="monthly", monthday=day, at=at)
    return None


class ScheduleBuilderWidget(forms.Widget):
    """The builder's inputs, the RRULE box (advanced) and the live list of next occurrences."""

    template_name = "signalbox/widgets/schedule_builder.html"
    preview_url = reverse_lazy("admin:notifications_campaign_schedule_preview")

    class Media:
        js = ["signalbox/schedule_builder.js"]
        css = {"all": ["signalbox/schedule_builder.css"]}

    def value_from_datadict(self, data, files, name):
        many = data.getlist if hasattr(data, "getlist") else (lambda key: list(data.get(key) or []))
        mode = data.get(f"{name}_mode")
        if data.get("schedule", "recurring") != "recurring" or mode not in dict(MODES):
            mode = "advanced"  # no builder posted (or not a recurring schedule): the text, as it was
        return {
            "mode": mode, "text": data.get(name, ""), "days": many(f"{name}_days"),
            "monthday": data.get(f"{name}_monthday", ""), "time": data.get(f"{name}_time", ""),
        }

    def value_omitted_from_data(self, data, files, name):
        return name not in data and f"{name}_mode" not in data

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        if isinstance(value, dict):  # a posted form shown again: what the marketer chose
            text = value.get("text", "")
            builder = _builder_from_post(value) or Builder()
            mode = value.get("mode") or "advanced"
        else:
            text = value or ""
            described = rule_describe(text) if text else Builder()
            builder, mode = described or Builder(), ("advanced" if described is None else described.mode)
        context["builder"] = {
            "mode": mode, "modes": MODES, "days": [(code, label, code in builder.days) for code, label in DAYS],
            "monthday": str(builder.monthday), "month_days": MONTH_DAYS, "time": builder.at.strftime("%H:%M"),
            "text": text, "preview_url": self.preview_url, **_unfold_classes(),
        }
        return context


def _unfold_classes() -> dict[str, str]:
    """Unfold's own input classes (compiled into its stylesheet), so the builder looks like the form."""
    from unfold.widgets import CHECKBOX_CLASSES, INPUT_CLASSES, SELECT_CLASSES  # noqa: PLC0415

    return {"input_class": " ".join(INPUT_CLASSES), "select_class": " ".join(SELECT_CLASSES),
            "checkbox_class": " ".join(CHECKBOX_CLASSES)}


def _builder_from_post(value: dict) -> Builder | None:
    try:
        return _builder_clean(value)
    except ValidationError:
        return None


def _builder_clean(value: dict) -> Builder:
    """The builder's posted inputs as a Builder; each mistake a sentence (``ValidationError``)."""
    mode = value.get("mode")
    try:
        at = time.fromisoformat((value.get("time") or "").strip())
    except ValueError:
        raise ValidationError(_("Enter the time of day as hours and minutes, e.g. 09:30."), code="time") from None
    if at.second or at.microsecond:
        at = at.replace(second=0, microsecond=0)
    days = tuple(code for code in value.get("days") or [] if code in WEEKDAYS)
    if mode == "weekly" and not days:
        raise ValidationError(_("Choose at least one day of the week."), code="days")
    monthday = LAST_DAY if mode != "monthly" else None
    if mode == "monthly":
        raw = str(value.get("monthday") or "").strip()
        if raw.lstrip("-").isdigit() and (1 <= int(raw) <= 31 or int(raw) == LAST_DAY):
            monthday = int(raw)
        else:
            raise ValidationError(_("Choose a day of the month from 1 to 31, or “Last day”."), code="monthday")
    return Builder(mode=mode, days=days or ("MO",), monthday=monthday if monthday is not None else 1, at=at)


class ScheduleRuleField(forms.Field):
    """``rrule`` as the builder writes it (or as typed in advanced mode); "" when nothing is given."""

    widget = ScheduleBuilderWidget

    def __init__(self, *, max_length=500, empty_value="", **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_python(self, value):
        if not isinstance(value, dict):
            return (value or "").strip()
        if value.get("mode") == "advanced":
            return (value.get("text") or "").strip()
        return rule_build(_builder_clean(value))

    def validate(self, value):
        super().validate(value)
        if len(value) > self.max_length:
            raise ValidationError(_("The rule is too long: at most %(max)d characters.") % {"max": self.max_length})

    def has_changed(self, initial, data):
        try:
            return (initial or "") != self.to_python(data)
        except ValidationError:
            return True


def install(form: forms.Form) -> None:
    """Give a campaign form the builder (``rrule``) and the zone picker (``schedule_timezone``),
    keeping each field's label, help text and required flag."""
    if "rrule" in form.fields:
        old = form.fields["rrule"]
        form.fields["rrule"] = ScheduleRuleField(
            label=_("Repeats"), required=old.required, help_text=_(
                "Choose days and a time, or write an RFC 5545 RRULE under “Advanced”. "
                "The next send times are listed as you change it."),
        )
    if "schedule_timezone" in form.fields:
        old = form.fields["schedule_timezone"]
        form.fields["schedule_timezone"] = TimeZoneField(
            label=old.label, required=old.required, help_text=old.help_text, widget=AdminTimeZoneWidget,
        )


@dataclass(frozen=True)
class Preview:
    error: str = ""
    rule: str = ""
    zone: str = "UTC"
    viewer_zone: str = ""
    occurrences: tuple = ()  # (UTC, in the schedule's zone, in the viewer's zone or None)


def schedule_preview(query, *, start: datetime, now: datetime, viewer_zone: str = "") -> Preview:
    """The next ``PREVIEW_COUNT`` send times of the schedule in ``query`` (the form's inputs)."""
    try:
        rule = ScheduleRuleField(required=False).clean(ScheduleBuilderWidget().value_from_datadict(query, {}, "rrule"))
        zone = TimeZoneField(required=False).clean(query.get("schedule_timezone") or "UTC") or "UTC"
    except ValidationError as error:
        return Preview(error=" ".join(error.messages))
    if not rule:
        return Preview(error=str(_("Enter a recurrence rule.")), zone=zone)
    try:
        found = recurrence_check(RecurrenceSpec(rule, zone, start), now=now)[:PREVIEW_COUNT]
    except ScheduleError as error:
        return Preview(error=str(error), rule=rule, zone=zone)
    viewer = canonical_zone(viewer_zone) or ""
    viewer = "" if viewer in ("", zone) else viewer
    tz, viewer_tz = zoneinfo.ZoneInfo(zone), zoneinfo.ZoneInfo(viewer) if viewer else None
    rows = tuple((when, when.astimezone(tz), when.astimezone(viewer_tz) if viewer_tz else None) for when in found)
    return Preview(rule=rule, zone=zone, viewer_zone=viewer, occurrences=rows)


def viewer_zone_of(request) -> str:
    """The zone the browser reports (``viewer_tz``), else the one Django is using for the request."""
    return canonical_zone(request.GET.get("viewer_tz", "")) or timezone.get_current_timezone_name()
