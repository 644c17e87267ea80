"""What an approval covers, in words: a snapshot of the fingerprinted parts, and a diff.

``campaign_snapshot`` records the parts ``approvals.campaign_fingerprint`` digests (audience,
template wording per locale, channels, category, schedule) as language-neutral data: the
author's own text and codes, never translated labels. ``snapshot_lines`` renders a snapshot in
the reader's language, so an approval given in Chinese and a resubmission read in English still
diff only where the campaign changed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import Audience, AudienceMember, Campaign, CampaignVariant, Category, Channel, MessageTemplate

PARTS = ("audience", "template", "channels", "category", "schedule")
PART_TITLES = {
    "audience": gettext_lazy("Audience"),
    "template": gettext_lazy("Content"),
    "channels": gettext_lazy("Channels"),
    "category": gettext_lazy("Category"),
    "schedule": gettext_lazy("Schedule"),
}
SCHEDULE_FIELDS = ("schedule", "send_at", "rrule", "schedule_timezone", "recurrence_start", "local_send_date",
                   "local_send_time", "max_lateness", "throttle_per_minute", "frequency_cap_per_day")
FREQUENCIES = {
    "HOURLY": gettext_lazy("every hour"), "DAILY": gettext_lazy("every day"),
    "WEEKLY": gettext_lazy("every week"), "MONTHLY": gettext_lazy("every month"),
    "YEARLY": gettext_lazy("every year"),
}
UNITS = {
    "HOURLY": gettext_lazy("hours"), "DAILY": gettext_lazy("days"), "WEEKLY": gettext_lazy("weeks"),
    "MONTHLY": gettext_lazy("months"), "YEARLY": gettext_lazy("years"),
}
WEEKDAYS = {
    "MO": gettext_lazy("Monday"), "TU": gettext_lazy("Tuesday"), "WE": gettext_lazy("Wednesday"),
    "TH": gettext_lazy("Thursday"), "FR": gettext_lazy("Friday"), "SA": gettext_lazy("Saturday"),
    "SU": gettext_lazy("Sunday"),
}


def rules_summary(rules: Any) -> str:
    """A rule tree on one line: ``all of (user.username startswith "f", not (…))``."""
    if not rules:
        return "*"
    if isinstance(rules, dict):
        for key in ("all", "any"):
            if key in rules:
                inner = [rules_summary(node) for node in rules[key] or []]
                return f"{key} of (" + ", ".join(inner) + ")"
        if "not" in rules:
            return f"not ({rules_summary(rules['not'])})"
        if "field" in rules:
            value = rules.get("value")
            shown = f'"{value}"' if isinstance(value, str) else str(value)
            return f"{rules['field']} {rules.get('op', '')} {shown}"
    return str(rules)


def _audience(audience: Audience) -> dict[str, Any]:
    if audience.kind == Audience.Kind.STATIC:
        # As the approval digests it (approvals.audience_digest): how many, and the newest member,
        # so swapping one person shows in the diff as it voids the approval.
        members = AudienceMember.objects.filter(audience_id=audience.pk)
        newest = members.order_by("-pk").values_list("user__username", flat=True).first()
        return {"name": audience.name, "kind": "static", "members": members.count(), "newest": newest or ""}
    return {"name": audience.name, "kind": "rules", "rules": rules_summary(audience.rules)}


def _template(template: MessageTemplate) -> dict[str, Any]:
    locales = {template.locale: template.parts()}
    for variant in template.variants.order_by("locale"):
        locales[variant.locale] = {name: value for name, value in variant.parts().items() if value}
    return {"name": template.name, "variables": list(template.variables or []), "locales": locales}


def _ab_test(campaign: Campaign) -> dict[str, Any]:
    """The A/B test as approved (nothing when there is none, so older snapshots still compare)."""
    variants = list(CampaignVariant.objects.filter(campaign_id=campaign.pk).select_related("template")
                    .order_by("label")) if campaign.pk else []
    if not variants:
        return {}
    return {"ab_test": {
        "share": campaign.test_share, "metric": campaign.test_metric,
        "window_minutes": int(campaign.test_window.total_seconds() // 60),
        "variants": [{"label": v.label, "template": _template(v.template) if v.template_id else None,
                      "subject": v.email_subject} for v in variants],
    }}


def _ab_test_lines(data: dict[str, Any]) -> list[str]:
    metric = dict(Campaign.TestMetric.choices).get(data.get("metric"), data.get("metric"))
    lines = [_("A/B test: %(share)s %% of recipients split among the variants; winner by %(metric)s after "
               "%(minutes)s minutes") % {"share": data.get("share"), "metric": metric, "minutes": data.get("window_minutes")}]
    for variant in data.get("variants") or []:
        template = variant.get("template")
        name = template["name"] if template else _("the campaign's template")
        line = _("Variant %(label)s: %(template)s") % {"label": variant.get("label"), "template": name}
        if variant.get("subject"):
            line += " · " + _("subject “%(subject)s”") % {"subject": variant["subject"]}
        lines.append(line)
        for locale, parts in ((template or {}).get("locales") or {}).items():
            for part, text in parts.items():
                for row, piece in enumerate((text or "").splitlines()):
                    lines.append(f"  {variant.get('label')} [{locale}] {part if row == 0 else '…'}: {piece}")
    return lines


def _schedule_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, int)):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def campaign_snapshot(campaign: Campaign) -> dict[str, Any]:
    """The approved parts of ``campaign`` as they are now, as plain JSON data."""
    category = campaign.category
    return {
        "audience": _audience(campaign.audience),
        # The values filled in for the template's variables are part of what is approved (the
        # fingerprint digests them with the template): a changed promo code shows in the diff.
        "template": {**_template(campaign.template), "values": dict(sorted((campaign.template_values or {}).items())),
                     **_ab_test(campaign)},
        "channels": {"channels": list(campaign.channels or []), "mode": campaign.delivery_mode},
        "category": {"name": category.name, "kind": category.kind, "opt_out": category.user_can_opt_out,
                     "default": category.default_enabled},
        "schedule": {name: _schedule_value(getattr(campaign, name)) for name in SCHEDULE_FIELDS},
    }


def channel_names(channels: list[str]) -> list[str]:
    labels = dict(Channel.choices)
    return [str(labels.get(code, code)) for code in channels]


def rrule_words(rrule: str) -> str:
    """``FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=9;BYMINUTE=0`` -> "every week on Monday, Thursday at 09:00"."""
    parts = dict(item.split("=", 1) for item in rrule.upper().split(";") if "=" in item)
    freq = parts.get("FREQ", "")
    words = [str(FREQUENCIES.get(freq, freq.lower()))]
    interval = parts.get("INTERVAL", "1")
    if interval.isdigit() and int(interval) > 1:
        words = [_("every %(n)s %(unit)s") % {"n": interval, "unit": str(UNITS.get(freq, freq.lower()))}]
    if parts.get("BYDAY"):
        days = [str(WEEKDAYS.get(re.sub(r"^[+-]?\d+", "", day), day)) for day in parts["BYDAY"].split(",")]
        words.append(_("on %(days)s") % {"days": ", ".join(days)})
    if parts.get("BYMONTHDAY"):
        words.append(_("on day %(days)s of the month") % {"days": parts["BYMONTHDAY"]})
    hours = parts.get("BYHOUR", "").split(",")[0]
    if hours.isdigit():
        minute = parts.get("BYMINUTE", "0").split(",")[0]
        words.append(_("at %(time)s") % {"time": f"{int(hours):02d}:{int(minute) if minute.isdigit() else 0:02d}"})
    return " ".join(words)


def schedule_words(data: dict[str, Any]) -> str:
    kind = data.get("schedule")
    tz = data.get("schedule_timezone") or "UTC"
    if kind == Campaign.Schedule.ONCE:
        when = (data.get("send_at") or "").replace("T", " ")[:16]
        return _("Once, at %(when)s (UTC)") % {"when": when}
    if kind == Campaign.Schedule.RECURRING:
        start = (data.get("recurrence_start") or "").replace("T", " ")[:16]
        return _("Recurring: %(rule)s, in %(tz)s, from %(start)s (UTC)") % {
            "rule": rrule_words(data.get("rrule") or ""), "tz": tz, "start": start}
    if kind == Campaign.Schedule.LOCAL_TIME:
        return _("On %(day)s at %(time)s in each recipient's own time zone") % {
            "day": data.get("local_send_date") or "", "time": (data.get("local_send_time") or "")[:5]}
    return _("As soon as it is launched")


def snapshot_lines(snapshot: dict[str, Any], part: str) -> list[str]:
    """One part of a snapshot as lines of text in the reader's language."""
    data = snapshot.get(part) or {}
    if not data:
        return []
    if part == "audience":
        lines = [_("Name: %(name)s") % {"name": data.get("name", "")}]
        if data.get("kind") == "static":
            lines.append(_("A static list of %(n)s members") % {"n": data.get("members", 0)})
            if data.get("newest"):
                lines.append(_("Newest member: %(name)s") % {"name": data["newest"]})
        else:
            lines.append(_("Rules: %(rules)s") % {"rules": data.get("rules", "")})
        return lines
    if part == "template":
        lines = [_("Template: %(name)s") % {"name": data.get("name", "")}]
        lines += [_("Value of “%(name)s”: %(value)s") % {"name": name, "value": value}
                  for name, value in (data.get("values") or {}).items()]
        labels = {name: MessageTemplate._meta.get_field(name).verbose_name for name in MessageTemplate.PART_FIELDS}
        for locale, parts in (data.get("locales") or {}).items():
            for name in MessageTemplate.PART_FIELDS:
                for row, text in enumerate((parts.get(name) or "").splitlines()):
                    label = str(labels[name]) if row == 0 else "…"
                    lines.append(f"[{locale}] {label}: {text}")
        if data.get("ab_test"):
            lines += _ab_test_lines(data["ab_test"])
        return lines
    if part == "channels":
        names = " → ".join(channel_names(data.get("channels") or []))
        mode = dict(Campaign.ChannelUse.choices).get(data.get("mode"), data.get("mode"))
        return [names or "—", str(mode)]
    if part == "category":
        kind = dict(Category.Kind.choices).get(data.get("kind"), data.get("kind"))
        may = _("recipients may opt out") if data.get("opt_out") else _("recipients cannot opt out")
        lines = [f"{data.get('name', '')} ({kind}; {may})"]
        if "default" in data:  # snapshots from before it was recorded have no such key
            lines.append(_("Opted in until a recipient opts out") if data["default"]
                         else _("Opted out until a recipient opts in"))
        return lines
    if part == "schedule":
        lines = [schedule_words(data)]
        if data.get("throttle_per_minute"):
            lines.append(_("At most %(n)s messages a minute") % {"n": data["throttle_per_minute"]})
        if data.get("frequency_cap_per_day"):
            lines.append(_("At most %(n)s marketing messages a day per recipient") % {"n": data["frequency_cap_per_day"]})
        return lines
    return []


@dataclass(frozen=True)
class PartDiff:
    part: str
    title: str
    changed: bool
    lines: list[tuple[str, str]]  # ("+" | "-" | " ", text)


def snapshot_diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[PartDiff]:
    """Each part, line by line: what the last approval covered (``-``) and what is asked now (``+``)."""
    result = []
    for part in PARTS:
        old, new = snapshot_lines(before or {}, part), snapshot_lines(after, part)
        lines = []
        for line in difflib.ndiff(old, new):
            if line[:1] in ("+", "-", " "):
                lines.append((line[0], line[2:]))
        result.append(PartDiff(part=part, title=str(PART_TITLES[part]), changed=old != new, lines=lines))
    return result
