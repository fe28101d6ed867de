"""The packages form floors: each imports only floors below it, and no module imports itself back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

# Lower number, lower floor. Packages on one floor do not import each other.
FLOORS = {
    "core": 0,
    "store": 1, "llm": 1, "monitoring": 1,
    "ingest": 2, "retrieval": 2,
    "answer": 3,
    "evaluation": 4,
    "rag": 5,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every project module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in FLOORS}


def _graph() -> dict[str, set[str]]:
    files = [p for package in FLOORS for p in (REPO_ROOT / package).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        # "from a.b import c" names module a.b.c when it exists, else the name c inside a.b.
        graph[name] = {target for target in _imports(path) if target in modules and target != name}
    return graph


def test_every_package_is_on_a_floor():
    packages = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(FLOORS), f"place these packages on a floor: {packages - set(FLOORS)}"


def test_no_import_reaches_up_or_across_a_floor():
    upward = []
    for source, targets in _graph().items():
        here = source.split(".")[0]
        for target in targets:
            there = target.split(".")[0]
            if there != here and FLOORS[there] >= FLOORS[here]:
                upward.append(f"{source} -> {target}")
    assert not upward, "imports that reach up or across:\n" + "\n".join(sorted(upward))


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt]) if nxt in stack else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from rag.service import RagService\nimport core.types\n")
    assert _imports(bad) == {"rag.service", "rag.service.RagService", "core.types"}
