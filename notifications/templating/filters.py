"""The filters templates may use: Jinja's own, allow-listed, each wrapped with the limits.

Every filter checks the deadline, takes plain text where it works on text, iterates under the
budget where it walks a sequence, checks arguments that could build something huge *before*
calling Jinja's implementation (``center``, ``indent``, ``replace``, ``wordwrap``, ``batch``...),
and has its result size-checked. ``join``, ``sum`` and ``format`` are our own capped versions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _
from jinja2 import pass_context
from jinja2.filters import FILTERS
from jinja2.runtime import Context, Undefined
from jinja2.utils import _PassArg

from .errors import TemplateRenderError
from .limits import (
    MAX_ITEMS,
    MAX_WIDTH,
    budgeted,
    checked,
    checkpoint,
    max_output,
    percent_format,
    plain_text,
    too_large,
)

# --- Filters -------------------------------------------------------------------------------------

def _text_arg(value: Any) -> str:
    return plain_text(value)


def _int_arg(value: Any, *, name: str, low: int = 0, high: int = MAX_ITEMS) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TemplateRenderError(_("%(name)s must be a whole number.") % {"name": name}) from None
    if not low <= number <= high:
        raise TemplateRenderError(
            _("%(name)s must be between %(low)d and %(high)d.") % {"name": name, "low": low, "high": high}
        )
    return number


def _pre_center(value: str, width: Any = 80) -> None:
    _int_arg(width, name="width", low=0, high=max(MAX_WIDTH, len(value)))


def _pre_indent(value: str, width: Any = 4, first: bool = False, blank: bool = False) -> None:
    pad = len(_text_arg(width)) if isinstance(width, str) else _int_arg(width, name="width", high=MAX_WIDTH)
    if len(value) + (value.count("\n") + 1) * pad > max_output():
        raise too_large(max_output())


def _pre_replace(value: str, old: Any, new: Any, count: Any = None) -> None:
    old, new = _text_arg(old), _text_arg(new)
    occurrences = len(value) + 1 if old == "" else value.count(old)
    if count is not None and int(count) >= 0:
        occurrences = min(occurrences, int(count))
    if len(value) + occurrences * max(0, len(new) - len(old)) > max_output():
        raise too_large(max_output())


def _pre_wordwrap(value: str, width: Any = 79, break_long_words: bool = True, wrapstring: Any = None,
                  break_on_hyphens: bool = True) -> None:
    width = _int_arg(width, name="width", low=1, high=MAX_ITEMS)
    breaks = len(value) // width + value.count("\n") + 1
    if len(value) + breaks * len(_text_arg(wrapstring) if wrapstring is not None else "\n") > max_output():
        raise too_large(max_output())


def _pre_truncate(value: str, length: Any = 255, killwords: bool = False, end: Any = "...", leeway: Any = None) -> None:
    _text_arg(end)


def _pre_batch(value: Any, linecount: Any, fill_with: Any = None) -> None:
    _int_arg(linecount, name="linecount", low=1)


def _pre_slice(value: Any, slices: Any, fill_with: Any = None) -> None:
    _int_arg(slices, name="slices", low=1, high=MAX_WIDTH)


def _pre_trim(value: str, chars: Any = None) -> None:
    if chars is not None:
        _text_arg(chars)


def _pre_urlencode(value: Any) -> None:
    plain_text(value)  # a dict or list of pairs: every key and value must be plain


@pass_context
def _filter_join(context: Context, value: Any, d: Any = "", attribute: Any = None) -> str:
    separator = _text_arg(d)
    parts, size, limit = [], 0, max_output()
    for item in budgeted(value):
        if attribute is not None:
            item = context.environment.getitem(item, attribute)
        text = plain_text(item)
        size += len(text) + len(separator)
        if size > limit + len(separator):
            raise too_large(limit)
        parts.append(text)
    return separator.join(parts)


@pass_context
def _filter_sum(context: Context, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    total = start
    for item in budgeted(iterable):
        if attribute is not None:
            item = context.environment.getitem(item, attribute)
        if isinstance(item, Undefined):
            str(item)
        if not isinstance(item, (int, float, Decimal)) or not isinstance(total, (int, float, Decimal)):
            raise TemplateRenderError(_("sum() adds numbers only."))
        total = checked(total + item)
    return total


@pass_context
def _filter_format(context: Context, value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise TemplateRenderError(_("format takes either positional or keyword arguments, not both."))
    return percent_format(_text_arg(value), kwargs or args)


def _guard(function: Any, *, text: bool = False, iterate: bool = False, precheck: Any = None) -> Any:
    """Wrap a Jinja filter: deadline, plain text in (``text``), budgeted iteration (``iterate``),
    argument checks (``precheck``) and a size check on what comes out.

    The wrapper takes the context, so Jinja never runs a filter while compiling.
    """
    pass_arg = _PassArg.from_obj(function)

    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        checkpoint()
        if text:
            value = plain_text(value)
        elif iterate and not isinstance(value, (str, Undefined, dict)):
            value = budgeted(value)
        if precheck is not None:
            precheck(value, *args, **kwargs)
        if pass_arg is _PassArg.context:
            lead: tuple = (context,)
        elif pass_arg is _PassArg.eval_context:
            lead = (context.eval_ctx,)
        elif pass_arg is _PassArg.environment:
            lead = (context.environment,)
        else:
            lead = ()
        return checked(function(*lead, value, *args, **kwargs))

    guarded.__name__ = getattr(function, "__name__", "filter")
    return guarded


_TEXT_FILTERS = {
    "capitalize": None, "center": _pre_center, "indent": _pre_indent, "lower": None, "replace": _pre_replace,
    "string": None, "striptags": None, "title": None, "trim": _pre_trim, "truncate": _pre_truncate,
    "upper": None, "wordcount": None, "wordwrap": _pre_wordwrap,
}
_SEQUENCE_FILTERS = {
    "batch": _pre_batch, "groupby": None, "list": None, "map": None, "max": None, "min": None, "reject": None,
    "rejectattr": None, "select": None, "selectattr": None, "slice": _pre_slice, "sort": None, "unique": None,
}
_OTHER_FILTERS = {
    "abs": None, "count": None, "d": None, "default": None, "dictsort": None, "filesizeformat": None,
    "first": None, "float": None, "int": None, "items": None, "last": None, "length": None, "random": None,
    "reverse": None, "round": None, "urlencode": _pre_urlencode,
}
# Left out on purpose: attr (reaches attributes by computed name), safe/escape/e/forceescape
# (escaping is automatic and per channel), pprint/tojson/xmlattr/urlize (print or build markup
# from arbitrary objects), join/sum/format (replaced by the capped versions below).
# Internal filters the compiler inserts; their names cannot be written in a template.
_LOOP, _CONCAT, _LITERAL = "\x00loop", "\x00concat", "\x00literal"


@pass_context
def _filter_loop(context: Context, value: Any) -> Any:
    if isinstance(value, Undefined):
        return value
    return budgeted(value)


@pass_context
def _filter_concat(context: Context, parts: list[Any]) -> str:
    checkpoint()
    texts = [plain_text(part) for part in parts]
    if sum(map(len, texts)) > max_output():
        raise too_large(max_output())
    return "".join(texts)


@pass_context
def _filter_literal(context: Context, value: Any) -> Any:
    checkpoint()
    return checked(value)


def template_filters() -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for name, precheck in _TEXT_FILTERS.items():
        filters[name] = _guard(FILTERS[name], text=True, precheck=precheck)
    for name, precheck in _SEQUENCE_FILTERS.items():
        filters[name] = _guard(FILTERS[name], iterate=True, precheck=precheck)
    for name, precheck in _OTHER_FILTERS.items():
        filters[name] = _guard(FILTERS[name], precheck=precheck)
    filters.update({"join": _filter_join, "sum": _filter_sum, "format": _filter_format,
                    _LOOP: _filter_loop, _CONCAT: _filter_concat, _LITERAL: _filter_literal})
    return filters
