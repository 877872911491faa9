"""No import circle: the project's modules import one another along a graph without cycles.

The graph is read from the source with ``ast``, nothing is imported. Every ``import`` and ``from ... import``
counts wherever it stands: at module level, or inside a function or method, where it runs later but still needs
the other module whole (a local import that closes a cycle is a circle put off, not removed). Relative imports are
resolved against the importing module's package, and importing ``a.b.c`` counts as importing ``a`` and ``a.b``
too, whose ``__init__`` runs first. A module's own packages are the exception: Python runs (or is running) them
before the module itself, whatever it imports, so ``lit_mnist.data.mnist``'s ``from lit_mnist import atomic``
is an import of ``lit_mnist.atomic`` alone; a name a package's ``__init__`` itself defines, taken by one of its
submodules, still counts as an import of the package.

Two kinds of import are not edges, because no import statement runs:

* the table of a package whose ``__init__`` exports its names lazily (``lit_mnist/lazy.py``): ``_EXPORTS`` maps
  each name to its module as a string, and importing the package imports none of them. A submodule that imports
  its own package therefore closes no circle. Where another module takes such a name, ``from lit_mnist import
  LitMNIST``, the package's ``__getattr__`` imports the named module there and then: that statement counts as an
  import of the table's module.
* imports under ``if TYPE_CHECKING:``, which only a type checker reads.

Imports by a computed name (``importlib.import_module(variable)``, as ``entry.launch`` and the lazy table do) and
a lazy name reached as an attribute at call time (``lit_mnist.LitMNIST``) are not in the source as imports and
are not followed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("lit_mnist", "parity", "scripts")  # scripts/ holds plain modules, imported as scripts.bench_steps


@dataclass(frozen=True)
class Import:
    """``module`` imports ``target`` at ``line`` of ``path``."""

    module: str
    target: str
    path: Path
    line: int


def module_names(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module under ``root/package`` for each package, by its dotted name (a package by its
    ``__init__``'s)."""
    names = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _lazy_table(tree: ast.Module) -> dict[str, str]:
    """A package ``__init__``'s ``_EXPORTS`` (name -> module), as ``lazy_exports`` takes it; empty if none."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of the statements under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> list[Import]:
    """Every import of a project module by a project module under ``root`` (see the module's docstring for what
    counts)."""
    names = module_names(root, packages)
    trees = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in names.items()}
    tables = {name: _lazy_table(tree) for name, tree in trees.items() if names[name].name == "__init__.py"}
    edges = []
    for module, tree in trees.items():
        skipped = _type_checking_only(tree)
        package = module if names[module].name == "__init__.py" else module.rpartition(".")[0]
        parts = module.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}
        for node in ast.walk(tree):
            if id(node) in skipped or not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = []
            if isinstance(node, ast.Import):
                for alias in node.names:
                    targets += _runs(alias.name, names, ancestors)
            else:
                source = node.module
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                targets += _runs(source, names, ancestors)
                for alias in node.names:
                    if f"{source}.{alias.name}" in names:  # a submodule: from lit_mnist.data import cache
                        targets.append(f"{source}.{alias.name}")
                    elif alias.name in tables.get(source, {}):  # a lazy name: its module is imported now
                        targets += _runs(tables[source][alias.name], names, ancestors)
                    elif source in names:  # a name the package or module defines: it must have run
                        targets.append(source)
            edges += [Import(module, target, names[module], node.lineno) for target in dict.fromkeys(targets)
                      if target != module]
    return edges


def _runs(dotted: str, names: dict[str, Path], ancestors: set[str]) -> list[str]:
    """The project modules that importing ``dotted`` runs, its packages first, less the importer's own
    ``ancestors`` (which Python has run, or is running, before the importer)."""
    parts = dotted.split(".")
    return [m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in names and m not in ancestors]


def circles(edges: list[Import]) -> list[list[Import]]:
    """One cycle of imports for each strongly connected component of more than one module (Tarjan's algorithm),
    as the imports that go round it, each component's first module (by name) first."""
    graph: dict[str, list[Import]] = {}
    for edge in edges:
        graph.setdefault(edge.module, []).append(edge)
        graph.setdefault(edge.target, [])
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:  # the graph is a few hundred modules deep at most: recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in graph[node]:
            if edge.target not in index:
                visit(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in on_stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle(graph, component) for component in sorted(components, key=min)]


def _cycle(graph: dict[str, list[Import]], component: set[str]) -> list[Import]:
    """The shortest way round from the component's first module back to it, within the component."""
    start = min(component)
    came_by: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for edge in graph[node]:
                if edge.target == start:
                    path = [edge]
                    while path[0].module != start:
                        path.insert(0, came_by[path[0].module])
                    return path
                if edge.target in component and edge.target not in came_by:
                    came_by[edge.target] = edge
                    following.append(edge.target)
        frontier = following
    raise AssertionError(f"{sorted(component)} is no strongly connected component")


def describe(cycle: list[Import], root: Path) -> str:
    """``a -> b -> a``, then where each import is."""
    where = "; ".join(f"{edge.path.relative_to(root)}:{edge.line} imports {edge.target}" for edge in cycle)
    return f"{' -> '.join([cycle[0].module, *(edge.target for edge in cycle)])} ({where})"


def test_the_project_has_no_import_circle():
    edges = import_graph(REPO)
    assert any(edge.module == "lit_mnist.apps.checkpoints" and edge.target == "lit_mnist.model.module"
               for edge in edges)  # the graph is read at all: a known edge is in it
    found = circles(edges)
    if found:
        pytest.fail("import circles:\n" + "\n".join(describe(cycle, REPO) for cycle in found), pytrace=False)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_function_local_import_that_closes_a_cycle_is_found_and_named(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import B\n",
        "pkg/b.py": "B = 1\n\n\ndef later():\n    from . import a  # put off, still a circle\n    return a\n",
        "pkg/c.py": "import pkg.a\n",  # on the way in, not round
    })
    (cycle,) = circles(import_graph(root, ["pkg"]))
    assert describe(cycle, root) == "pkg.a -> pkg.b -> pkg.a (pkg/a.py:1 imports pkg.b; pkg/b.py:5 imports pkg.a)"


