"""The values a campaign gives its template's declared variables (``Campaign.template_values``)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from ..models import Campaign, MessageTemplate
from ..templating import BASE_NAMES

MAX_VALUE_LENGTH = 500


def declared_variables(template: MessageTemplate | None) -> list[str]:
    """The names a campaign fills in for ``template``: its declared variables, minus the names
    every message already has (``recipient``, ``campaign``...), in the order declared."""
    if template is None:
        return []
    names = [n for n in (template.variables or []) if isinstance(n, str) and n.strip()]
    return [n for n in dict.fromkeys(names) if n not in BASE_NAMES]


def template_values_clean(*, template: MessageTemplate | None, values: dict[str, Any]) -> dict[str, str]:
    """Only declared names, as trimmed text; a value that is too long raises ValueError with a
    sentence. Blank values are left out, so pre-flight reports them as missing."""
    cleaned = {}
    for name in declared_variables(template):
        value = str(values.get(name, "") or "").strip()
        if len(value) > MAX_VALUE_LENGTH:
            raise ValueError(_("The value of “%(name)s” is longer than %(n)d characters.")
                             % {"name": name, "n": MAX_VALUE_LENGTH})
        if value:
            cleaned[name] = value
    return cleaned


def campaign_values(*, campaign: Campaign) -> dict[str, str]:
    """The stored values of the template's current declared variables (a value for a name the
    template no longer declares is not passed on)."""
    stored = campaign.template_values or {}
    return {name: str(stored[name]) for name in declared_variables(campaign.template) if name in stored}


def missing_values(*, campaign: Campaign) -> list[str]:
    given = campaign_values(campaign=campaign)
    return [name for name in declared_variables(campaign.template) if not given.get(name)]
