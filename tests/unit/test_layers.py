"""The package's layers hold: the import-linter contracts in pyproject.toml, and no import
cycle among its modules, those of ``sarcoma_sched.services`` first (import-linter's acyclic
contract compares siblings package by package; this walks every runtime import, the lazy ones
inside functions included, and the ``__init__`` that importing a submodule runs)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "sarcoma_sched"


def test_every_import_linter_contract_is_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.exists(), "import-linter is in the test extra: pip install -e '.[test]'"
    done = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import executed at some point, at module level or inside a function: everything
    but ``if TYPE_CHECKING:`` blocks, which never run."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in _runtime_imports_of(child))
            continue
        yield from _runtime_imports_of(node)


def _runtime_imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _runtime_imports(node)


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports. Importing ``a.b.c`` also runs ``a.b``'s
    ``__init__``, so a module depends on the parents of what it imports (but not on its own
    parents: a package re-exporting its submodules is no cycle)."""
    names = _module_names()
    graph: dict[str, set[str]] = {}
    for module, path in names.items():
        targets: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            else:
                assert node.level == 0, f"{module}: relative import"
                base = node.module or ""
                wanted = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for name in wanted:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    target = ".".join(parts[:i])
                    if target in names and not module.startswith(target + "."):
                        targets.add(target)
        graph[module] = targets - {module}
    return graph


def cycles(graph: dict[str, set[str]], within: str) -> list[list[str]]:
    """The strongly connected components of more than one module among ``within``'s modules
    (Tarjan's algorithm)."""
    nodes = {m for m in graph if m == within or m.startswith(within + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v] & nodes):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return found


def test_no_two_service_modules_import_each_other_even_lazily():
    assert cycles(import_graph(), "sarcoma_sched.services") == []


def test_no_module_of_the_package_is_part_of_an_import_cycle():
    assert cycles(import_graph(), "sarcoma_sched") == []


def test_the_cycle_check_finds_a_cycle_made_of_lazy_imports():
    graph = {
        "p.capacity": {"p.sites"},  # inside a function: still an import
        "p.sites": {"p.events"},
        "p.events": {"p.capacity"},
        "p.lookups": set(),
    }
    assert cycles(graph, "p") == [["p.capacity", "p.events", "p.sites"]]


def test_type_checking_imports_are_not_runtime_imports():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from a import b\n"
        "def f():\n    from c import d\n"
    )
    assert [n.module for n in _runtime_imports(tree)] == ["typing", "c"]
