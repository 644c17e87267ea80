"""The sandbox marketer-authored templates run in, and the budget every render runs under.

Marketers are trusted with wording, not with the server. Templates run in Jinja2's
``ImmutableSandboxedEnvironment`` (no ``_``-attributes, no mutating lists or dicts), and on top of
that this module makes sure every template ends, quickly, as text or as a
``TemplateRenderError``:

* **A small dialect.** ``{{ }}``, ``{% if %}``, ``{% for %}`` (not recursive), ``{% set x = ... %}``,
  ``{% with %}``, comments, tests and an allow-list of filters. No macros, ``{% call %}``, block
  ``{% set %}``, ``{% filter %}``, blocks, includes or imports: none is needed to word a message,
  and without them all output streams straight out (nothing accumulates out of sight).
* **A deadline.** Every loop step, call, attribute lookup, filter and operator checks the clock
  (``SIGNALBOX_TEMPLATE_RENDER_MS``). A loop body that does nothing still steps its loop, so
  ``{% for %}`` bombs stop.
* **Bounded values.** Strings never exceed ``SIGNALBOX_TEMPLATE_MAX_OUTPUT`` characters, lists and
  dicts never hold more than ``MAX_ITEMS`` (counted deeply), integers stay under
  ``MAX_INT_BITS``; operators (``* ** + % ~``), literals and filters that could build something
  bigger are checked *before* they build it, so a bomb is refused rather than allocated.
* **Plain output only.** Only text, numbers, dates, lists and dicts print; functions, loops,
  generators and classes are refused, so no object repr (or memory address) reaches a message.
* **An output cap.** Output is streamed and counted.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.utils.translation import gettext_lazy as _
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes, pass_context
from jinja2.exceptions import SecurityError, TemplateAssertionError, UndefinedError
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

from .errors import TemplateRenderError
from .filters import _CONCAT, _LITERAL, _LOOP, template_filters
from .limits import (
    CURRENT_BUDGET,
    MAX_INT_BITS,
    MAX_ITEMS,
    Budget,
    CappedFormatter,
    NamespaceGlobal,
    RangeGlobal,
    checked,
    checkpoint,
    container_cost,
    max_output,
    percent_format,
    plain_text,
    too_large,
    too_many,
)

MAX_SOURCE = 100_000  # characters of template source per part
# Private-use characters that mark printed values in the email body (see ``email.py``); they
# are removed from sources so a template cannot forge a marker.
TOKEN_OPEN, TOKEN_CLOSE = "\ue000", "\ue001"


# --- The environment -----------------------------------------------------------------------------

SAFE_STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "format", "index", "isalnum", "isalpha", "isdigit",
    "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip", "partition", "removeprefix",
    "removesuffix", "rfind", "rindex", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith",
    "strip", "swapcase", "title", "upper",
})
SAFE_DICT_METHODS = frozenset({"items", "keys", "values", "get"})
SAFE_LIST_METHODS = frozenset({"index", "count"})
SAFE_LOOP_ATTRIBUTES = frozenset({
    "index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0", "previtem",
    "nextitem", "cycle", "changed",
})
SAFE_DATE_ATTRIBUTES = frozenset({
    "year", "month", "day", "hour", "minute", "second", "weekday", "isoweekday", "isoformat", "strftime",
    "days", "seconds", "total_seconds",
})


class SignalboxSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with allow-listed attributes, capped operators and a deadline."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *, finalize: Any, autoescape: bool) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=autoescape, finalize=finalize,
                         keep_trailing_newline=False, auto_reload=False, cache_size=0)
        self.globals.clear()
        self.globals.update({"range": RangeGlobal(), "namespace": NamespaceGlobal()})
        self.filters = template_filters()

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, str):
            return attr in SAFE_STR_METHODS
        if isinstance(obj, dict):
            return attr in SAFE_DICT_METHODS
        if isinstance(obj, tuple) and attr in getattr(type(obj), "_fields", ()):
            return True  # named tuples, e.g. groupby's (grouper, list)
        if isinstance(obj, (list, tuple)):
            return attr in SAFE_LIST_METHODS
        if isinstance(obj, LoopContext):
            return attr in SAFE_LOOP_ATTRIBUTES
        if isinstance(obj, Namespace):
            return True
        if isinstance(obj, (date, time, timedelta)):
            return attr in SAFE_DATE_ATTRIBUTES
        return False

    def getattr(self, obj: Any, attribute: str) -> Any:
        checkpoint()
        if isinstance(obj, Undefined):
            str(obj)  # "'cycler' is undefined" says more than "'__init__' is unsafe"
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        checkpoint()
        if isinstance(obj, Undefined):
            str(obj)
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        checkpoint()
        return checked(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
            "format", "format_map"
        ) or not isinstance(value.__self__, str):
            return None
        if value.__name__ == "format_map":
            def refuse(*args: Any, **kwargs: Any) -> str:
                raise TemplateRenderError(_("format_map() is not available; use format()."))
            return refuse
        fmt = str.__str__(value.__self__)

        def format_(*args: Any, **kwargs: Any) -> str:
            if len(fmt) > max_output():
                raise too_large(max_output())
            return checked(CappedFormatter(self).vformat(fmt, args, kwargs))

        return format_

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        checkpoint()
        if operator == "%" and isinstance(left, str):
            return percent_format(left, right)
        if operator == "*":
            _precheck_multiply(left, right)
        elif operator == "**":
            _precheck_power(left, right)
        return checked(self.binop_table[operator](left, right))


def _precheck_multiply(left: Any, right: Any) -> None:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(times, int) and isinstance(sequence, (str, list, tuple)) and times > 0:
            if isinstance(sequence, str):
                if len(sequence) * times > max_output():
                    raise too_large(max_output())
            elif container_cost(sequence) * times > MAX_ITEMS:
                raise too_many()
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise TemplateRenderError(_("A number is too large (over %(bits)d bits).") % {"bits": MAX_INT_BITS})


def _precheck_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if base.bit_length() * exponent > MAX_INT_BITS:
            raise TemplateRenderError(_("A number is too large (over %(bits)d bits).") % {"bits": MAX_INT_BITS})
    if isinstance(exponent, (int, float, Decimal)) and isinstance(base, Decimal) and abs(exponent) > MAX_INT_BITS:
        raise TemplateRenderError(_("An exponent is too large."))


# --- Compiling -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceProblem:
    line: int | None
    message: Any


_FORBIDDEN: tuple[tuple[type[nodes.Node], Any], ...] = (
    (nodes.Macro, _("Macros are not available in message templates.")),
    (nodes.CallBlock, _("“call” blocks are not available in message templates.")),
    (nodes.FilterBlock, _("“filter” blocks are not available; apply the filter to a value instead.")),
    (nodes.AssignBlock, _("Block assignments (“set” … “endset”) are not available; use “set name = value”.")),
    (nodes.Block, _("Template blocks are not available in message templates.")),
    (nodes.Extends, _("“extends” is not available: a message template stands alone.")),
    (nodes.Include, _("“include” is not available: a message template stands alone.")),
    (nodes.Import, _("“import” is not available: a message template stands alone.")),
    (nodes.FromImport, _("“import” is not available: a message template stands alone.")),
    (nodes.EvalContextModifier, _("“autoescape” is not needed: values are escaped wherever the output is HTML.")),
)


def _forbidden(ast: nodes.Template) -> list[SourceProblem]:
    found = []
    for node in ast.find_all(nodes.Node):
        for kind, message in _FORBIDDEN:
            if isinstance(node, kind):
                found.append(SourceProblem(node.lineno, message))
                break
        else:
            if isinstance(node, nodes.For) and node.recursive:
                found.append(SourceProblem(node.lineno, _("Recursive loops are not available in message templates.")))
            elif isinstance(node, nodes.Name) and node.name == "self":
                found.append(SourceProblem(node.lineno, _("'self' is not available in message templates.")))
    return found


def _internal_filter(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Budgeter(NodeTransformer):
    """Rewrites a template so loops step a budget and ``~``/literals go through size checks."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _internal_filter(node.iter, _LOOP)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _internal_filter(nodes.List(list(node.nodes), lineno=node.lineno), _CONCAT)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _internal_filter(node, _LITERAL)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return _internal_filter(node, _LITERAL)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return _internal_filter(node, _LITERAL) if node.ctx == "load" else node


