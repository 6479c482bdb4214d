"""μ-law companding for numpy arrays and torch tensors.

Conventions (shared by every model that works on μ-law values):

* waveforms are floats in [-1, 1];
* the continuous companded value is ``u = sign(x) · ln(1 + μ|x|) / ln(1 + μ)`` in [-1, 1];
* the discrete code of ``bits`` bits (``μ = 2**bits - 1``) has two conventions, the
  ``quantizer`` argument:

  - ``mid_rise`` (the default; WaveNet-style): ``q = round((u + 1) / 2 · μ)`` in ``[0, μ]``, code
    ``q`` decodes to ``u = 2q/μ − 1``; no code decodes to 0 (code ``2**(bits-1)`` is ``+1/μ``);
  - ``mid_tread`` (xiph LPCNet's ``lin2ulaw``/``ulaw2lin``): ``q = clamp(h + round(h·u), 0, μ)``
    with ``h = 2**(bits-1)``, code ``q`` decodes to ``u = (q − h)/h``; code ``h`` is exactly 0
    (``h`` codes below zero, ``h − 1`` above: −1 is code 0, +1 clamps to ``μ``).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


#: μ-law code conventions (module docstring).
MULAW_QUANTIZERS = ("mid_rise", "mid_tread")


def _check_quantizer(quantizer: str) -> None:
    if quantizer not in MULAW_QUANTIZERS:
        raise ValueError(f"mu-law quantizer must be one of {', '.join(MULAW_QUANTIZERS)}, got {quantizer!r}")


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


def mulaw_decision_levels(bits: int = 8, quantizer: str = "mid_rise") -> np.ndarray:
    """The ``μ`` waveform values (float64, ascending) where the code steps from ``k`` to ``k + 1``.

    ``mid_rise``: level ``k`` is the expansion of the companded boundary ``u = (2k + 1 − μ) / μ``;
    ``mid_tread``: of ``u = (k + ½ − h) / h``. Written with exact integers (and a power-of-two
    divisor), so the mid-rise table is exactly antisymmetric with its middle level exactly 0, and
    the mid-tread one has 0 strictly inside code ``h``'s interval.
    """
    _check_quantizer(quantizer)
    mu = _mu(bits)
    k = np.arange(mu, dtype=np.float64)
    if quantizer == "mid_rise":
        return mulaw_expand((2.0 * k + 1.0 - mu) / mu, bits)
    half = float(2 ** (bits - 1))
    return mulaw_expand((k + 0.5 - half) / half, bits)


def mulaw_code_values(bits: int = 8, quantizer: str = "mid_rise") -> np.ndarray:
    """The waveform value (float64) of every code ``0 … μ``: ``mulaw_decode(arange(μ + 1))``.

    Synthesizers and the training recursion decode codes by indexing this one table, so the numba
    kernels and the torch reference produce identical samples.
    """
    return mulaw_decode(np.arange(_mu(bits) + 1, dtype=np.int64), bits, quantizer)


def mulaw_encode(x: ArrayT, bits: int = 8, quantizer: str = "mid_rise") -> ArrayT:
    """Quantize a waveform in [-1, 1] to μ-law codes in ``[0, 2**bits - 1]`` (int64).

    The code is ``round((u + 1) / 2 · μ)`` (mid-rise) or ``clamp(h + round(h·u), 0, μ)`` (mid-tread,
    xiph's ``lin2ulaw``) of the companded value ``u``, found by comparing ``x``
    (in float64) with one table of decision levels rather than by evaluating ``log1p`` per sample:
    numpy and torch (and float32 and float64 inputs of the same values) thus give identical codes,
    which per-sample ``log1p`` cannot promise (the libraries differ in the last ulp, flipping codes
    next to a boundary). A value exactly on a boundary takes the upper code (xiph's
    ``floor(.5 + u)``), so 0 → ``2**(bits-1)`` in both conventions. Inputs outside [-1, 1] get the
    end codes, as if clipped.

    Args:
        x: waveform, numpy array or torch tensor of any shape.
        bits: code depth (1–16).
        quantizer: ``mid_rise`` or ``mid_tread`` (module docstring).

    Returns:
        Codes, the same type and shape as ``x``, int64 (torch: on ``x``'s device).
    """
    levels = mulaw_decision_levels(bits, quantizer)
    if isinstance(x, torch.Tensor):
        boundaries = torch.from_numpy(levels).to(x.device)
        return torch.searchsorted(boundaries, x.detach().to(torch.float64).contiguous(), right=True)
    return np.searchsorted(levels, np.asarray(x, dtype=np.float64), side="right").astype(np.int64)


def mulaw_decode(q: ArrayT, bits: int = 8, quantizer: str = "mid_rise") -> ArrayT:
    """Map μ-law codes (integers or continuous code values) back to a waveform in [-1, 1] (float).

    ``mid_rise``: ``u = 2q/μ − 1``; ``mid_tread``: ``u = (q − h)/h`` (module docstring); then
    :func:`mulaw_expand`.
    """
    _check_quantizer(quantizer)
    mu = _mu(bits)
    half = float(2 ** (bits - 1))
    if isinstance(q, torch.Tensor):
        q = q.to(torch.get_default_dtype() if not q.is_floating_point() else q.dtype)
        u = q * (2.0 / mu) - 1.0 if quantizer == "mid_rise" else (q - half) * (1.0 / half)
        return mulaw_expand(u, bits)
    dtype = np.float32 if np.asarray(q).dtype == np.float32 else np.float64
    q = np.asarray(q, dtype=dtype)
    u = q * (2.0 / mu) - 1.0 if quantizer == "mid_rise" else (q - half) * (1.0 / half)
    return mulaw_expand(u, bits)
