"""The limits every render runs under: a deadline, bounded values, plain output.

A ``Budget`` is set for the render in progress (a context variable, so threads and tasks never
share one) and every hook the sandbox offers checks it: loop steps, calls, attribute lookups,
filters and operators. Values are bounded *before* they are built: strings to
``SIGNALBOX_TEMPLATE_MAX_OUTPUT`` characters, lists and dicts to ``MAX_ITEMS`` (counted deeply, so
shared references count each time), integers to ``MAX_INT_BITS``. Only plain values (text,
numbers, dates, lists and dicts of them) ever become text, so no object repr or memory address
can reach a message.
"""

from __future__ import annotations

import gc
import re
import threading
import types
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from time import thread_time
from typing import Any

from django.utils.translation import gettext_lazy as _
from jinja2.runtime import LoopContext, Undefined
from jinja2.sandbox import SandboxedFormatter
from jinja2.utils import Namespace

from .. import conf
from .errors import TemplateRenderError

MAX_ITEMS = 100_000  # list/dict size, counted deeply; also the longest range()
MAX_INT_BITS = 4096  # about 1,200 digits: far more than any price or count
MAX_WIDTH = 1000  # widths and precisions in format specs, ljust-like filters' widths


# --- The budget of the render in progress --------------------------------------------------------

@dataclass
class Budget:
    """One render's clock, output counter and (in the email body) the values printed so far.

    The clock is the rendering thread's CPU time (``time.thread_time``), not the wall clock: a
    hostile template burns CPU and is stopped; a benign one on a busy machine (descheduled, other
    processes on the cores) must not fail a real message because of time it never ran. Nor
    because of the process's garbage collections that happened to run in its thread: a full
    collection of a big worker's heap can take hundreds of milliseconds of CPU, none of it the
    template's (it failed one benign email of 8,000 in a test run). Those are taken off the clock.
    """

    deadline: float
    limit_ms: int
    max_output: int
    output: int = 0
    tokens: list[str] | None = None
    collecting_at_start: float = 0.0

    @classmethod
    def start(cls, *, tokens: bool = False) -> Budget:
        limit = conf.template_render_ms()
        return cls(deadline=thread_time() + limit / 1000, limit_ms=limit, max_output=conf.template_max_output(),
                   tokens=[] if tokens else None, collecting_at_start=_collecting_time())

    def check(self) -> None:
        if thread_time() - (_collecting_time() - self.collecting_at_start) > self.deadline:
            raise TemplateRenderError(_("Rendering took longer than %(ms)d ms.") % {"ms": self.limit_ms})

    def add_output(self, size: int) -> None:
        self.output += size
        if self.output > self.max_output:
            raise too_large(self.max_output)


CURRENT_BUDGET: ContextVar[Budget | None] = ContextVar("signalbox_template_budget", default=None)

# CPU time each thread spent in garbage collection (``gc.callbacks`` run in the collecting thread).
_collecting = threading.local()


def _collecting_time() -> float:
    return getattr(_collecting, "total", 0.0)


def _gc_clock(phase: str, info: dict) -> None:
    if phase == "start":
        _collecting.started = thread_time()
    elif (started := getattr(_collecting, "started", None)) is not None:
        _collecting.total = _collecting_time() + thread_time() - started
        _collecting.started = None


if _gc_clock not in gc.callbacks:
    gc.callbacks.append(_gc_clock)