def parse_source(env: SignalboxSandbox, source: str) -> tuple[nodes.Template | None, list[SourceProblem]]:
    """Parse and vet a template source; the tree is None when there are problems."""
    if len(source) > MAX_SOURCE:
        return None, [SourceProblem(None, _("The text is longer than %(n)d characters.") % {"n": MAX_SOURCE})]
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        return None, [SourceProblem(exc.lineno, exc.message or str(exc))]
    except RecursionError:
        return None, [SourceProblem(None, _("The template is nested too deeply."))]
    problems = _forbidden(ast)
    return (None if problems else ast), problems


def clean_source(source: str) -> str:
    return source.replace(TOKEN_OPEN, "").replace(TOKEN_CLOSE, "")


def compile_ast(env: SignalboxSandbox, ast: nodes.Template) -> Template:
    """Compile a vetted tree (``TemplateAssertionError`` for an unknown filter or test)."""
    ast = _Budgeter().visit(ast)
    ast.set_environment(env)
    return env.from_string(ast)


@lru_cache(maxsize=1024)
def compiled_source(kind: str, source: str) -> Template | TemplateRenderError:
    """The compiled template for ``source`` in the ``"text"`` or ``"html"`` environment, or the
    error that stops it compiling. Cached per process: sources repeat across batches."""
    env = environment(kind)
    ast, problems = parse_source(env, clean_source(source))
    if problems:
        return TemplateRenderError(problems[0].message, line=problems[0].line)
    try:
        return compile_ast(env, ast)
    except TemplateAssertionError as exc:
        return TemplateRenderError(exc.message or str(exc), line=exc.lineno)
    except RecursionError:
        return TemplateRenderError(_("The template is nested too deeply."))


