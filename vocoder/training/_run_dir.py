"""The run directory of a training: numbered step checkpoints, resumption, pruning, RNG states.

Layout inside ``out_dir``::

    checkpoints/step_00001000.pt   every N steps (the newest K kept)
    checkpoints/last.pt            hard link to (or copy of) the newest step file
    checkpoints/best.pt            lowest validation loss so far

The file format itself (atomic writes, safe loading) is :mod:`vocoder.checkpoints`.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vocoder.checkpoints import CheckpointError, load_checkpoint

STEP_PATTERN = re.compile(r"^step_(\d{8})\.pt$")


def step_checkpoints(directory: Path) -> list[Path]:
    """Step checkpoint files in ``directory``, newest (highest step) first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if STEP_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: int(STEP_PATTERN.match(p.name).group(1)), reverse=True)


def find_resumable(directory: Path, warn=print) -> tuple[Path, dict[str, Any]] | None:
    """The newest intact checkpoint in ``directory`` (``last.pt`` first, then step files)."""
    candidates = []
    if (directory / "last.pt").is_file():
        candidates.append(directory / "last.pt")
    candidates += step_checkpoints(directory)
    for candidate in candidates:
        try:
            return candidate, load_checkpoint(candidate)
        except CheckpointError as exc:
            warn(f"warning: skipping {exc}")
    return None


def prune_step_checkpoints(directory: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` step checkpoints (``last.pt``/``best.pt`` untouched)."""
    for old in step_checkpoints(directory)[max(keep_last, 1):]:
        old.unlink(missing_ok=True)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states as plain types and tensors."""
    version, internal, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
