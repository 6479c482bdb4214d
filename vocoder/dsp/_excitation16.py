"""The 16-bit linear excitation levels of LPCNet's ``dual_softmax`` output head (no companding)."""

from __future__ import annotations

import torch

#: Levels of the 16-bit excitation of the ``dual_softmax`` head: ``e = v / 32767.5 − 1`` for ``v`` in
#: ``[0, 65535]`` (pre-emphasized domain, no companding).
EXCITATION16_LEVELS = 65536


def excitation16_encode(excitation: torch.Tensor) -> torch.Tensor:
    """16-bit level of a linear excitation in [-1, 1]: ``round((e + 1)·32767.5)`` clamped (int64)."""
    scale = (EXCITATION16_LEVELS - 1) / 2.0
    return torch.round((excitation.double().clamp(-1.0, 1.0) + 1.0) * scale).long()


def excitation16_decode(levels: torch.Tensor) -> torch.Tensor:
    """Linear excitation (float64) of 16-bit levels: ``v / 32767.5 − 1``."""
    return levels.double() / ((EXCITATION16_LEVELS - 1) / 2.0) - 1.0
