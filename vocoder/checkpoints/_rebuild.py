"""The one way a checkpoint becomes a module: rebuild the network from its config, load its weights."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vocoder.checkpoints._files import CheckpointError, describe_mismatch, load_weights


def model_family(config: dict[str, Any], label: str) -> tuple[dict[str, Any], str]:
    """The ``model`` section of a checkpoint's config and its class name (``LPCNet``, ``IAFStudent``…).

    Raises:
        CheckpointError: one line starting with ``label`` when the config has no model section.
    """
    try:
        model_cfg = dict(config["model"])
        target = str(model_cfg["_target_"])
    except (KeyError, TypeError):
        raise CheckpointError(f"{label}: checkpoint has no model config; was it written by vocoder-train?") from None
    return model_cfg, target


def _article(name: str) -> str:
    """``a``/``an`` as the name is read: a vowel, or an acronym's letter read with one (``an LPCNet``)."""
    acronym = len(name) > 1 and name[:2].isupper()
    return "an" if name[:1] in ("AEFHILMNORSX" if acronym else "AEIOU") else "a"


def rebuild_model(
    checkpoint: str | os.PathLike,
    *,
    use_ema: bool = True,
    device: str | torch.device = "cpu",
    expect: str | Sequence[str] | None = None,
    label: str | None = None,
    state: dict[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network a checkpoint was trained as and load its weights.

    Accepts a training checkpoint, a weights file (:func:`export_weights`) or ``pretrained:NAME``;
    the config is upgraded first (:func:`upgrade_config`), so settings an older file predates are
    rebuilt as it was trained.

    Args:
        checkpoint: the file or ``pretrained:NAME``.
        use_ema: load the EMA weights (default) rather than the raw ones (a weights file has only
            the EMA weights).
        device: where the network is placed.
        expect: class name(s) the model must have (e.g. ``"LPCNet"``); ``None`` accepts any.
        label: how errors name the checkpoint (default: ``checkpoint`` itself).
        state: the file's contents when the caller has already read them with :func:`load_weights`
            (the file is then not read again).

    Returns:
        ``(model, state)``: the network in eval mode on ``device``, and the loaded state (``config``,
        ``module`` — the training module's plain state, e.g. normalization statistics —, ``step``…).

    Raises:
        CheckpointError: one line starting with ``label``, for a missing, unreadable or foreign file,
            another model class than ``expect``, or weights that do not fit the rebuilt network.
    """
    from hydra.utils import instantiate

    label = str(checkpoint) if label is None else label
    if state is None:
        state = load_weights(checkpoint, map_location=device)
    model_cfg, target = model_family(state.get("config"), label)
    family = target.rsplit(".", 1)[-1]
    if expect is not None:
        allowed = (expect,) if isinstance(expect, str) else tuple(expect)
        if family not in allowed:
            wanted = " or ".join(f"{_article(name)} {name}" for name in allowed)
            raise CheckpointError(f"{label}: holds {_article(target)} {target}, not {wanted}")
    if not use_ema and "model" not in state:
        raise CheckpointError(f"{label}: holds the EMA weights only (a weights file); use use_ema=true")
    try:
        model = instantiate(model_cfg, _convert_="all")
    except Exception as exc:  # a config this code cannot build (renamed class, removed setting)
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{label}: cannot rebuild {target} from its config: {reason}") from None
    weights = state["ema" if use_ema else "model"]
    mismatch = describe_mismatch(model.state_dict(), weights)
    if mismatch:
        raise CheckpointError(f"{label}: weights do not fit {target} ({mismatch})")
    model.load_state_dict(weights)
    return model.to(device).eval(), state