def test_relative_imports_and_packages_on_the_way_count(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "from pkg.top import Y\n",
        "pkg/sub/deep.py": "from .. import top\n",
        "pkg/top.py": "from . import sub\nY = 1\n",  # sub's __init__, which imports pkg.top back
        "pkg/other.py": "import pkg.sub.deep\n",
    })
    edges = {(edge.module, edge.target) for edge in import_graph(root, ["pkg"])}
    assert edges == {("pkg.sub", "pkg.top"), ("pkg.sub.deep", "pkg.top"), ("pkg.top", "pkg.sub"),
                     ("pkg.other", "pkg.sub"), ("pkg.other", "pkg.sub.deep")}  # never a module's own packages
    (cycle,) = circles(import_graph(root, ["pkg"]))
    assert describe(cycle, root) == ("pkg.sub -> pkg.top -> pkg.sub (pkg/sub/__init__.py:1 imports pkg.top; "
                                     "pkg/top.py:1 imports pkg.sub)")


def test_a_name_its_package_defines_taken_by_a_submodule_counts(tmp_path):
    root = _write(tmp_path, {"pkg/__init__.py": "from pkg.a import A\nB = 2\n", "pkg/a.py": "A = 1\n"})
    assert circles(import_graph(root, ["pkg"])) == []
    (root / "pkg/a.py").write_text("from pkg import B\nA = B\n")  # pkg is half run when it needs B
    (cycle,) = circles(import_graph(root, ["pkg"]))
    assert [edge.target for edge in cycle] == ["pkg.a", "pkg"]


def test_a_lazy_table_is_no_import_but_a_lazy_name_taken_elsewhere_is(tmp_path):
    lazy = ("from pkg.lazy import lazy_exports\n\n_EXPORTS = {'A': 'pkg.a'}\n"
            "__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)\n")
    root = _write(tmp_path, {"pkg/__init__.py": lazy, "pkg/lazy.py": "", "pkg/a.py": "import pkg\nA = 1\n",
                             "pkg/b.py": "from pkg import A\n"})
    edges = {(edge.module, edge.target) for edge in import_graph(root, ["pkg"])}
    assert edges == {("pkg", "pkg.lazy"), ("pkg.b", "pkg.a")}  # the table is strings; b's A is pkg.a's
    assert circles(import_graph(root, ["pkg"])) == []
    (root / "pkg/a.py").write_text("A = 1\n\n\ndef f():\n    import pkg.b\n")
    (cycle,) = circles(import_graph(root, ["pkg"]))
    assert [edge.target for edge in cycle] == ["pkg.b", "pkg.a"]


def test_imports_for_the_type_checker_alone_are_no_edges(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from pkg.b import B\n",
        "pkg/b.py": "import pkg.a\nB = 1\n",
    })
    assert circles(import_graph(root, ["pkg"])) == []
