"""Exponential moving average of model weights (used for validation and synthesis)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``shadow = d·shadow + (1 − d)·weights`` after every optimizer step.

    The effective decay warms up as ``d_t = min(decay, (1 + t) / (warmup + t))`` so that early
    averages are not dominated by the random initialization (``warmup=0`` disables the warm-up).
    Buffers (e.g. normalization statistics, pruning masks) are copied, not averaged.

    Args:
        model: the trained network; its deep copy becomes the averaged model.
        decay: asymptotic decay in [0, 1).
        warmup: warm-up constant in steps (``10`` is the classic choice).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: int = 10) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """Effective decay used for the update after optimizer step ``step`` (1-based)."""
        if self.warmup <= 0:
            return self.decay
        return min(self.decay, (1.0 + step) / (self.warmup + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold the current weights of ``model`` into the average."""
        d = self.decay_at(step)
        shadow = dict(self.model.named_parameters())
        for name, param in model.named_parameters():
            shadow[name].lerp_(param.detach(), 1.0 - d)
        shadow_buffers = dict(self.model.named_buffers())
        for name, buf in model.named_buffers():
            shadow_buffers[name].copy_(buf)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
