"""μ-law companding for numpy arrays and torch tensors.

Conventions (shared by every model that works on μ-law values):

* waveforms are floats in [-1, 1];
* the continuous companded value is ``u = sign(x) · ln(1 + μ|x|) / ln(1 + μ)`` in [-1, 1];
* the discrete code of ``bits`` bits is ``q = round((u + 1) / 2 · μ)`` in ``[0, μ]`` with
  ``μ = 2**bits - 1``; the mid level ``2**(bits-1)`` is (very nearly) silence.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _mu(bits: int) -> int:
    if not 1 <= bits <= 16:
        raise ValueError(f"mu-law bit depth must be in 1..16, got {bits}")
    return 2**bits - 1


def mulaw_compress(x: ArrayT, bits: int = 8) -> ArrayT:
    """Continuous μ-law companding of a waveform in [-1, 1] → [-1, 1] (same shape, differentiable)."""
    mu = _mu(bits)
    if isinstance(x, torch.Tensor):
        return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)


def mulaw_expand(u: ArrayT, bits: int = 8) -> ArrayT:
    """Inverse of :func:`mulaw_compress`: companded values in [-1, 1] → waveform in [-1, 1]."""
    mu = _mu(bits)
    if isinstance(u, torch.Tensor):
        return torch.sign(u) * torch.expm1(u.abs() * math.log1p(mu)) / mu
    return np.sign(u) * np.expm1(np.abs(u) * np.log1p(mu)) / mu


def _decision_levels(bits: int) -> np.ndarray:
    """The ``μ`` waveform values (float64, ascending) where the code steps from ``k`` to ``k + 1``.

    Level ``k`` is the expansion of the companded boundary ``u = (2k + 1 − μ) / μ``, written with
    exact integers so that the table is exactly antisymmetric and its middle level is exactly 0.
    """
    mu = _mu(bits)
    return mulaw_expand((2.0 * np.arange(mu, dtype=np.float64) + 1.0 - mu) / mu, bits)


def mulaw_encode(x: ArrayT, bits: int = 8) -> ArrayT:
    """Quantize a waveform in [-1, 1] to μ-law codes in ``[0, 2**bits - 1]`` (int64).

    The code is ``round((u + 1) / 2 · μ)`` of the companded value ``u``, found by comparing ``x``
    (in float64) with one table of decision levels rather than by evaluating ``log1p`` per sample:
    numpy and torch (and float32 and float64 inputs of the same values) thus give identical codes,
    which per-sample ``log1p`` cannot promise (the libraries differ in the last ulp, flipping codes
    next to a boundary). A value exactly on a boundary takes the upper code, so 0 → ``2**(bits-1)``.
    Inputs outside [-1, 1] get the end codes, as if clipped.

    Args:
        x: waveform, numpy array or torch tensor of any shape.
        bits: code depth (1–16).

    Returns:
        Codes, the same type and shape as ``x``, int64 (torch: on ``x``'s device).
    """
    levels = _decision_levels(bits)
    if isinstance(x, torch.Tensor):
        boundaries = torch.from_numpy(levels).to(x.device)
        return torch.searchsorted(boundaries, x.detach().to(torch.float64).contiguous(), right=True)
    return np.searchsorted(levels, np.asarray(x, dtype=np.float64), side="right").astype(np.int64)


def mulaw_decode(q: ArrayT, bits: int = 8) -> ArrayT:
    """Map μ-law codes (integers or continuous code values) back to a waveform in [-1, 1] (float)."""
    mu = _mu(bits)
    if isinstance(q, torch.Tensor):
        u = q.to(torch.get_default_dtype() if not q.is_floating_point() else q.dtype) * (2.0 / mu) - 1.0
        return mulaw_expand(u, bits)
    dtype = np.float32 if np.asarray(q).dtype == np.float32 else np.float64
    u = np.asarray(q, dtype=dtype) * (2.0 / mu) - 1.0
    return mulaw_expand(u, bits)
