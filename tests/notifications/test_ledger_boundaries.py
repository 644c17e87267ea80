"""The ledger is the ground floor (STYLE.md), and channel facts live on the adapter.

Two checks over the source, each with a self-check on a synthetic project so it cannot pass
by finding nothing:

* no module under ``notifications/ledger/`` reaches campaigns, triggers, receipts, outbound webhooks, the
  dashboard or the demo shop, through any chain of imports (module-level or inside functions);
* no code outside ``channels_adapters/`` compares a channel with a literal name
  (``channel == "email"``, ``delivery.channel in ("sms", "chat")``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("notifications", "channels_adapters", "dashboard", "demo_shop", "accounts", "config", "bench")
LEDGER = "notifications.ledger"
FORBIDDEN = ("notifications.campaigns", "notifications.triggers", "notifications.receipts", "notifications.webhooks",
             "dashboard", "demo_shop")
SKIPPED_PARTS = {"migrations", ".venv", "node_modules", "__pycache__"}


def project_modules(root: Path, packages=PROJECT_PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the project's packages under ``root``."""
    modules = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            if SKIPPED_PARTS.intersection(path.relative_to(root).parts):
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (functions included), with the
    packages Python runs on the way (importing ``a.b.c`` runs ``a`` and ``a.b`` first)."""
    path = modules[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in modules:  # an imported name (a function) -> its module
            target = target.rpartition(".")[0]
        if not target:
            return
        parts = target.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            add(source)
            for alias in node.names:  # ``from .. import campaigns`` imports the submodule
                if f"{source}.{alias.name}" in modules:
                    add(f"{source}.{alias.name}")
    found.discard(name)
    return found


def forbidden_paths(modules: dict[str, Path], *, start: str, forbidden=FORBIDDEN) -> list[list[str]]:
    """Import chains from a module under ``start`` to a forbidden module (one chain per hit)."""
    def is_forbidden(module: str) -> bool:
        return any(module == f or module.startswith(f + ".") for f in forbidden)

    hits = []
    for first in sorted(m for m in modules if m == start or m.startswith(start + ".")):
        seen = {first: [first]}
        todo = [first]
        while todo:
            current = todo.pop()
            for target in sorted(imports_of(current, modules)):
                if target in seen:
                    continue
                seen[target] = seen[current] + [target]
                if is_forbidden(target):
                    hits.append(seen[target])
                else:
                    todo.append(target)
    return hits


def test_the_ledger_imports_nothing_of_the_rooms_above_it():
    modules = project_modules(ROOT)
    assert any(m.startswith(LEDGER + ".") for m in modules), "no ledger modules found"
    chains = forbidden_paths(modules, start=LEDGER)
    assert not chains, "\n".join(" -> ".join(chain) for chain in chains)


def test_the_import_check_finds_an_offending_import(tmp_path):
    """The checker on a synthetic project: a function-local ``from .. import campaigns`` two
    hops away from the ledger is found, and a clean ledger passes."""
    files = {
        "notifications/__init__.py": "",
        "notifications/models.py": "",
        "notifications/ledger/__init__.py": "from .sending import send\n",
        "notifications/ledger/sending.py": "from ..models import *\nfrom . import helpers\n\ndef send():\n    pass\n",
        "notifications/ledger/helpers.py": "def after():\n    from .. import campaigns\n",
        "notifications/campaigns/__init__.py": "",
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    modules = project_modules(tmp_path, packages=("notifications",))
    chains = forbidden_paths(modules, start=LEDGER)
    assert ["notifications.ledger.sending", "notifications.ledger.helpers", "notifications.campaigns"] in chains

    (tmp_path / "notifications/ledger/helpers.py").write_text("def after():\n    from ..models import Thing\n")
    assert forbidden_paths(project_modules(tmp_path, packages=("notifications",)), start=LEDGER) == []


# --- channel names --------------------------------------------------------------------------

def _is_channel(node: ast.expr) -> bool:
    """``channel``, ``x.channel``, or a collection of them (``channels``, ``x.channels``)."""
    return (isinstance(node, ast.Name) and node.id in ("channel", "channels")) or (
        isinstance(node, ast.Attribute) and node.attr in ("channel", "channels")
    )


def _is_channel_name(node: ast.expr) -> bool:
    """A channel's name written out: ``"email"`` or the enum member ``Channel.EMAIL``."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Channel"


def _is_channel_literal(node: ast.expr) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(_is_channel_name(e) for e in node.elts)
    return _is_channel_name(node)


def channel_name_comparisons(source: str, filename: str = "<source>") -> list[int]:
    """Lines comparing ``channel``/``x.channel`` (or testing ``channels`` for membership) with a
    channel's name, a ``Channel`` member or a collection of them."""
    lines = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for left, right in zip(operands, operands[1:]):
            if (_is_channel(left) and _is_channel_literal(right)) or (_is_channel(right) and _is_channel_literal(left)):
                lines.append(node.lineno)
    return lines


def test_no_code_outside_the_adapters_compares_channel_names():
    skipped = SKIPPED_PARTS | {"channels_adapters", "tests", "var", "static", "locale", "templates"}
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if skipped.intersection(relative.parts) or relative.parts[0].startswith("."):
            continue
        found += [f"{relative}:{line}" for line in channel_name_comparisons(path.read_text(encoding="utf-8"), str(path))]
    assert not found, "ask the adapter (channels.features(alias)) instead of comparing names:\n" + "\n".join(found)


def test_the_channel_check_finds_each_shape():
    source = (
        'if channel == "email": pass\n'
        'if delivery.channel in ("sms", "chat"): pass\n'
        'ok = "inapp" != self.channel\n'
        'if channel in {"webpush"}: pass\n'
        'if channel == other: pass\n'  # not a literal: allowed
        'if kind == "email": pass\n'  # not a channel: allowed
        'if Channel.WEBPUSH in channels: pass\n'
        'if filters.channel != Channel.INAPP: pass\n'
        'if channel in channels: pass\n'  # no name written out: allowed
    )
    assert channel_name_comparisons(source) == [1, 2, 3, 4, 7, 8]
