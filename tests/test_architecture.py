"""The package's structure stays readable: no import cycles (also none through TYPE_CHECKING
or imports inside functions), the layers of pyproject.toml hold, modules stay small and each
says what it is in its first line."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

import grimp
import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "aptio"
ROOT = PACKAGE.parent


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: every component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_module_of_aptio_is_in_an_import_cycle() -> None:
    graph = grimp.build_graph("aptio")
    edges = {module: {imported for imported in graph.find_modules_directly_imported_by(module)
                      if imported != "aptio"}  # the package re-exports; nothing imports it
             for module in graph.modules}
    assert _strongly_connected(edges) == []


def test_the_strongly_connected_check_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _strongly_connected(graph) == [["a", "b", "c"]]


def test_nothing_inside_aptio_imports_the_package_root() -> None:
    graph = grimp.build_graph("aptio")
    importers = {module for module in graph.find_modules_that_directly_import("aptio")
                 if module.startswith("aptio.")}
    # The demo is an example program: it uses aptio as its users do.
    assert importers <= {"aptio._demo"}


@pytest.mark.skipif(shutil.which("lint-imports") is None and not (
    pathlib.Path(sys.executable).parent / "lint-imports").exists(),
    reason="import-linter is not installed (pip install -e '.[test]')")
def test_the_import_linter_contracts_hold() -> None:
    command = pathlib.Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(command) if command.exists() else "lint-imports"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(
    p.relative_to(PACKAGE)))
def test_every_module_is_small_and_says_what_it_is(path: pathlib.Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= 420, "split this module: one concept each"
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring, "the module's first line says what it is"
