"""Modulation spectrum (power of a trajectory's DFT along time) as differentiable torch functions.

Same definition as ``nnmnkwii.preprocessing.modspec`` / ``nnmnkwii.autograd.modspec`` (Takamichi et al.,
ICASSP 2014): ``ms[f, d] = |sum_t y[t, d] exp(-2πi f t / n)|²`` for ``f = 0 .. n // 2``, i.e. the rfft of
length ``n`` along time (zero-padded, or truncated to the first ``n`` frames when longer) with numpy's
``norm`` convention. Gradients come from autograd through ``torch.fft.rfft``, so they are exact (and
double-differentiable) on any device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def mask_padding(y: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None) -> torch.Tensor:
    """Zero the frames of a padded batch that lie past each sequence's length.

    Args:
        y: Padded batch (B, T, D).
        lengths: Valid frames per sequence (B,), or ``None`` (returns ``y`` unchanged).

    Returns:
        (B, T, D) with ``out[b, t] = 0`` for ``t >= lengths[b]``; padding values (even NaN) do not leak into
        the result or its gradient.
    """
    if lengths is None:
        return y
    if y.dim() != 3:
        raise ValueError(f"lengths need a batched (B, T, D) input, got shape {tuple(y.shape)}")
    lengths = torch.as_tensor(lengths, device=y.device)
    if lengths.shape != (y.shape[0],):
        raise ValueError(f"lengths must have shape ({y.shape[0]},), got {tuple(lengths.shape)}")
    valid = torch.arange(y.shape[1], device=y.device)[None, :] < lengths[:, None]
    return torch.where(valid[:, :, None], y, torch.zeros((), dtype=y.dtype, device=y.device))


def modspec(y: torch.Tensor, n: int = 2048, norm: str | None = None) -> torch.Tensor:
    """Modulation spectrum: power of the length-``n`` rfft of each feature trajectory along time.

    Drop-in for ``nnmnkwii.autograd.modspec`` that also accepts a batch and runs on any device.

    Args:
        y: Feature trajectories (T, D) or (B, T, D).
        n: DFT length; shorter inputs are zero-padded, longer ones truncated to their first ``n`` frames.
        norm: ``None``/``"backward"`` (no scaling), ``"ortho"`` (1/sqrt(n)) or ``"forward"`` (1/n), as numpy.

    Returns:
        Power spectra (n // 2 + 1, D) or (B, n // 2 + 1, D), real, in the dtype of ``y``.
    """
    if y.dim() not in (2, 3):
        raise ValueError(f"y must be (T, D) or (B, T, D), got shape {tuple(y.shape)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    spectrum = torch.fft.rfft(y, n=n, dim=-2, norm=norm)
    # |X|² as re² + im²: smooth everywhere, unlike abs() whose gradient is undefined at 0.
    return spectrum.real.square() + spectrum.imag.square()


def log_modspec(
    y: torch.Tensor, n: int = 2048, norm: str | None = None, floor: float | None = None
) -> torch.Tensor:
    """Natural log of :func:`modspec`, floored so that empty bins stay finite.

    Args:
        y: Feature trajectories (T, D) or (B, T, D).
        n: DFT length (see :func:`modspec`).
        norm: DFT normalisation (see :func:`modspec`).
        floor: Smallest power before the log; default ``torch.finfo(y.dtype).tiny``.

    Returns:
        Log power spectra (n // 2 + 1, D) or (B, n // 2 + 1, D).
    """
    power = modspec(y, n=n, norm=norm)
    floor = torch.finfo(power.dtype).tiny if floor is None else floor
    return power.clamp_min(floor).log()
