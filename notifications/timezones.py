"""Time zones a person may choose: canonical IANA zones, labelled with their UTC offset, searchable.

``zoneinfo.available_timezones()`` lists every file under the zone directory: about 600 names with
``Factory``, ``localtime``, ``posixrules`` and a few hundred backward-compatible aliases
(``US/Pacific``, ``Asia/Calcutta``). The list offered is tzdata's own ``zone.tab`` (one or more
zones per country) plus ``UTC``; tzdata's ``tzdata.zi`` says which alias is a link to which zone.

Stored values stay valid: an alias is read as its canonical zone (``US/Pacific`` is shown and saved
as ``America/Los_Angeles``); a real zone that is not in the list (``Etc/GMT+3``) is still accepted
and offered when it is the current value. Only names that are no place at all are refused.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})
REGIONS = {
    "Africa": pgettext_lazy("time zone region", "Africa"),
    "America": pgettext_lazy("time zone region", "America"),
    "Antarctica": pgettext_lazy("time zone region", "Antarctica"),
    "Arctic": pgettext_lazy("time zone region", "Arctic"),
    "Asia": pgettext_lazy("time zone region", "Asia"),
    "Atlantic": pgettext_lazy("time zone region", "Atlantic"),
    "Australia": pgettext_lazy("time zone region", "Australia"),
    "Europe": pgettext_lazy("time zone region", "Europe"),
    "Indian": pgettext_lazy("time zone region", "Indian Ocean"),
    "Pacific": pgettext_lazy("time zone region", "Pacific"),
}
UNIVERSAL = pgettext_lazy("time zone region", "Universal")


def _tzdata_file(name: str) -> Path | None:
    for root in zoneinfo.TZPATH:
        candidate = Path(root) / name
        if candidate.is_file():
            return candidate
    try:  # the tzdata wheel, where there is no system database
        from importlib.resources import files  # noqa: PLC0415

        candidate = files("tzdata.zoneinfo") / name
        return Path(str(candidate)) if candidate.is_file() else None
    except (ModuleNotFoundError, FileNotFoundError):
        return None


@cache
def _available() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())  # a walk of the zone directory: once


@cache
def canonical_zones() -> frozenset[str]:
    """The zones offered: tzdata's ``zone.tab`` plus ``UTC``, those this system can load."""
    available = _available()
    table = _tzdata_file("zone.tab")
    if table is not None:
        names = {
            line.split("\t")[2].strip() for line in table.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#") and line.count("\t") >= 2
        }
    else:  # no table: keep Region/City names, which is what the table would give
        names = {name for name in available if name.split("/")[0] in REGIONS and not name.startswith("Etc/")}
    return frozenset((names & available) | {"UTC"})


@cache
def _links() -> dict[str, str]:
    """Alias -> the zone it links to, per ``tzdata.zi`` (``L target alias`` lines)."""
    source = _tzdata_file("tzdata.zi")
    links: dict[str, str] = {}
    if source is None:
        return links
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.startswith("L "):
            parts = line.split()
            if len(parts) == 3:
                links[parts[2]] = parts[1]
    return links


UNIVERSAL_NAMES = frozenset({"Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu",
                             "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT", "GMT0", "GMT+0", "GMT-0",
                             "Greenwich", "Etc/Greenwich"})


def canonical_zone(name: str) -> str | None:
    """The zone to show and store for ``name``: itself when canonical, its link target for an
    alias, itself for any other real zone; None for a name that is no place (or unknown)."""
    name = (name or "").strip()
    if name in canonical_zones():
        return name
    if name in UNIVERSAL_NAMES:
        return "UTC"
    seen, target = set(), name
    links = _links()
    while target in links and target not in seen:
        seen.add(target)
        target = links[target]
        if target in canonical_zones():
            return target
        if target in UNIVERSAL_NAMES:
            return "UTC"
    if name in NOT_PLACES or name.startswith(("posix/", "right/")) or name not in _available():
        return None
    return name


@cache
def zone_aliases() -> frozenset[str]:
    """Names that are not offered but still mean a zone (aliases, real zones outside the list)."""
    return frozenset(name for name in _available() if canonical_zone(name)) - canonical_zones()


def zone_names_for(zones) -> list[str]:
    """``zones`` and every alias stored profiles may still hold for them (``US/Pacific`` for
    ``America/Los_Angeles``), so a rule on a zone matches people whose value predates the list."""
    wanted = set(zones)
    aliases = {alias for alias, target in _links().items() if canonical_zone(alias) in wanted}
    if "UTC" in wanted:
        aliases |= UNIVERSAL_NAMES
    return sorted(wanted | aliases)


