"""The house stays as drawn: imports flow one way, with no cycles, through public names only.

Every module of ``vocoder`` is parsed with :mod:`ast` (nothing is imported, so the test is fast and
sees imports inside functions too). Layers, lowest first::

    errors, pretrained  (import nothing of vocoder)
    dsp → data → layers → losses → models → checkpoints → inference → training → evaluation
        → config → cli, bench

``losses`` sits below ``models``: models sample from the distributions the losses define (the
logistic mixture) and the MGE feature converter runs MLPG. ``checkpoints`` (the file format and the
one model rebuild) sits below ``inference`` and ``training``: synthesis reads checkpoints, training
writes them and may synthesize (TensorBoard audio, a distillation teacher). ``config`` turns a
resolved config into a trainer for every entry point; ``bench`` sits beside ``cli`` at the top.

Rules, each checked on every import, module level or inside a function:

1. a package imports no package above it (packages of one layer may not import each other either:
   that is how cycles start);
2. no import cycle, neither between packages nor between the modules of one package (a module
   imports its siblings directly, never its own package's ``__init__``);
3. a cross-package import names a public module (no ``_private`` part) and only names in the
   ``__all__`` of the package it comes from (``from vocoder.data import load_stats``, not
   ``from vocoder.data._datasets import load_stats``), and no ``_private`` name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vocoder"

#: layer of each top-level package or module of ``vocoder`` (higher may import lower)
LAYERS = {
    "errors": 0,
    "pretrained": 0,
    "dsp": 1,
    "data": 2,
    "layers": 3,
    "losses": 4,
    "models": 5,
    "checkpoints": 6,
    "inference": 7,
    "training": 8,
    "evaluation": 9,
    "config": 10,
    "cli": 11,
    "bench": 12,
    # python -m vocoder.<command> shims
    "train": 13,
    "prepare": 13,
    "synth": 13,
    "eval": 13,
    "evaluate": 13,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _public_names(package: str) -> set[str]:
    """``__all__`` of ``vocoder.<package>`` read from its source (a list or tuple of strings)."""
    path = PACKAGE / package / "__init__.py"
    if not path.is_file():
        path = PACKAGE / f"{package}.py"
    if not path.is_file():
        return set()
    for node in ast.parse(path.read_text()).body:
        targets = getattr(node, "targets", [])
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in targets):
            return set(ast.literal_eval(node.value))
    return set()


def _imports(path: Path, module: str) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` of every absolute or relative vocoder import."""
    found = []
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names if a.name.startswith("vocoder")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "vocoder" or target.startswith("vocoder."):
                found += [(target, alias.name, node.lineno) for alias in node.names]
    return found


def _resolve(target: str, name: str | None, modules: dict[str, Path]) -> str:
    """The module an import loads: ``from vocoder.pkg import _mod`` names the submodule, else ``target``."""
    if name is not None and f"{target}.{name}" in modules:
        return f"{target}.{name}"
    return target