# --- Rendering -----------------------------------------------------------------------------------

@pass_context
def _finalize_text(context: Context, value: Any) -> str:
    return plain_text(value)


@pass_context
def _finalize_html(context: Context, value: Any) -> str:
    """Print a value in the email body as a marker; ``email.py`` puts the escaped value back
    after Markdown, so a value can never add markup, or Markdown, of its own."""
    text = plain_text(value)
    budget = CURRENT_BUDGET.get()
    if budget is None or budget.tokens is None:
        return text
    marker = f"{TOKEN_OPEN}{len(budget.tokens)}{TOKEN_CLOSE}"
    budget.tokens.append(text)
    budget.add_output(len(text) - len(marker))
    return marker


@lru_cache(maxsize=2)
def environment(kind: str) -> SignalboxSandbox:
    """``"text"``: plain text parts. ``"html"``: the Markdown email body (values as markers)."""
    if kind == "html":
        return SignalboxSandbox(finalize=_finalize_html, autoescape=True)
    return SignalboxSandbox(finalize=_finalize_text, autoescape=False)


def _template_line(exc: BaseException) -> int | None:
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def describe(exc: BaseException) -> Any:
    if isinstance(exc, UndefinedError | SecurityError):
        return exc.message or str(exc)
    if isinstance(exc, MemoryError):
        return _("The template needs too much memory.")
    if isinstance(exc, RecursionError):
        return _("The template is nested too deeply.")
    if isinstance(exc, KeyError):
        return _("There is no %(key)s here.") % {"key": repr(exc.args[0]) if exc.args else "key"}
    text = str(exc)
    return (text[:300] if text else type(exc).__name__)


def render(template: Template, context: dict[str, Any], *, budget: Budget) -> str:
    """Render under ``budget``; every failure becomes a ``TemplateRenderError`` with its line."""
    reset = CURRENT_BUDGET.set(budget)
    try:
        chunks = []
        for chunk in template.generate(context):
            budget.add_output(len(chunk))
            budget.check()
            chunks.append(chunk)
        return "".join(chunks)
    except TemplateRenderError as exc:
        if exc.line is None:
            exc.line = _template_line(exc)
        raise
    except Exception as exc:  # a template must never take the caller down with it
        raise TemplateRenderError(describe(exc), line=_template_line(exc)) from None
    finally:
        CURRENT_BUDGET.reset(reset)


def render_source(kind: str, source: str, context: dict[str, Any], *, tokens: bool = False) -> tuple[str, Budget]:
    compiled = compiled_source(kind, source)
    if isinstance(compiled, TemplateRenderError):
        raise TemplateRenderError(compiled.message, line=compiled.line)
    budget = Budget.start(tokens=tokens)
    return render(compiled, context, budget=budget), budget


__all__ = [
    "MAX_ITEMS", "Budget", "SignalboxSandbox", "TemplateRenderError", "compiled_source", "environment",
    "parse_source", "plain_text", "render", "render_source",
]
