"""Checkpoint and weights files: atomic writes, safe loading, ``pretrained:NAME``, config upgrades.

A *training checkpoint* is one ``dict`` of tensors and plain Python types, loadable with
``torch.load(path, weights_only=True)`` (no pickled objects), holding at least ``model`` (raw
weights), ``ema``, ``optimizer``, ``step`` and the resolved ``config``; a run with several parameter
groups (a generator and its discriminator) adds ``networks`` (group name → weights of every group but
the model's) and ``groups`` (group name → its optimizer and schedule states). A *weights file*
(:func:`export_weights`, ``format`` = :data:`WEIGHTS_FORMAT`) keeps what synthesis and warm starts
need: the EMA weights, the config, the training module's plain state, the step and, when the run
had them, the other groups' ``networks`` (a discriminator's weights, for fine-tuning with it).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

REQUIRED_KEYS = ("model", "ema", "optimizer", "step", "config")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message is one line naming the file and the fix."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` through a temporary file in the same folder and a rename.

    A crash at any point leaves either the previous file or the complete new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def link_atomic(source: Path, link: Path) -> None:
    """Make ``link`` point at the same file as ``source`` atomically (hard link, else copy)."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            import shutil

            shutil.copyfile(source, tmp)
        os.replace(tmp, link)
    except BaseException:  # e.g. a full disk during the copy: leave no partial temporary behind
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(link.parent)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); raise :class:`CheckpointError` in one line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found (check trainer.resume / checkpoint=)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, wrong format, unsafe pickle: all mean "not usable"
        text = str(exc)
        # a pickled object shows as a GLOBAL the safe unpickler refuses; garbage bytes ("invalid load
        # key") are merely unreadable
        if "GLOBAL" in text or "Unsupported global" in text:
            # torch's message advises weights_only=False: for a file that may be crafted, that
            # advice is the exploit. Say what the file is not, and never suggest unpickling it.
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(
                f"{path}: not a plain-tensor vocoder checkpoint: it holds a pickled Python object{what}, "
                f"and such files are refused without being unpickled"
            ) from None
        reason = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): {reason}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a vocoder checkpoint (expected a dict)")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path}: not a vocoder training checkpoint (missing {', '.join(missing)})")
    return state