def _shown(path: Path) -> Path:
    return path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE.parent) else path


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, str]]:
    """``{importer: {imported module: "file:line"}}`` over the modules of ``vocoder``."""
    graph: dict[str, dict[str, str]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for target, name, line in _imports(path, module):
            imported = _resolve(target, name, modules)
            if imported != module and imported in modules:
                edges.setdefault(imported, f"{_shown(path)}:{line}")
    return graph


def find_cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """One cycle (as a closed list of nodes) per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graphs are small, recursion depth is bounded
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, {}):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for component in components:
        members = set(component)
        start = min(component)
        # shortest way back to start inside the component (breadth first)
        previous = {start: None}
        frontier = [start]
        closing = None
        while frontier and closing is None:
            nxt = []
            for node in frontier:
                for succ in sorted(graph.get(node, {})):
                    if succ == start:
                        closing = node
                        break
                    if succ in members and succ not in previous:
                        previous[succ] = node
                        nxt.append(succ)
                if closing is not None:
                    break
            frontier = nxt
        path = [start]
        node = closing
        while node is not None and node != start:
            path.insert(1, node)
            node = previous[node]
        cycles.append(path + [start])
    return cycles


def violations(modules: dict[str, Path] | None = None) -> list[str]:
    """Every import that breaks a rule, one line each (``file:line: what``)."""
    modules = _modules() if modules is None else modules
    public = {package: _public_names(package) for package in LAYERS}
    found: list[str] = []
    for module, path in modules.items():
        source = _package_of(module)
        for target, name, line in _imports(path, module):
            destination = _package_of(target)
            if name is not None and target == "vocoder":
                destination, target = name, f"vocoder.{name}"  # from vocoder import data
            if destination == source or destination not in LAYERS:
                continue
            problems = []
            if source in LAYERS and LAYERS[destination] >= LAYERS[source]:
                problems.append(
                    f"{source} (layer {LAYERS[source]}) imports {destination} (layer {LAYERS[destination]})"
                )
            if any(part.startswith("_") for part in target.split(".")[2:]):
                problems.append(f"private module {target}")
            elif name is not None and target == f"vocoder.{destination}" and public.get(destination):
                if name not in public[destination] and name != "*":
                    problems.append(f"{name} is not in vocoder.{destination}.__all__")
            if name is not None and name.startswith("_"):
                problems.append(f"private name {name}")
            found += [f"{_shown(path)}:{line}: {p}" for p in problems if f"{_shown(path)}:{line}: {p}" not in found]
    graph = import_graph(modules)
    packages: dict[str, dict[str, str]] = {}
    for module, edges in graph.items():
        for imported, where in edges.items():
            a, b = _package_of(module), _package_of(imported)
            if a and b and a != b:
                packages.setdefault(a, {}).setdefault(b, where)
    for cycle in find_cycles(packages):
        steps = ", ".join(f"{a} → {b} ({packages[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False))
        found.append(f"package import cycle: {steps}")
    for package in sorted({_package_of(m) for m in modules if _package_of(m)}):
        inside = {
            m: {i: w for i, w in edges.items() if _package_of(i) == package}
            for m, edges in graph.items()
            if _package_of(m) == package
        }
        for cycle in find_cycles(inside):
            steps = ", ".join(f"{a} → {b} ({inside[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False))
            found.append(f"module import cycle in vocoder.{package}: {steps}")
    return found


def test_layers_cover_every_package():
    top_level = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    top_level |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert top_level <= set(LAYERS), f"give {sorted(top_level - set(LAYERS))} a layer in LAYERS"


def test_imports_follow_the_layers_and_the_public_names():
    found = violations()
    assert not found, "imports against the house rules:\n" + "\n".join(found)


def _planted(tmp_path: Path, module: str, source: str) -> list[str]:
    """The tree's violations with one module added (``module`` placed at a file of ``source``)."""
    path = tmp_path / (module.rsplit(".", 1)[-1] + ".py")
    path.write_text(source)
    modules = _modules()
    modules[module] = path
    return violations(modules)


@pytest.mark.parametrize(
    "module, source, broken",
    [
        ("vocoder.dsp._added", "from vocoder.training import Trainer\n", "dsp (layer 1) imports training"),
        ("vocoder.training._added", "from vocoder.data._splits import split_ids\n", "private module"),
        ("vocoder.models._added", "from vocoder.layers import hidden\n", "not in vocoder.layers.__all__"),
        ("vocoder.inference._added", "def f():\n    from vocoder.cli import ConfigError\n", "inference (layer 7)"),
        ("vocoder.checkpoints._added", "def f():\n    import vocoder.training\n", "checkpoints (layer 6)"),
        ("vocoder.data._added", "import vocoder.models\n", "data (layer 2) imports models"),
        ("vocoder.models._added", "from vocoder.layers import _private_helper\n", "private name"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path, module, source, broken):
    """The checker itself: the same tree plus one forbidden import fails (inside a function too)."""
    lines = _planted(tmp_path, module, source)
    assert any(broken in line for line in lines), lines


def test_a_planted_module_cycle_is_caught(tmp_path):
    """Two sibling modules importing each other, one of them only inside a function."""
    first = tmp_path / "_cycle_a.py"
    second = tmp_path / "_cycle_b.py"
    first.write_text("from vocoder.dsp._cycle_b import g\n")
    second.write_text("def g():\n    from vocoder.dsp._cycle_a import f\n")
    modules = _modules()
    modules["vocoder.dsp._cycle_a"] = first
    modules["vocoder.dsp._cycle_b"] = second
    lines = violations(modules)
    assert any("module import cycle in vocoder.dsp" in line and "_cycle_a" in line for line in lines), lines


def test_a_module_importing_its_own_package_is_a_cycle(tmp_path):
    """``vocoder.losses`` imports ``_modspec``; a ``_modspec`` that imports ``vocoder.losses`` closes a loop."""
    lines = _planted(tmp_path, "vocoder.losses._modspec", "def f():\n    from vocoder.losses import mlpg\n")
    assert any("module import cycle in vocoder.losses" in line for line in lines), lines


def test_find_cycles_on_a_known_graph():
    graph = {"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}, "d": {"a": ""}, "e": {"e2": ""}, "e2": {}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b": ""}, "b": {}}) == []
