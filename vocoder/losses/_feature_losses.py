"""Acoustic-feature losses built on MLPG and the modulation spectrum: MGE and ModSpec.

* :class:`MGELoss` — minimum generation error (Wu & King, Interspeech 2015): the network predicts
  static + dynamic means, MLPG turns them into a static trajectory, and the loss is the MSE of that
  trajectory against the natural statics, so the gradient accounts for the smoothing MLPG applies.
* :class:`ModSpecLoss` — distance between (log) modulation spectra of generated and natural trajectories
  (Takamichi et al., ICASSP 2014), penalising the over-smoothing of generated parameter sequences.

Both take padded batches with optional ``lengths`` and treat each sequence at its own length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vocoder.losses._mlpg import mlpg, normalize_windows
from vocoder.losses._modspec import log_modspec, mask_padding, modspec

_REDUCTIONS = ("mean", "sum")


class MGELoss(nn.Module):
    """Minimum-generation-error loss: MSE between MLPG(predicted means) and the natural statics.

    Args:
        windows: ``(left, right, coefficients)`` triples, static window first (e.g. from
            :func:`vocoder.losses.delta_windows`, or lists in YAML).
        reduction: ``"mean"`` (over valid frames × static dims) or ``"sum"`` of squared errors.
    """

    def __init__(self, windows: Sequence[Sequence[object]], reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.windows = normalize_windows(windows)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"windows={self.windows}, reduction={self.reduction!r}"

    def forward(
        self,
        predicted: torch.Tensor,
        target: torch.Tensor,
        lengths: torch.Tensor | Sequence[int] | None = None,
        variances: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """MSE after MLPG.

        Args:
            predicted: Static + dynamic means (B, T, D), ``D = len(windows) * static_dim`` window-major.
            target: Natural static features (B, T, static_dim).
            lengths: Valid frames per sequence (B,); padding frames are ignored.
            variances: Variances broadcastable to ``predicted`` ((D,), (T, D) or (B, T, D)); ``None`` for
                unit variances (features normalised to unit variance).

        Returns:
            Scalar loss.
        """
        generated = mlpg(predicted, variances, self.windows, lengths=lengths)
        if generated.shape != target.shape:
            raise ValueError(
                f"target shape {tuple(target.shape)} does not match the generated statics "
                f"{tuple(generated.shape)}"
            )
        error = mask_padding(generated - target, lengths).square()
        total = error.sum()
        if self.reduction == "sum":
            return total
        if lengths is None:
            count = error.numel()
        else:
            count = torch.as_tensor(lengths, device=error.device).sum().clamp_min(1) * error.shape[-1]
        return total / count


class ModSpecLoss(nn.Module):
    """Mean squared distance between the (log) modulation spectra of generated and natural trajectories.

    Args:
        n: DFT length along time; every sequence must be at most ``n`` frames long.
        log: Compare log power spectra (floored at ``floor``) instead of power spectra.
        norm: DFT normalisation, ``None``/``"backward"``, ``"ortho"`` or ``"forward"`` (numpy's meaning).
        num_bins: Compare only the lowest ``num_bins`` modulation-frequency bins (``None``: all
            ``n // 2 + 1``).
        floor: Log floor; ``None`` uses ``torch.finfo(dtype).tiny`` of the inputs.
    """

    def __init__(
        self,
        n: int = 2048,
        log: bool = True,
        norm: str | None = None,
        num_bins: int | None = None,
        floor: float | None = None,
    ) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if num_bins is not None and not 1 <= num_bins <= n // 2 + 1:
            raise ValueError(f"num_bins must be in [1, {n // 2 + 1}], got {num_bins}")
        if norm not in (None, "backward", "ortho", "forward"):
            raise ValueError(f"norm must be None, 'backward', 'ortho' or 'forward', got {norm!r}")
        self.n = n
        self.log = log
        self.norm = norm
        self.num_bins = num_bins
        self.floor = floor

    def extra_repr(self) -> str:
        return f"n={self.n}, log={self.log}, norm={self.norm!r}, num_bins={self.num_bins}"

    def spectrum(self, y: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """The (log) modulation spectrum this loss compares, of each sequence over its own length.

        Args:
            y: Padded trajectories (B, T, D).
            lengths: Valid frames per sequence (B,).

        Returns:
            (B, num_bins, D) spectra.
        """
        if y.dim() != 3:
            raise ValueError(f"expected (B, T, D) trajectories, got shape {tuple(y.shape)}")
        if y.shape[1] > self.n:
            raise ValueError(f"{y.shape[1]} frames exceed the DFT length n={self.n}; raise n")
        # Zeroing the padding makes each spectrum that of the sequence alone, zero-padded to n.
        y = mask_padding(y, lengths)
        if self.log:
            spec = log_modspec(y, n=self.n, norm=self.norm, floor=self.floor)
        else:
            spec = modspec(y, n=self.n, norm=self.norm)
        return spec if self.num_bins is None else spec[:, : self.num_bins]

    def forward(
        self,
        generated: torch.Tensor,
        natural: torch.Tensor,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Scalar distance between modulation spectra.

        Args:
            generated: Generated trajectories (B, T, D).
            natural: Natural trajectories (B, T, D).
            lengths: Valid frames per sequence (B,), shared by both inputs.

        Returns:
            Scalar mean over (B, bins, D) of squared spectral differences.
        """
        if generated.shape != natural.shape:
            raise ValueError(f"shape mismatch: {tuple(generated.shape)} vs {tuple(natural.shape)}")
        return (self.spectrum(generated, lengths) - self.spectrum(natural, lengths)).square().mean()