def too_large(limit: int) -> TemplateRenderError:
    if limit % 1000 == 0:
        return TemplateRenderError(_("Output is larger than %(kb)d KB.") % {"kb": limit // 1000})
    return TemplateRenderError(_("Output is larger than %(n)d characters.") % {"n": limit})


def checkpoint() -> Budget | None:
    """Check the deadline of the render in progress (none while compiling)."""
    budget = CURRENT_BUDGET.get()
    if budget is not None:
        budget.check()
    return budget


def max_output() -> int:
    budget = CURRENT_BUDGET.get()
    return budget.max_output if budget is not None else conf.template_max_output()


# --- Plain values --------------------------------------------------------------------------------

_SCALARS = (str, int, float, Decimal, date, time, timedelta)


def _kind(value: Any) -> str:
    """A harmless name for a value's kind, for error messages (never its repr)."""
    if isinstance(value, LoopContext):
        return str(_("loop"))
    if isinstance(value, BudgetedRange):
        return str(_("range (add |list to print it)"))
    if isinstance(value, (types.GeneratorType, map, filter, Iterator)):
        return str(_("sequence (add |list to print it)"))
    if isinstance(value, Namespace):
        return str(_("namespace"))
    if isinstance(value, type):
        return str(_("class"))
    if callable(value):
        return str(_("function"))
    return type(value).__name__


def _unprintable(value: Any) -> TemplateRenderError:
    return TemplateRenderError(
        _("A %(kind)s cannot be printed; only text, numbers, dates, lists and dicts can.") % {"kind": _kind(value)}
    )


def too_many() -> TemplateRenderError:
    return TemplateRenderError(_("A list or dict holds more than %(n)d items.") % {"n": MAX_ITEMS})


def _children(value: Any) -> Iterable[Any] | None:
    if isinstance(value, (list, tuple)):
        return value
    if isinstance(value, dict):
        return (item for pair in value.items() for item in pair)
    if isinstance(value, Namespace):
        return _children(object.__getattribute__(value, "_Namespace__attrs"))
    return None


def container_cost(value: Any, *, limit: int = MAX_ITEMS) -> int:
    """How big a value is, counted deeply (a shared list counts each time it appears) and with
    long strings weighing more; stops counting as soon as ``limit`` is passed.

    Bounding this for every list a template builds keeps comparisons, sorting and printing of
    anything a template can reach cheap, however it nests references.
    """
    cost, stack = -1, [value]  # the container itself is free: range(MAX_ITEMS)|list is allowed
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            cost += 1 + len(item) // 100
        elif isinstance(item, BudgetedRange):
            cost += 1 + len(item)
        else:
            cost += 1
            children = _children(item)
            if children is not None:
                stack.extend(children)
        if cost > limit:
            return cost
    return cost


def checked(value: Any) -> Any:
    """``value``, if it is within the size limits; what every operator and filter returns through."""
    if isinstance(value, str):
        if len(value) > max_output():
            raise too_large(max_output())
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise TemplateRenderError(_("A number is too large (over %(bits)d bits).") % {"bits": MAX_INT_BITS})
    elif isinstance(value, (list, tuple, dict, Namespace)):
        if container_cost(value) > MAX_ITEMS:
            raise too_many()
    return value


def plain_text(value: Any) -> str:
    """The text of a plain value (text, number, date, list or dict of those), or a clear refusal.

    The one way values turn into text in the sandbox: printing, ``~``, ``|string``, ``|join``,
    ``format``. ``None`` is empty text.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Undefined):
        return str(value)  # StrictUndefined: raises "'x' is undefined"
    if isinstance(value, (list, tuple, dict)):
        _check_plain_structure(value)
        text = str(value)
    elif isinstance(value, _SCALARS):
        text = str(checked(value))
    else:
        raise _unprintable(value)
    if len(text) > max_output():
        raise too_large(max_output())
    return text


def _check_plain_structure(value: Any) -> None:
    limit = max_output()
    size, count, stack = 0, 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, str):
            size += len(item) + 4
        elif isinstance(item, (list, tuple, dict)):
            size += 2
            stack.extend(_children(item))
        elif item is None or isinstance(item, _SCALARS):
            size += 8 if not isinstance(item, int) else 2 + item.bit_length() // 3
        elif isinstance(item, Undefined):
            str(item)
        else:
            raise _unprintable(item)
        if size > limit:
            raise too_large(limit)
        if count > MAX_ITEMS:
            raise too_many()


# --- Iteration -----------------------------------------------------------------------------------

def budgeted(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate, checking the deadline at every step: how loops and sequence filters are bounded."""
    budget = CURRENT_BUDGET.get()
    for item in iterable:
        if budget is not None:
            budget.check()
        yield item


class BudgetedRange:
    """``range()`` for templates: at most ``MAX_ITEMS`` numbers, and every step checks the clock."""

    __slots__ = ("_range",)

    def __init__(self, rng: range) -> None:
        self._range = rng

    def __iter__(self) -> Iterator[int]:
        return budgeted(self._range)

    def __reversed__(self) -> Iterator[int]:
        return budgeted(reversed(self._range))

    def __len__(self) -> int:
        return len(self._range)

    def __contains__(self, item: Any) -> bool:
        return item in self._range

    def __getitem__(self, index: Any) -> Any:
        result = self._range[index]
        return BudgetedRange(result) if isinstance(result, range) else result

    def __repr__(self) -> str:
        return "range"


class RangeGlobal:
    def __call__(self, *args: Any) -> BudgetedRange:
        rng = range(*args)
        if len(rng) > MAX_ITEMS:
            raise TemplateRenderError(_("range() is limited to %(n)d numbers.") % {"n": MAX_ITEMS})
        return BudgetedRange(rng)

    def __repr__(self) -> str:
        return "range"


class NamespaceGlobal:
    def __call__(self, *args: Any, **kwargs: Any) -> Namespace:
        return checked(Namespace(*args, **kwargs))

    def __repr__(self) -> str:
        return "namespace"


# --- Formatting ----------------------------------------------------------------------------------

_NUMBERS = re.compile(r"\d+")
_PERCENT_SPEC = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?(?P<conv>.?)"
)


def _check_width(*numbers: str | None) -> int:
    """The largest of a format's width/precision digits; refuses any over ``MAX_WIDTH``."""
    largest = 0
    for number in numbers:
        if number:
            if len(number) > 4 or int(number) > MAX_WIDTH:
                raise TemplateRenderError(
                    _("A width or precision over %(n)d is not allowed in a format.") % {"n": MAX_WIDTH}
                )
            largest = max(largest, int(number))
    return largest


def _check_spec(spec: str) -> None:
    """A ``str.format`` spec: every number in it counts (width, precision, even inside a date
    pattern, where numbers are rare and small)."""
    _check_width(*_NUMBERS.findall(spec))


def percent_format(fmt: str, values: Any) -> str:
    """``fmt % values`` (the ``%`` operator and ``|format``), refusing what would build a huge string."""
    checkpoint()
    fmt = plain_text(fmt)
    mapping = values if isinstance(values, dict) else None
    sequence = values if isinstance(values, tuple) else (values,)
    estimate, position = len(fmt), 0
    for match in _PERCENT_SPEC.finditer(fmt):
        if match.group("conv") == "%":
            continue
        width, precision = match.group("width"), match.group("precision")
        if "*" in (width or "") + (precision or ""):
            raise TemplateRenderError(_("A '*' width is not allowed in a format."))
        widest = _check_width(width, precision)
        if mapping is not None and match.group("key") is not None:
            value = mapping.get(match.group("key"))
        else:
            value = sequence[position] if position < len(sequence) else None
            position += 1
        text = plain_text(value)
        estimate += max(widest, 4 * len(text) + 2)
        if estimate > max_output():
            raise too_large(max_output())
    for value in (mapping.values() if mapping is not None else sequence):
        plain_text(value)  # refuse anything that is not plain data, whichever conversion uses it
    return checked(fmt % values)


class CappedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, with widths, argument kinds and result size checked."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.size = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        checkpoint()
        _check_spec(format_spec)
        if not isinstance(value, (*_SCALARS, type(None))):
            value = plain_text(value)
        result = format(value, format_spec)
        self.size += len(result)
        if self.size > max_output():
            raise too_large(max_output())
        return result
