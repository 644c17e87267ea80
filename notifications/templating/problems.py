"""Save-time checks of template parts, so a marketer sees "Line 3: 'frist_name' …" in the form
instead of a failed send later."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _
from jinja2 import meta, nodes
from jinja2.exceptions import TemplateAssertionError

from .context import KNOWN_FIELDS, RECIPIENT_FIELDS
from .sandbox import (
    SAFE_DICT_METHODS,
    Budget,
    TemplateRenderError,
    clean_source,
    compile_ast,
    environment,
    parse_source,
    render,
)

HTML_PARTS = frozenset({"email_body"})


@dataclass
class TemplateProblem:
    """One problem in one part; ``line`` is None when it concerns the whole part."""

    part: str
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.line:
            return str(_("Line %(line)d: %(message)s") % {"line": self.line, "message": self.message})
        return str(self.message)


def part_kind(part: str) -> str:
    return "html" if part in HTML_PARTS else "text"


def _first_line(ast: nodes.Template, name: str) -> int | None:
    lines = [node.lineno for node in ast.find_all(nodes.Name) if node.name == name and node.ctx == "load"]
    return min(lines) if lines else None


def _suggestion(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return str(_(" Did you mean '%(name)s'?") % {"name": close[0]}) if close else ""


def _unknown_fields(ast: nodes.Template) -> Iterable[tuple[int, str]]:
    """``recipient.frist_name``: a field the base dicts do not have (their keys are fixed)."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if not (isinstance(node.node, nodes.Name) and node.node.name in KNOWN_FIELDS and node.ctx == "load"):
            continue
        if isinstance(node, nodes.Getattr):
            field = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            field = node.arg.value
        else:
            continue
        fields = KNOWN_FIELDS[node.node.name]
        if field not in fields and field not in SAFE_DICT_METHODS:
            yield node.lineno, str(
                _("'%(base)s' has no field '%(field)s'.") % {"base": node.node.name, "field": field}
            ) + _suggestion(field, fields)


def template_problems(*, parts: Mapping[str, str], allowed_names: set[str] | frozenset[str]) -> list[TemplateProblem]:
    """Syntax errors, constructs the sandbox does not offer, unknown filters and unknown variables
    (with the line where each first appears), per part, in line order. Empty parts have none."""
    problems: list[TemplateProblem] = []
    for part, source in parts.items():
        if source and source.strip():
            found = [
                TemplateProblem(part, line, str(message))
                for line, message in _part_problems(part, source, allowed_names)
            ]
            problems.extend(sorted(found, key=lambda p: p.line or 0))
    return problems


def _part_problems(part: str, source: str, allowed_names: Iterable[str]) -> Iterable[tuple[int | None, Any]]:
    env = environment(part_kind(part))
    ast, found = parse_source(env, clean_source(source))
    if ast is None:
        yield from ((p.line, p.message) for p in found)
        return
    names = set(allowed_names) | set(env.globals)
    try:
        undeclared = meta.find_undeclared_variables(ast)
    except TemplateAssertionError as exc:  # an unknown filter or test
        yield exc.lineno, exc.message or str(exc)
        return
    for name in sorted(undeclared - names):
        yield _first_line(ast, name), str(_("'%(name)s' is undefined.") % {"name": name}) + _suggestion(name, names)
    yield from _unknown_fields(ast)
    try:
        compile_ast(env, ast)
    except TemplateAssertionError as exc:
        yield exc.lineno, exc.message or str(exc)
    except RecursionError:
        yield None, _("The template is nested too deeply.")


# A made-up recipient for trial renders (same keys as ``recipient_context``).
SAMPLE_RECIPIENT = dict(zip(RECIPIENT_FIELDS, (
    "Ada", "Lovelace", "Ada Lovelace", "ada", "ada@example.com", "en", "Europe/London", "0123"
), strict=True))


def template_trial_problems(
    *, parts: Mapping[str, str], context: dict[str, Any] | None = None
) -> list[TemplateProblem]:
    """Render each part once with sample data, to catch what only running shows (a loop that
    never ends, output over the cap, a division by zero) before the template is saved.

    Parts that use ``instance`` or declared variables are skipped unless ``context`` provides
    them: their real values only exist when a message is sent.
    """
    from .context import default_context

    sample = {**default_context(), "recipient": SAMPLE_RECIPIENT, "campaign": {"id": 1, "name": "Sample campaign"},
              **(context or {})}
    problems: list[TemplateProblem] = []
    for part, source in parts.items():
        if not source or not source.strip():
            continue
        env = environment(part_kind(part))
        ast, found = parse_source(env, clean_source(source))
        if ast is None:
            continue
        try:
            used = meta.find_undeclared_variables(ast) - set(env.globals)
        except TemplateAssertionError:
            continue  # reported by template_problems
        if not used <= set(sample) or ("instance" in used and not sample.get("instance")):
            continue
        try:
            template = compile_ast(env, ast)
            render(template, sample, budget=Budget.start(tokens=part_kind(part) == "html"))
        except TemplateRenderError as exc:
            problems.append(TemplateProblem(part, exc.line, str(exc.message)))
        except (TemplateAssertionError, RecursionError):
            continue  # reported by template_problems
    return problems
