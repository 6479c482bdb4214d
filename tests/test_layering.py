"""The house stays as drawn: imports flow one way, and packages use each other's public names only.

Every module of ``vocoder`` is parsed with :mod:`ast` (nothing is imported, so the test is fast and
sees imports inside functions too). Layers, lowest first::

    errors, pretrained  (import nothing of vocoder)
    dsp → data → layers → losses → models → training → inference → evaluation → cli, bench

``losses`` sits below ``models``: models sample from the distributions the losses define (the
logistic mixture) and the MGE feature converter runs MLPG. ``bench`` sits beside ``cli`` at the
top: it times the commands as a user runs them (``build_trainer`` of ``vocoder-train``), and
``vocoder-bench`` is one of the commands. The checkpoint format is public API of ``training``
(``load_checkpoint``, ``load_weights``): ``inference`` reads checkpoints through it.

Rules:

1. a package imports no package above it (same-layer packages may import each other);
2. a cross-package import names a public module (no ``_private`` part) and only names in the
   ``__all__`` of the package it comes from (``from vocoder.data import load_stats``, not
   ``from vocoder.data._datasets import load_stats``).

``KNOWN_VIOLATIONS`` lists what is not yet so, each with its reason; the test fails on any
violation not listed *and* on a listed one that is gone (so the list only shrinks).
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
    "training": 6,
    "inference": 7,
    "evaluation": 8,
    "cli": 9,
    "bench": 9,
    # python -m vocoder.<command> shims
    "train": 10,
    "prepare": 10,
    "synth": 10,
    "eval": 10,
    "evaluate": 10,
}

#: (importing module, imported module) → why it is still so. Shrink it; never grow it.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {
    ("vocoder.training._iaf_task", "vocoder.inference"): (
        "the distillation teacher is rebuilt with vocoder.inference.load; rebuilding a model from "
        "its checkpoint belongs in training (inference.load on top of it)"
    ),
    ("vocoder.training._lpcnet_task", "vocoder.inference"): (
        "TensorBoard dev audio is sampled with vocoder.inference.lpcnet_synthesize; the torch "
        "reference sampler belongs with the model (or the example synthesis is passed in)"
    ),
    ("vocoder.models._feature_converter", "vocoder.losses._mlpg"): "_normalize_windows: needs a public name",
    ("vocoder.training._feature_task", "vocoder.losses._modspec"): "_mask_padding: needs a public name",
    ("vocoder.bench._mlpg", "vocoder.losses._mlpg"): (
        "the benchmark times the dense reference system (_mlpg_system, _prepare_mlpg_inputs)"
    ),
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


def violations(modules: dict[str, Path] | None = None) -> dict[tuple[str, str], list[str]]:
    """Every import that breaks a rule: ``{(importer, imported module): [one line per import]}``."""
    modules = _modules() if modules is None else modules
    public = {package: _public_names(package) for package in LAYERS if (PACKAGE / package).is_dir()}
    found: dict[tuple[str, str], list[str]] = {}
    for module, path in modules.items():
        source = _package_of(module)
        for target, name, line in _imports(path, module):
            destination = _package_of(target)
            if name is not None and target == "vocoder":
                destination, target = name, f"vocoder.{name}"  # from vocoder import data
            if destination == source or destination not in LAYERS:
                continue
            problems = []
            if source in LAYERS and LAYERS[destination] > LAYERS[source]:
                problems.append(
                    f"{source} (layer {LAYERS[source]}) imports {destination} (layer {LAYERS[destination]})"
                )
            if any(part.startswith("_") for part in target.split(".")[2:]):
                problems.append(f"private module {target}")
            elif name is not None and destination in public and target == f"vocoder.{destination}":
                if name not in public[destination] and name != "*":
                    problems.append(f"{name} is not in vocoder.{destination}.__all__")
            if name is not None and name.startswith("_"):
                problems.append(f"private name {name}")
            for problem in problems:
                shown = path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE.parent) else path
                text = f"{shown}:{line}: {problem}"
                if text not in found.get((module, target), []):
                    found.setdefault((module, target), []).append(text)
    return found


def test_layers_cover_every_package():
    top_level = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    top_level |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert top_level <= set(LAYERS), f"give {sorted(top_level - set(LAYERS))} a layer in LAYERS"


def test_imports_follow_the_layers_and_the_public_names():
    found = violations()
    new = {key: lines for key, lines in found.items() if key not in KNOWN_VIOLATIONS}
    assert not new, "imports against the house rules:\n" + "\n".join(
        line for lines in new.values() for line in lines
    )
    gone = sorted(key for key in KNOWN_VIOLATIONS if key not in found)
    assert not gone, f"fixed, remove from KNOWN_VIOLATIONS: {gone}"


@pytest.mark.parametrize(
    "module, source, broken",
    [
        ("vocoder.dsp._spectral", "from vocoder.training import Trainer\n", "dsp (layer 1) imports training"),
        ("vocoder.training._lpcnet_task", "from vocoder.data._splits import split_ids\n", "private module"),
        ("vocoder.models._lpcnet", "from vocoder.layers import hidden\n", "not in vocoder.layers.__all__"),
        ("vocoder.inference._vocoders", "from vocoder.cli import ConfigError\n", "inference (layer 7)"),
        ("vocoder.data._prepare", "import vocoder.models\n", "data (layer 2) imports models"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path, module, source, broken):
    """The checker itself: the same tree plus one forbidden import fails."""
    path = tmp_path / "added.py"
    path.write_text(source)
    modules = _modules()
    modules[module + "_added"] = path
    lines = [line for lines in violations(modules).values() for line in lines]
    assert any(broken in line for line in lines), lines
