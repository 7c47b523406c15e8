"""The top-level packages form one-way layers, and no modules import each other in a circle.

A module may import from its own package and from the packages before it in `LAYERS`, never from one after it.
Every import statement counts, at any depth: a lazy import inside a function is as much a dependency as one at
the top of the file. bench/, tests/ and scripts/ sit above every layer and may import anything.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The layers, lowest first; the README's Layout section refers to this tuple.
LAYERS = ("erag", "index", "ingest", "retrieval", "jobs", "app", "eval", "cli")
# Top-level folders that may import anything (they are not imported by the product).
ABOVE_ALL = ("bench", "tests", "scripts")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. "jobs.board"
    target: str  # the module imported, e.g. "erag.db" (the package for names that are not modules)
    where: str  # "jobs/board.py:32"
    text: str  # "from erag.db import Base"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules() -> dict[str, Path]:
    return {module_name(path): path for layer in LAYERS for path in sorted((REPO / layer).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The module a dotted name lives in: itself when it is a module, else the longest prefix that is one."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return name  # outside the product (the standard library, a dependency)


def imports_of(module: str, path: Path, modules: dict[str, Path], source: str | None = None) -> list[Import]:
    """Every import statement of a module (its file's text, or `source`), at any depth."""
    text = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, _resolve(alias.name, modules), where, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved inside the importing module's own package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names = ", ".join(a.name for a in node.names)
            text = f"from {'.' * node.level}{node.module or ''} import {names}"
            for alias in node.names:
                # `from pkg import submodule` depends on the submodule; `from module import name` on the module.
                submodule = f"{origin}.{alias.name}"
                target = submodule if submodule in modules else _resolve(origin, modules)
                found.append(Import(module, target, where, text))
    return found


def all_imports() -> list[Import]:
    modules = product_modules()
    return [imp for module, path in modules.items() for imp in imports_of(module, path, modules)]


def layer(module: str) -> int | None:
    top = module.split(".")[0]
    return LAYERS.index(top) if top in LAYERS else None


def test_every_top_level_package_has_a_layer() -> None:
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    unplaced = sorted(packages - set(LAYERS) - set(ABOVE_ALL))
    assert not unplaced, f"place these packages in LAYERS (tests/test_layers.py): {unplaced}"
    assert all((REPO / name / "__init__.py").is_file() for name in LAYERS)


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = []
    for imp in all_imports():
        own, other = layer(imp.source), layer(imp.target)
        if own is not None and other is not None and other > own:
            upward.append(f"{imp.where}: {imp.text}  ({imp.target.split('.')[0]} is above {imp.source.split('.')[0]})")
    upward = list(dict.fromkeys(upward))  # `from x import a, b` is one line, however many names it takes
    assert not upward, "imports from a higher layer (order: " + " < ".join(LAYERS) + "):\n" + "\n".join(upward)


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles_between_modules() -> None:
    modules = product_modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    lines: dict[tuple[str, str], str] = {}
    for imp in all_imports():
        if imp.target in modules and imp.target != imp.source:
            edges[imp.source].add(imp.target)
            lines.setdefault((imp.source, imp.target), f"{imp.where}: {imp.text}")
    problems = []
    for cycle in import_cycles(edges):
        members = set(cycle)
        links = [lines[(a, b)] for a in cycle for b in sorted(edges[a] & members)]
        problems.append(f"cycle between {', '.join(cycle)}:\n    " + "\n    ".join(links))
    assert not problems, "\n".join(problems)


def test_the_scan_sees_lazy_relative_and_from_imports() -> None:
    modules = product_modules()
    source = ("from . import base\nfrom .base import TableStore\nimport erag.models\n"
              "def f():\n    from cli import app\n")
    found = {(i.target, i.text) for i in imports_of("index.tables", REPO / "index/tables/__init__.py", modules, source)}
    assert ("index.tables.base", "from . import base") in found
    assert ("index.tables.base", "from .base import TableStore") in found
    assert ("erag.models", "import erag.models") in found
    assert ("cli", "from cli import app") in found  # inside a function: lazy imports count
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
