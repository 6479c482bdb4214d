"""Pre-emphasis ``y[n] = x[n] − α·x[n−1]`` and its exact inverse (de-emphasis)."""

from __future__ import annotations

import numpy as np
import scipy.signal
import torch

DEFAULT_ALPHA = 0.85


def preemphasis(x, alpha: float = DEFAULT_ALPHA, initial: float = 0.0):
    """Apply the FIR pre-emphasis filter ``1 − α z⁻¹`` along the last axis.

    Args:
        x: waveform, numpy array or torch tensor ``(..., T)``.
        alpha: emphasis coefficient (LPCNet uses 0.85).
        initial: the sample assumed before ``x[0]`` (0 for a fresh signal).

    Returns:
        Same type and shape as ``x``.
    """
    if isinstance(x, torch.Tensor):
        previous = torch.nn.functional.pad(x[..., :-1], (1, 0), value=initial)
        return x - alpha * previous
    x = np.asarray(x)
    previous = np.concatenate([np.full(x.shape[:-1] + (1,), initial, dtype=x.dtype), x[..., :-1]], axis=-1)
    return x - alpha * previous


def deemphasis(y, alpha: float = DEFAULT_ALPHA, initial: float = 0.0):
    """Invert :func:`preemphasis`: the IIR filter ``1 / (1 − α z⁻¹)`` along the last axis.

    ``initial`` is the output sample before ``y[0]`` (the same ``initial`` given to pre-emphasis
    makes the pair exact inverses). Torch inputs are filtered in float64 on the CPU and returned
    in their own dtype and device (not differentiable).
    """
    if isinstance(y, torch.Tensor):
        out = deemphasis(y.detach().cpu().double().numpy(), alpha, initial)
        return torch.from_numpy(out).to(dtype=y.dtype, device=y.device)
    y = np.asarray(y)
    zi = np.full(y.shape[:-1] + (1,), alpha * initial, dtype=np.float64)
    out, _ = scipy.signal.lfilter([1.0], [1.0, -alpha], y.astype(np.float64), axis=-1, zi=zi)
    return out.astype(y.dtype if np.issubdtype(y.dtype, np.floating) else np.float64)