def utc_offset_label(name: str, *, at: datetime | None = None) -> str:
    """``UTC+08:00`` (with a real minus sign for negative offsets) at ``at`` (default: now)."""
    moment = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(name))
    offset = moment.utcoffset() or timedelta()
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "\u2212"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def zone_label(name: str, *, at: datetime | None = None) -> str:
    return f"{name.replace('_', ' ')} ({utc_offset_label(name, at=at)})"


def _hour_key() -> str:
    return timezone.now().strftime("%Y%m%d%H")


@lru_cache(maxsize=8)  # (hour, language): the current hour in a few languages, not every hour served
def _grouped(hour: str, language: str) -> list[tuple[str, list[tuple[str, str]]]]:
    del hour, language  # cache keys only: offsets change with DST, group names with the language
    at = timezone.now()
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(canonical_zones()):
        region = name.split("/")[0] if "/" in name else ""
        groups.setdefault(region, []).append((name, zone_label(name, at=at)))
    ordered = [(str(UNIVERSAL), groups.pop("", []))]
    ordered += [(str(REGIONS.get(region, region)), zones) for region, zones in sorted(groups.items())]
    return ordered


def zone_choices(*, current: str | None = None) -> list:
    """Choices grouped by region, each labelled with its offset now; ``current`` is added (as
    its canonical name, or itself) when the list does not hold it."""
    from django.utils.translation import get_language  # noqa: PLC0415

    groups = list(_grouped(_hour_key(), get_language() or ""))
    if current:
        shown = canonical_zone(current)
        if shown and shown not in canonical_zones():
            groups.insert(0, ("", [(shown, zone_label(shown))]))
    return groups


def flat_zone_choices() -> list[tuple[str, str]]:
    """``(name, label)`` for every canonical zone, for lists that take no groups."""
    return [choice for _group, zones in _grouped(_hour_key(), "") for choice in zones]


class TimeZoneWidget(forms.Select):
    """A select of canonical zones with a search box above it (``static/signalbox/timezone_picker.js``
    filters the options as you type); without JavaScript it is a plain grouped select."""

    template_name = "signalbox/widgets/timezone_picker.html"
    select_template = "django/forms/widgets/select.html"

    class Media:
        js = ["signalbox/timezone_picker.js"]
        css = {"all": ["signalbox/timezone_picker.css"]}

    def __init__(self, attrs=None, *, search_attrs=None):
        super().__init__(attrs)
        self.search_attrs = search_attrs or {}

    def get_context(self, name, value, attrs):
        self.choices = zone_choices(current=canonical_zone(value) if isinstance(value, str) else None)
        context = super().get_context(name, value, attrs)
        context["widget"]["search_attrs"] = self.search_attrs
        context["widget"]["select_template"] = self.select_template
        return context

    def format_value(self, value):
        if isinstance(value, str) and value:
            return [canonical_zone(value) or value]
        return super().format_value(value)


class AdminTimeZoneWidget(TimeZoneWidget):
    """The picker styled as Unfold's inputs."""

    select_template = "unfold/widgets/select.html"

    def __init__(self, attrs=None):
        from unfold.widgets import INPUT_CLASSES, SELECT_CLASSES  # noqa: PLC0415

        attrs = {**(attrs or {}), "class": " ".join([*SELECT_CLASSES, (attrs or {}).get("class", "")])}
        super().__init__(attrs, search_attrs={"class": " ".join(INPUT_CLASSES)})


class TimeZoneField(forms.CharField):
    """One IANA zone; an alias is cleaned to its canonical name; a non-place is a form error."""

    widget = TimeZoneWidget

    default_error_messages = {
        "unknown": _("“%(value)s” is not a time zone. Choose one from the list, e.g. Asia/Shanghai."),
    }

    def __init__(self, **kwargs):
        kwargs.pop("max_length", None)
        kwargs.pop("empty_value", None)
        super().__init__(max_length=64, **kwargs)

    def prepare_value(self, value):
        return canonical_zone(value) or value if isinstance(value, str) and value else value

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        zone = canonical_zone(value)
        if zone is None:
            raise ValidationError(self.error_messages["unknown"], code="unknown", params={"value": value[:64]})
        return zone

    def widget_attrs(self, widget):
        return {}  # no maxlength on a select

    def has_changed(self, initial, data):
        return (canonical_zone(initial or "") or initial or "") != (canonical_zone(data or "") or data or "")