def describe_mismatch(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str:
    """One line saying which state-dict keys are missing, unexpected or of another shape."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    reshaped = sorted(
        k for k in set(expected) & set(found) if tuple(expected[k].shape) != tuple(found[k].shape)
    )
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape differs", reshaped)):
        if keys:
            shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts)


#: ``format`` of a weights file (:func:`export_weights`).
WEIGHTS_FORMAT = "vocoder-weights-1"


def resolve_checkpoint_path(spec: str | os.PathLike) -> Path:
    """``pretrained:NAME`` → the packaged file; a path → itself (:class:`CheckpointError` if unknown)."""
    from vocoder.pretrained import PretrainedNotFound, resolve

    try:
        return resolve(spec if isinstance(spec, str) else Path(spec))
    except PretrainedNotFound as exc:
        raise CheckpointError(str(exc)) from None


#: model settings that change what the weights mean without changing their shapes, with the value
#: a checkpoint written before the setting existed was trained with (``_target_`` suffix → key → value)
LEGACY_MODEL_DEFAULTS: dict[str, dict[str, Any]] = {".LPCNet": {"mulaw_quantizer": "mid_rise"}}


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """Fill the model settings an older checkpoint's config lacks with the values it was trained with.

    E.g. an LPCNet checkpoint from before ``model.mulaw_quantizer`` existed used mid-rise μ-law codes;
    rebuilding it with today's default (xiph's mid-tread) would shift every code by half a step.
    Returns the same dict (updated in place).
    """
    model = config.get("model") if isinstance(config, dict) else None
    if isinstance(model, dict):
        target = str(model.get("_target_", ""))
        for suffix, defaults in LEGACY_MODEL_DEFAULTS.items():
            if target.endswith(suffix):
                for key, value in defaults.items():
                    model.setdefault(key, value)
    return config


def semantic_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """``model.KEY=saved vs current`` for the first :data:`LEGACY_MODEL_DEFAULTS` key that differs."""
    saved_model = upgrade_config({"model": dict((saved or {}).get("model") or {})})["model"]
    current_model = (current or {}).get("model") or {}
    target = str(current_model.get("_target_", ""))
    for suffix, defaults in LEGACY_MODEL_DEFAULTS.items():
        if target.endswith(suffix):
            for key in defaults:
                if key in current_model and saved_model.get(key) != current_model[key]:
                    return f"model.{key}={saved_model.get(key)} in the checkpoint, {current_model[key]} now"
    return None


def load_weights(spec: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint *or* a weights file (``pretrained:NAME`` too) for its weights.

    Returns a dict with at least ``ema`` (the averaged weights), ``config``, ``module`` and
    ``networks`` (the other parameter groups' weights, e.g. ``networks["disc"]``; empty for a
    one-optimizer run); a training checkpoint also has ``model`` (the raw weights). Weights files hold
    the model's EMA weights only.
    """
    path = resolve_checkpoint_path(spec)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found (check the path, or use pretrained:NAME)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:
        # re-read through load_checkpoint for its one-line explanation of why the file is unusable
        return load_checkpoint(path, map_location)
    if isinstance(state, dict) and state.get("format") == WEIGHTS_FORMAT:
        missing = [key for key in ("ema", "config") if key not in state]
        if missing:
            raise CheckpointError(f"{path}: incomplete weights file (missing {', '.join(missing)})")
        state.setdefault("module", {})
        state.setdefault("networks", {})
        upgrade_config(state["config"])
        return state
    state = load_checkpoint(path, map_location)
    state.setdefault("networks", {})
    upgrade_config(state.get("config"))
    return state


#: names of the tensors :func:`export_weights` keeps in float32 (normalization statistics)
BUFFER_SUFFIXES = ("feature_mean", "feature_std", "mean", "std", "running_mean", "running_var")


def export_weights(checkpoint: str | os.PathLike, output: str | os.PathLike, half: bool = True,
                   extra: dict[str, Any] | None = None) -> Path:
    """Write the EMA weights of a training checkpoint as a small weights file (atomic).

    Keeps what rebuilding and synthesis need — EMA weights (floating parameters as float16 when
    ``half``; buffers such as normalization statistics stay float32), the resolved config, the
    training module's plain state, the step — and drops the raw weights, optimizers, schedulers and
    RNG states. The weights of a run's other parameter groups (a GAN's discriminator, which has no
    EMA copy) are kept as they were trained, under ``networks`` (group name → weights; float16 as
    well when ``half``): synthesis ignores them, ``trainer.init_from`` restores them.

    Args:
        checkpoint: a training checkpoint (``.pt``).
        output: the weights file to write (e.g. ``vocoder/pretrained/NAME.pt``).
        half: store floating parameters as float16.
        extra: plain values stored under ``info`` (e.g. training time, CPU).

    Returns:
        The written path.
    """
    state = load_checkpoint(checkpoint)

    def stored(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        weights = {}
        for name, tensor in tensors.items():
            is_buffer = name.endswith(BUFFER_SUFFIXES)
            if half and tensor.is_floating_point() and not is_buffer:
                tensor = tensor.to(torch.float16)
            weights[name] = tensor.clone()
        return weights

    weights = stored(state["ema"])
    networks = {name: stored(tensors) for name, tensors in (state.get("networks") or {}).items()}
    module_state = {k: v for k, v in state.get("module", {}).items() if k != "sparsifier"}
    out = {
        "format": WEIGHTS_FORMAT,
        "ema": weights,
        "config": upgrade_config(state["config"]),  # settings the run predates are written out
        "module": module_state,
        "step": int(state["step"]),
        "info": dict(extra or {}),
    }
    if networks:
        out["networks"] = networks
    return save_atomic(out, output)
