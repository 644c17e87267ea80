"""Value types of audience conditions: strict cleaners for untrusted JSON values.

Each cleaner takes the raw JSON value and the allowed choice values (or ``None``) and returns the
value a field's ``to_q`` receives, or raises :class:`InvalidValue` with a human reason. The type
names are also the builder's contract: they decide which input the rule builder shows.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _

MAX_LIST_ITEMS = 500
MAX_TEXT_LENGTH = 200
MAX_DAYS = 3650
MAX_COUNT = 100_000
# Dates outside this range are typos, and staying inside it keeps datetime arithmetic safe.
MIN_YEAR, MAX_YEAR = 1900, 2999


class InvalidValue(Exception):
    """A value problem; the rule compiler turns it into a positioned message."""


def quote_value(value: Any) -> str:
    """A value quoted for a message, cut to 60 characters; never fails, whatever it was given."""
    try:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)[:80]
    except (ValueError, TypeError, RecursionError):  # e.g. an int past Python's 4,300-digit limit
        text = type_name(value)
    text = text.encode("utf-8", "replace").decode("utf-8")
    return repr(text[:60] + ("…" if len(text) > 60 else ""))


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return _("true/false")
    if isinstance(value, (int, float)):
        return _("a number")
    if isinstance(value, str):
        return _("text")
    if isinstance(value, list):
        return _("a list")
    if value is None:
        return _("null")
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _clean_string(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidValue(_("the value must be text"))
    value = value.strip()
    if not value:
        raise InvalidValue(_("enter a value"))
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidValue(_("the value is longer than %(max)d characters") % {"max": MAX_TEXT_LENGTH})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue(_("the value contains characters that cannot be stored")) from None
    if "\x00" in value:
        raise InvalidValue(_("the value contains characters that cannot be stored"))
    return value


def _clean_none(value: Any, choices: frozenset | None) -> None:
    if value is not None:
        raise InvalidValue(_("this operator takes no value"))


def _clean_bool(value: Any, choices: frozenset | None) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(_("the value must be true or false"))
    return value


def _clean_text(value: Any, choices: frozenset | None) -> str:
    value = _clean_string(value)
    if choices is not None and value not in choices:
        raise InvalidValue(_("%(value)s is not one of the choices") % {"value": quote_value(value)})
    return value


def _clean_list(value: Any, choices: frozenset | None, *, item: Callable[[Any], Any]) -> list:
    if not isinstance(value, list):
        raise InvalidValue(_("the value must be a list"))
    if not value:
        raise InvalidValue(_("choose at least one value"))
    if len(value) > MAX_LIST_ITEMS:
        raise InvalidValue(_("choose at most %(max)d values") % {"max": MAX_LIST_ITEMS})
    cleaned = []
    for raw in value:
        one = item(raw)
        if choices is not None and one not in choices:
            raise InvalidValue(_("%(value)s is not one of the choices") % {"value": quote_value(one)})
        if one not in cleaned:
            cleaned.append(one)
    return cleaned


def _clean_choices(value: Any, choices: frozenset | None) -> list[str]:
    return _clean_list(value, choices, item=_clean_string)


def _clean_id(value: Any) -> int:
    if not _is_int(value) or not 1 <= value <= 2**62:
        raise InvalidValue(_("%(value)s is not an id") % {"value": quote_value(value)})
    return value


def _clean_ids(value: Any, choices: frozenset | None) -> list[int]:
    return _clean_list(value, choices, item=_clean_id)


def _bounded_int(value: Any, *, low: int, high: int, what: str) -> int:
    if not _is_int(value):
        raise InvalidValue(_("%(what)s must be a whole number") % {"what": what})
    if not low <= value <= high:
        raise InvalidValue(
            _("%(what)s must be between %(low)d and %(high)d") % {"what": what, "low": low, "high": high}
        )
    return value


def _clean_days(value: Any, choices: frozenset | None) -> int:
    return _bounded_int(value, low=1, high=MAX_DAYS, what=_("the number of days"))


def _clean_integer(value: Any, choices: frozenset | None) -> int:
    return _bounded_int(value, low=0, high=MAX_COUNT, what=_("the number"))


def _clean_date(value: Any, choices: frozenset | None) -> dt.date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise InvalidValue(_("the value must be a date like 2025-01-31"))
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidValue(_("%(value)s is not a real date") % {"value": value}) from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InvalidValue(_("the year must be between %(low)d and %(high)d") % {"low": MIN_YEAR, "high": MAX_YEAR})
    return day


def _clean_count_days(value: Any, choices: frozenset | None) -> dict[str, int]:
    if not isinstance(value, dict) or set(value) != {"count", "days"}:
        raise InvalidValue(_('the value must be {"count": number, "days": number}'))
    return {
        "count": _bounded_int(value["count"], low=1, high=MAX_COUNT, what=_("the count")),
        "days": _bounded_int(value["days"], low=1, high=MAX_DAYS, what=_("the number of days")),
    }


def _clean_text_days(value: Any, choices: frozenset | None) -> dict[str, Any]:
    """``{"text": "sale", "days": 30}``: a piece of text and a window ("a link containing … in
    the last … days")."""
    if not isinstance(value, dict) or set(value) != {"text", "days"}:
        raise InvalidValue(_('the value must be {"text": text, "days": number}'))
    return {
        "text": _clean_string(value["text"]),
        "days": _bounded_int(value["days"], low=1, high=MAX_DAYS, what=_("the number of days")),
    }


def _clean_days_channel(value: Any, choices: frozenset | None) -> dict[str, Any]:
    """``{"days": 14}`` (any channel) or ``{"days": 14, "channel": "sms"}``; ``choices`` are the
    channels."""
    if not isinstance(value, dict) or "days" not in value or not set(value) <= {"days", "channel"}:
        raise InvalidValue(_('the value must be {"days": number} or {"days": number, "channel": channel}'))
    cleaned: dict[str, Any] = {"days": _bounded_int(value["days"], low=1, high=MAX_DAYS, what=_("the number of days"))}
    channel = value.get("channel")
    if channel not in (None, ""):
        channel = _clean_string(channel)
        if choices is not None and channel not in choices:
            raise InvalidValue(_("%(value)s is not a channel") % {"value": quote_value(channel)})
        cleaned["channel"] = channel
    return cleaned


VALUE_TYPES: dict[str, Callable[[Any, frozenset | None], Any]] = {
    "none": _clean_none,
    "bool": _clean_bool,
    "text": _clean_text,
    "choices": _clean_choices,
    "ids": _clean_ids,
    "days": _clean_days,
    "integer": _clean_integer,
    "date": _clean_date,
    "count_days": _clean_count_days,
    "text_days": _clean_text_days,
    "days_channel": _clean_days_channel,
}

#: Value types whose cleaner checks the value against the field's choices.
TYPES_WITH_CHOICES = frozenset({"text", "choices", "ids", "days_channel"})
