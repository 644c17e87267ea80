"""JSON from users, parsed without a 500: one loader (size, depth, storable values) and its form field.

Python's ``json`` recurses once per ``[`` or ``{``: eight kilobytes of ``[[[[…`` raise
``RecursionError``, which is not a ``ValueError`` and so escapes the usual ``except`` as a 500.
Values that parse may still fail later: ``NaN`` and ``Infinity`` are not JSON and PostgreSQL
refuses them, as it refuses ``\\u0000`` and unpaired surrogates in ``jsonb``.

:func:`json_loads_safe` checks, in this order and before any recursion, the size, then the nesting
depth (a linear scan that skips string literals), then parses, then walks the result (iteratively)
for strings a database cannot store. The only exception it raises for bad input is
:class:`JSONInputError`, whose ``message`` is a translated sentence for the user.
:class:`SafeJSONField` is ``forms.JSONField`` on top of it: every JSON field a user can edit in a
form uses it (``SAFE_JSON_FORMFIELDS`` for model admins), so bad input is a form error.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput, JSONString
from django.utils.translation import gettext as _

DEFAULT_MAX_CHARS = 64 * 1024
DEFAULT_MAX_DEPTH = 32

# A JSON string literal (escapes included), removed before counting brackets: brackets inside
# strings do not nest. The unrolled form never backtracks, so the scan stays linear.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class JSONInputError(ValueError):
    """The text is not JSON we accept. ``code``: ``too_long``, ``too_deep``, ``invalid`` or
    ``unstorable``; ``message`` says why in a sentence; ``detail`` is the parser's own words."""

    def __init__(self, code: str, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is out of range")
    return number


def nesting_depth(text: str, *, stop_above: int | None = None) -> int:
    """How deeply ``[``/``{`` nest in JSON text (strings skipped), without parsing or recursing.

    Stops counting once the depth passes ``stop_above``: the answer is then ``stop_above + 1``.
    """
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        else:
            depth -= 1
    return deepest


def _has_unstorable_string(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def json_loads_safe(text: str | bytes, *, max_chars: int = DEFAULT_MAX_CHARS,
                    max_depth: int = DEFAULT_MAX_DEPTH, cls: type[json.JSONDecoder] | None = None) -> Any:
    """Parse JSON a user sent; :class:`JSONInputError` for anything we would not accept.

    Invariants: never raises ``RecursionError`` (or any other exception) for bad input; reads at
    most ``max_chars`` characters (bytes for ``bytes``, which must be UTF-8); the result nests at
    most ``max_depth`` levels, holds only finite numbers and only strings PostgreSQL can store.
    """
    if isinstance(text, (bytes, bytearray)):
        if len(text) > max_chars:
            raise JSONInputError("too_long", _("The JSON is too long (at most %(max)d bytes).") % {"max": max_chars})
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise JSONInputError("invalid", _("The JSON is not valid UTF-8 text.")) from None
    if len(text) > max_chars:
        raise JSONInputError("too_long", _("The JSON is too long (at most %(max)d characters).") % {"max": max_chars})
    too_deep = _("The JSON is nested too deeply (at most %(max)d levels).") % {"max": max_depth}
    if nesting_depth(text, stop_above=max_depth) > max_depth:
        raise JSONInputError("too_deep", too_deep)
    try:
        value = json.loads(text, cls=cls, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:  # not reachable after the scan; kept so a 500 stays impossible
        raise JSONInputError("too_deep", too_deep) from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an int past 4,300 digits
        detail = str(exc) if "integer string conversion" not in str(exc) else _("a number has too many digits")
        raise JSONInputError("invalid", _("This is not valid JSON (%(error)s).") % {"error": detail},
                             detail=detail) from None
    if _has_unstorable_string(value):
        raise JSONInputError(
            "unstorable", _("The JSON contains a character that cannot be stored (NUL or a lone surrogate).")
        )
    return value


class SafeJSONField(forms.JSONField):
    """``forms.JSONField`` parsed with :func:`json_loads_safe`: nested, huge or unstorable JSON is
    a form error, both when cleaning and when the bound value is shown again."""

    def __init__(self, *, max_chars: int = DEFAULT_MAX_CHARS, max_depth: int = DEFAULT_MAX_DEPTH,
                 **kwargs: Any) -> None:
        self.max_chars = max_chars
        self.max_depth = max_depth
        super().__init__(**kwargs)

    def _load(self, text: str) -> Any:
        return json_loads_safe(text, max_chars=self.max_chars, max_depth=self.max_depth, cls=self.decoder)

    def to_python(self, value: Any) -> Any:
        if self.disabled:
            return value
        if value in self.empty_values:
            return None
        if isinstance(value, (list, dict, int, float, JSONString)):
            return value
        try:
            converted = self._load(value)
        except JSONInputError as exc:
            if exc.code == "invalid":
                raise ValidationError(self.error_messages["invalid"], code="invalid", params={"value": value}) from None
            raise ValidationError(exc.message, code=exc.code) from None
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return self._load(data)
        except JSONInputError:
            return InvalidJSONInput(data)


def safe_json_formfields(base: dict | None = None) -> dict:
    """A model admin's ``formfield_overrides`` with every ``models.JSONField`` as a
    :class:`SafeJSONField` (the widget ``base`` gives, e.g. Unfold's inline overrides, is kept)."""
    overrides = {key: dict(value) for key, value in (base or {}).items()}
    overrides.setdefault(models.JSONField, {})["form_class"] = SafeJSONField
    return overrides


SAFE_JSON_FORMFIELDS = safe_json_formfields()
