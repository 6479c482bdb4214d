"""Learning-rate schedules usable from config (``_target_``) with the optimizer passed in."""

from __future__ import annotations

import torch


class InverseDecayLR(torch.optim.lr_scheduler.LambdaLR):
    """``lr_t = lr · w(t) / (1 + decay · t)``, LPCNet's schedule, with optional linear warm-up ``w``.

    Args:
        optimizer: the wrapped optimizer.
        decay: decay rate per step (LPCNet: 5e-5).
        warmup_steps: linear warm-up length (0 = none).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, decay: float = 5e-5, warmup_steps: int = 0) -> None:
        if decay < 0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        self.decay = decay
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, self._factor)

    def _factor(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        return warm / (1.0 + self.decay * step)


class ExponentialDecayLR(torch.optim.lr_scheduler.LambdaLR):
    """``lr_t = lr · max(gamma^(t / every), min_factor)``: the step-wise exponential decay of WaveNet recipes."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, gamma: float = 0.5, every: int = 200_000, min_factor: float = 0.0
    ) -> None:
        self.gamma, self.every, self.min_factor = gamma, every, min_factor
        super().__init__(optimizer, self._factor)

    def _factor(self, step: int) -> float:
        return max(self.gamma ** (step / self.every), self.min_factor)
