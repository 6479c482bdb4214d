"""Batched, differentiable LPC prediction in torch (the numpy version is :func:`vocoder.dsp.lpc_predict`)."""

from __future__ import annotations

import torch


def lpc_predict_torch(signal: torch.Tensor, lpc: torch.Tensor, hop_length: int = 160,
                      history: torch.Tensor | None = None) -> torch.Tensor:
    """Linear prediction ``p[n] = −Σ_k a_k[n // hop] · s[n − k]`` of each sample from its past.

    Args:
        signal: ``(B, N)`` samples ``s``.
        lpc: ``(B, F, order)`` coefficients ``a_1..a_order`` of ``A(z) = 1 + Σ a_k z^-k`` per frame,
            ``F ≥ ceil(N / hop_length)``.
        hop_length: samples per frame.
        history: ``(B, order)`` samples preceding ``signal[:, 0]`` (oldest first); zeros if omitted.

    Returns:
        ``(B, N)`` predictions.
    """
    batch, length = signal.shape
    order = lpc.shape[-1]
    if history is None:
        history = signal.new_zeros(batch, order)
    padded = torch.cat([history, signal], dim=1)  # (B, order + N)
    # past[b, n, k] = s[n - 1 - k]
    past = padded.unfold(1, order, 1)[:, :length].flip(-1)
    frame_index = torch.arange(length, device=signal.device) // hop_length
    coefficients = lpc[:, frame_index]  # (B, N, order)
    return -(past * coefficients).sum(-1)
