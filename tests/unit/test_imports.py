"""The pipeline's modules import one another without a circle, deferred imports included.

An import inside a function is still a dependency (it only runs later), so it counts; one under
``if TYPE_CHECKING:`` never runs and does not. A circle means two modules that cannot be read,
tested or changed apart: ``config -> storage.fs -> storage.s3 -> config`` was one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.checkout import CHECKOUT


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root`` by its dotted name (a package by its own)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that ``name`` imports anywhere in its code (parent packages,
    which Python imports on the way, are not counted: a package does not depend on its parts)."""
    names: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking_only(node):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    names.add(sub if sub in known else base)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(ast.parse(path.read_text()).body)
    return {n for n in names if n in known and n != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles of ``graph``: each strongly connected group of two or more modules, sorted
    (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    known = modules(root, package)
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_module_of_the_pipeline_imports_another_in_a_circle() -> None:
    graph = import_graph(CHECKOUT, "pipeline")
    assert len(graph) > 70  # the walk found the package
    assert "pipeline.storage.s3" in graph["pipeline.storage.fs"]  # deferred imports count
    assert cycles(graph) == []


def test_nothing_imports_the_command_line_and_logging_imports_nothing_of_the_pipeline() -> None:
    graph = import_graph(CHECKOUT, "pipeline")
    assert sorted(n for n, deps in graph.items() if "pipeline.cli" in deps) == ["pipeline.__main__"]
    assert graph["pipeline.logs"] == set()  # the run log's name comes from runlog, its caller
    assert graph["pipeline.storage.location"] == set()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # a deferred import closes the circle: found
        ({"a.py": "import p.b\n", "b.py": "def f():\n    from p import a\n"}, [["p.a", "p.b"]]),
        # relative imports, three modules round
        (
            {
                "a.py": "from . import b\n",
                "b.py": "from .c import x\n",
                "c.py": "from .a import y\n",
            },
            [["p.a", "p.b", "p.c"]],
        ),
        # under TYPE_CHECKING only: never runs, no circle
        (
            {
                "a.py": "import p.b\n",
                "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import p.a\n",
            },
            [],
        ),
        # a module importing its own package's __init__ is no circle
        ({"__init__.py": "from p import a\n", "a.py": "x = 1\n"}, []),
    ],
)
def test_the_walk_finds_a_circle_however_it_is_written(
    tmp_path: Path, files: dict[str, str], expected: list[list[str]]
) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / "p" / name).write_text(text)
    assert cycles(import_graph(tmp_path, "p")) == expected
