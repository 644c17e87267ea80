"""Audience rule trees: parsing, strict validation, and compilation to a ``Q``.

A rule tree is JSON a marketer builds in the admin (or pastes as raw JSON)::

    {"all": [
        {"field": "profile.locale", "op": "in", "value": ["zh-hans"]},
        {"any": [
            {"field": "shop.paid_orders", "op": "gte", "value": {"count": 2, "days": 90}},
            {"field": "shop.vip", "op": "is", "value": true}
        ]},
        {"not": {"field": "user.groups", "op": "in", "value": ["Staff testers"]}}
    ]}

A node is a group (``{"all": [...]}``, ``{"any": [...]}``, ``{"not": node}``) or a condition
(``{"field", "op", "value"}``). An empty tree (``{}``) means every active user. An empty group adds
no condition: it is skipped, so half-built trees in the editor behave predictably.

The tree is untrusted input. Validation is strict (node shapes, known fields, operators per field,
value types and bounds, depth and size limits), every problem is reported with the node's position
("Condition 2 of group 1: ...") and the only exception that leaves this module for bad input is
:class:`AudienceRuleError`. Each condition compiles to a ``Q`` that uses ``Exists`` for related
rows, so a compiled tree never multiplies user rows: counts are exact without ``distinct()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from operator import and_, or_
from typing import Any

from django.db.models import Q
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from ..jsonsafe import JSONInputError, json_loads_safe
from .registry import AudienceField, AudienceOp, audience_fields
from .values import (
    MAX_COUNT, MAX_DAYS, MAX_TEXT_LENGTH, TYPES_WITH_CHOICES, VALUE_TYPES, InvalidValue, quote_value, type_name,
)

MAX_DEPTH = 6
MAX_NODES = 100
MAX_RULES_JSON_CHARS = 64 * 1024
# A valid tree is at most ~2 JSON levels per group level, plus a condition and its value.
MAX_JSON_DEPTH = 4 * MAX_DEPTH + 8
MAX_ERRORS = 25
# Listed values become SQL parameters: capped per tree so a tree (or a changelist page of them in
# one aggregate, see ``audience_sizes``) stays far below SQLite's 32,766-parameter limit.
MAX_TOTAL_VALUES = 500

GROUP_KEYS = ("all", "any", "not")
CONDITION_KEYS = frozenset({"field", "op", "value"})


class AudienceRuleError(ValueError):
    """The rule tree is invalid; ``messages`` says where and why, one human sentence each."""

    def __init__(self, messages: Sequence[str]):
        self.messages = [str(m) for m in messages]
        super().__init__("; ".join(self.messages))


def audience_rules_parse(*, text: str | None) -> Any:
    """JSON text from a form or an htmx preview -> a rule tree (not yet validated).

    Parsed by ``json_loads_safe``: size and nesting are capped before parsing, so a request body
    of ten thousand ``[`` is a sentence here, never a ``RecursionError`` (a 500) here or later
    (``json.dumps`` when saving, form change detection).
    """
    if text is None or not text.strip():
        return {}
    try:
        return json_loads_safe(text, max_chars=MAX_RULES_JSON_CHARS, max_depth=MAX_JSON_DEPTH)
    except JSONInputError as exc:
        if exc.code == "too_long":
            message = _("The rules are too long (at most %(max)d characters).") % {"max": MAX_RULES_JSON_CHARS}
        elif exc.code == "too_deep":
            message = _("The rules are nested too deeply.")
        elif exc.code == "invalid":
            message = _("The rules are not valid JSON (%(error)s).") % {"error": exc.detail or exc.message}
        else:
            message = exc.message
        raise AudienceRuleError([message]) from None


def _is_group(node: Any) -> bool:
    return isinstance(node, dict) and any(key in node for key in GROUP_KEYS)


class _RuleCompiler:
    """One walk over a tree: collects positioned errors and builds the ``Q`` in the same pass.

    ``choices_cache`` may be shared between compilations (the changelist compiles every audience
    on a page) so a field's dynamic choices are queried once, not once per condition.
    """

    def __init__(self, *, choices_cache: dict[str, frozenset | None] | None = None):
        self.errors: list[str] = []
        self.nodes = 0
        self.values = 0
        self.too_big = False
        self.choices_cache = {} if choices_cache is None else choices_cache

    def error(self, path: tuple[tuple[str, int], ...], problem: str, *, about: Any = None) -> None:
        if len(self.errors) >= MAX_ERRORS:
            return
        where = _where(path)
        if about is not None:
            where = _("%(where)s (%(field)s)") % {"where": where, "field": about}
        self.errors.append(_("%(where)s: %(problem)s") % {"where": where, "problem": problem})

    def compile(self, rules: Any) -> Q | None:
        if rules is None or rules == {}:
            return None
        return self.node(rules, path=(), depth=0)

    def node(self, node: Any, *, path: tuple, depth: int) -> Q | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if not self.too_big:
                self.too_big = True
                self.errors.append(_("The rules have more than %(max)d conditions and groups.") % {"max": MAX_NODES})
            return None
        if not isinstance(node, dict):
            self.error(path, _("expected a group or a condition, found %(type)s") % {"type": type_name(node)})
            return None
        if _is_group(node):
            return self.group(node, path=path, depth=depth)
        return self.condition(node, path=path)

    def group(self, node: dict, *, path: tuple, depth: int) -> Q | None:
        if len(node) != 1:
            self.error(path, _('a group has exactly one key: "all", "any" or "not"'))
            return None
        if depth >= MAX_DEPTH:
            self.error(path, _("groups are nested more than %(max)d deep") % {"max": MAX_DEPTH})
            return None
        (kind, children), = node.items()
        if kind == "not":
            inner = self.node(children, path=path, depth=depth + 1)
            return ~inner if inner is not None else None
        if not isinstance(children, list):
            self.error(path, _('"%(kind)s" must hold a list of conditions and groups') % {"kind": kind})
            return None
        compiled = []
        for index, child in enumerate(children, start=1):
            if self.too_big:
                break
            kind_label = "group" if _is_group(child) else "condition"
            q = self.node(child, path=(*path, (kind_label, index)), depth=depth + 1)
            if q is not None:
                compiled.append(q)
        if not compiled:
            return None
        return reduce(and_ if kind == "all" else or_, compiled)

    def condition(self, node: dict, *, path: tuple) -> Q | None:
        unknown = [key for key in node if key not in CONDITION_KEYS]
        if unknown:
            self.error(path, _("unknown key %(key)s in a condition") % {"key": quote_value(unknown[0])})
            return None
        key = node.get("field")
        if not isinstance(key, str) or not key:
            self.error(path, _("choose a field"))
            return None
        audience_field = audience_fields.get(key)
        if audience_field is None:
            self.error(path, _("unknown field %(key)s") % {"key": quote_value(key)})
            return None
        op = node.get("op")
        spec = audience_field.ops.get(op) if isinstance(op, str) else None
        if spec is None:
            self.error(
                path,
                _("%(op)s is not one of its operators (%(ops)s)")
                % {"op": quote_value(op), "ops": ", ".join(audience_field.ops)},
                about=audience_field.label,
            )
            return None
        if spec.value_type != "none" and "value" not in node:
            self.error(path, _("enter a value"), about=audience_field.label)
            return None
        try:
            value = VALUE_TYPES[spec.value_type](node.get("value"),
                                                 self._choices(audience_field, spec, node.get("value")))
        except InvalidValue as exc:
            self.error(path, str(exc), about=audience_field.label)
            return None
        if isinstance(value, list):
            self.values += len(value)
            if self.values > MAX_TOTAL_VALUES:
                self.error(path, _("the rules list more than %(max)d values in total") % {"max": MAX_TOTAL_VALUES})
                return None
        q = audience_field.to_q(op, value)
        return q if isinstance(q, Q) else Q(q)

    def _choices(self, audience_field: AudienceField, spec: AudienceOp, given: Any) -> frozenset | None:
        """The values this condition may hold. ``also_accepts`` answers for the given values
        alone (one ``pk__in`` query for ids); when it accepts them all, the full list of choices
        (every campaign, every run) is never loaded."""
        if spec.value_type not in TYPES_WITH_CHOICES or audience_field.choices is None:
            return None
        extra: frozenset = frozenset()
        if audience_field.also_accepts:
            values = [v for v in (given if isinstance(given, list) else [given]) if isinstance(v, (str, int))]
            extra = frozenset(audience_field.also_accepts(values))
            if values and extra.issuperset(values):
                return extra
        if audience_field.key not in self.choices_cache:
            choices = audience_field.choice_list()
            self.choices_cache[audience_field.key] = (
                None if choices is None else frozenset(value for value, _label in choices)
            )
        choices = self.choices_cache[audience_field.key]
        return None if choices is None else choices | extra


def _where(path: Sequence[tuple[str, int]]) -> str:
    """``(("group", 1), ("condition", 2))`` -> "Condition 2 of group 1"."""
    if not path:
        return _("The rules")
    labels = {"group": _("group %(n)d"), "condition": _("condition %(n)d")}
    text = ""
    for kind, index in path:
        piece = labels[kind] % {"n": index}
        text = piece if not text else _("%(inner)s of %(outer)s") % {"inner": piece, "outer": text}
    return capfirst(text)


def _compile(rules: Any, *, choices_cache: dict | None = None) -> tuple[Q, list[str]]:
    compiler = _RuleCompiler(choices_cache=choices_cache)
    q = compiler.compile(rules)
    return (q if q is not None else Q()), compiler.errors


def audience_rules_validate(*, rules: Any) -> list[str]:
    """Every problem with a rule tree, as positioned human messages; empty when it is valid."""
    return _compile(rules)[1]


def audience_q(*, rules: Any, choices_cache: dict | None = None) -> Q:
    """Compile a rule tree to a ``Q`` over the user model (``Q()`` for everyone).

    Relative windows ("in the last 30 days") are fixed at the moment of compilation, which is
    why a campaign compiles once at launch and streams ids from that one queryset.
    Raises :class:`AudienceRuleError` listing every problem.
    """
    q, errors = _compile(rules, choices_cache=choices_cache)
    if errors:
        raise AudienceRuleError(errors)
    return q


def audience_builder_schema() -> dict[str, Any]:
    """The registry as JSON for the rule builder: fields, operators, value types, choices, limits."""
    return {
        "fields": [
            {
                "key": f.key,
                "label": str(f.label),
                "group": str(f.group),
                "help": str(f.help_text),
                "ops": [{"key": op, "label": str(spec.label), "type": spec.value_type} for op, spec in f.ops.items()],
                "choices": f.choice_list(),
            }
            for f in audience_fields
        ],
        "limits": {
            "max_depth": MAX_DEPTH, "max_nodes": MAX_NODES, "max_days": MAX_DAYS,
            "max_count": MAX_COUNT, "max_text": MAX_TEXT_LENGTH,
        },
    }
