"""The import structure: no cycle, and no import against the flow order the README writes down.

The README's "How a submission flows" lists the packages of ``pipelines`` in layers, from the core
that every stage uses to the adapters (Airflow, the command line) that use every stage. A module
may import from its own layer and the layers above it, never from a layer below; and no set of
modules may import each other in a circle (lazy imports inside functions count: they are how
cycles hide). The imports are read with ``ast``, without running anything.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipelines"
LAYERS_BLOCK = re.compile(r"<!-- layers -->\n```text\n(?P<body>.*?)```\n<!-- /layers -->", re.S)


def readme_layers(text: str) -> dict[str, int]:
    """``{unit: layer index}`` from the README block: one ``name: unit unit ...`` line per layer."""
    m = LAYERS_BLOCK.search(text)
    assert m, "README.md has no <!-- layers --> block in 'How a submission flows'"
    layers: dict[str, int] = {}
    for index, line in enumerate(ln for ln in m["body"].splitlines() if ln.strip()):
        name, _, units = line.partition(":")
        for unit in units.split("#")[0].split():
            assert unit not in layers, f"{unit} is listed twice in the README's layers"
            layers[unit] = index
    return layers


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, every import at any depth of the file."""
    files = {module_name(p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in files and t != name}
        graph.setdefault(name, set())
    return dict(graph)


def unit_of(module: str) -> str:
    """The top-level module or package of ``pipelines`` a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def against_flow(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Every import of a module from a layer below its own, as ``a -> b (layer i imports layer j)``."""
    out = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            ua, ub = unit_of(a), unit_of(b)
            if ua != ub and ua in layers and ub in layers and layers[ub] > layers[ua]:
                out.append(f"{a} -> {b} (layer {layers[ua]} imports layer {layers[ub]})")
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


@pytest.fixture(scope="module")
def layers() -> dict[str, int]:
    return readme_layers((ROOT / "README.md").read_text(encoding="utf-8"))


def test_no_import_cycle(graph):
    assert cycles(graph) == []


def test_no_import_against_the_flow(graph, layers):
    assert against_flow(graph, layers) == []


def test_every_package_has_a_place_in_the_readme(graph, layers):
    units = {unit_of(m) for m in graph} - {"pipelines"}
    assert sorted(units - set(layers)) == [], "add them to the layers in README's 'How a submission flows'"
    assert sorted(set(layers) - units) == [], "the README lists packages that do not exist"


def test_the_core_imports_no_stage(graph, layers):
    core = {m: t for m, t in graph.items() if unit_of(m) == "core"}
    assert core, "pipelines/core is missing"
    assert {unit_of(t) for ts in core.values() for t in ts} <= {"core", "errors", "config"}
    assert layers["core"] == 0


def test_the_checks_catch_a_cycle_and_an_upward_import():
    """The two checks find what they are for (on a made-up graph, so that they can be seen to fail)."""
    graph = {"pipelines.store": {"pipelines.audit.anchor"}, "pipelines.audit.anchor": {"pipelines.store"},
             "pipelines.core.sql": {"pipelines.marts.build"}, "pipelines.marts.build": {"pipelines.core.sql"},
             "pipelines.intake": {"pipelines.core.sql"}}
    assert cycles(graph) == [["pipelines.audit.anchor", "pipelines.store"],
                             ["pipelines.core.sql", "pipelines.marts.build"]]
    layers = readme_layers("<!-- layers -->\n```text\ncore: core\nstore: store\ntrail: audit\n"
                           "marts: marts\n```\n<!-- /layers -->")
    assert against_flow(graph, layers) == [
        "pipelines.core.sql -> pipelines.marts.build (layer 0 imports layer 3)",
        "pipelines.store -> pipelines.audit.anchor (layer 1 imports layer 2)"]


def test_lazy_and_relative_imports_are_read(tmp_path):
    pkg = tmp_path / "pipelines"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pipelines import b\n")
    (pkg / "b.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import c\nfrom ..a import f\n")
    (pkg / "sub" / "c.py").write_text("import pipelines.b\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        graph = import_graph(pkg)
    finally:
        ROOT = saved
    assert graph["pipelines.a"] == {"pipelines.b"}
    assert graph["pipelines.sub"] == {"pipelines.sub.c", "pipelines.a"}
    assert graph["pipelines.sub.c"] == {"pipelines.b"}
