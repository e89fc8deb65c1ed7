"""The import graph: every module imports, no cycles, layers import one way (DESIGN.md)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import fintrain

SRC = Path(fintrain.__file__).parent

# DESIGN.md's layer order, lowest first. A module may import its own layer and those below.
# thermal and tracking sit beside data/model: train uses them, and they import nothing of it.
LAYERS = [
    {"errors", "config", "storage", "display", "records", "__init__"},
    {"device"},
    {"data", "features", "dataset", "model", "thermal", "tracking", "evaluate"},
    {"train"},
    {"probe", "experiments"},
    {"cli", "__main__"},
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}

# Function-level imports are for optional or heavy libraries only, never for fintrain modules,
# except these, which keep light commands from loading torch.
LAZY_FINTRAIN = {
    ("fintrain.cli.probe", "fintrain.probe"),
    ("fintrain.cli.probe", "fintrain.probe.search"),
    ("fintrain.cli.train", "fintrain.train"),
    ("fintrain.cli.train", "fintrain.train.distributed"),
    ("fintrain.cli.train", "fintrain.train.run"),
    ("fintrain.experiments.compute", "fintrain.model"),
    ("fintrain.experiments.sweep", "fintrain.model"),
    ("fintrain.experiments.sweep", "fintrain.train"),
    ("fintrain.experiments.sweep", "fintrain.train.run"),
}
LAZY_LIBRARIES = {"yfinance", "bokeh_sampledata", "matplotlib.figure"}


def _modules() -> list[str]:
    return ["fintrain", *(m.name for m in pkgutil.walk_packages([str(SRC)], prefix="fintrain."))]


def _path(module: str) -> Path:
    parts = module.split(".")[1:]
    package = SRC.joinpath(*parts, "__init__.py")
    return package if package.is_file() else SRC.joinpath(*parts[:-1], f"{parts[-1]}.py") if parts else SRC / "__init__.py"


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(module-level fintrain imports, function-level imports) of a module's source."""
    tree = ast.parse(_path(module).read_text(encoding="utf-8"))
    top: set[str] = set()
    nested: set[str] = set()
    package = module if _path(module).name == "__init__.py" else module.rpartition(".")[0]

    def names(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        assert isinstance(node, ast.ImportFrom)
        base = node.module or ""
        if node.level:
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
        # `from fintrain.x import y` may name a submodule y.
        return [base, *(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in ALL)]

    for node in tree.body:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import | ast.ImportFrom):
                inside = not (sub in tree.body or (isinstance(node, ast.If | ast.Try) and sub in ast.walk(node)))
                (nested if inside else top).update(names(sub))
    return {n for n in top if n.startswith("fintrain")}, nested


ALL = set(_modules())


@pytest.mark.parametrize("module", sorted(ALL))
def test_every_module_imports(module):
    importlib.import_module(module)


def _layer(module: str) -> int:
    parts = module.split(".")
    return LEVEL[parts[1] if len(parts) > 1 else "__init__"]


def test_every_package_has_a_layer():
    assert {m.split(".")[1] for m in ALL if "." in m} <= set(LEVEL)


def test_imports_run_down_the_layers():
    upward = sorted(
        f"{m} -> {t}" for m in ALL for t in _imports(m)[0] if t in ALL and _layer(t) > _layer(m)
    )
    assert upward == []


def test_the_module_graph_has_no_cycles():
    graph = {m: {t for t in _imports(m)[0] if t in ALL and t != m} for m in ALL}
    # A package's __init__ importing its own submodules is how packages re-export: not a cycle.
    for m in graph:
        graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_function_level_imports_are_only_the_deliberate_lazy_ones():
    found = sorted(
        f"{m} -> {t}"
        for m in ALL
        for t in _imports(m)[1]
        if (t.startswith("fintrain") and (m, t) not in LAZY_FINTRAIN)
        or (not t.startswith("fintrain") and t not in LAZY_LIBRARIES)
    )
    assert found == []


def test_the_cli_starts_without_torch():
    # Light commands (data, features, runs, report, thermal-watch) must not pay torch's import.
    code = "import sys, fintrain.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
