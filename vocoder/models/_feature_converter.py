"""Feature converter: LPCNet's 20 conditioning features → the cache's log-mel, trained with MGE.

The network predicts, per frame, the means of static + dynamic (Δ, ΔΔ by default) log-mel features;
maximum-likelihood parameter generation (MLPG) turns those means into a smooth static trajectory.
Trained with the minimum-generation-error loss (:class:`vocoder.losses.MGELoss`, Wu & King 2015), it
lets the mel-conditioned vocoders (WaveNet teacher, IAF student) be driven by LPCNet's features, e.g.
from an LPCNet front end.

Design choices (stated, not hidden):

* Non-causal 1-D convolutions over frames: an input convolution, ``layers - 1`` residual
  convolutions (all ``kernel_size`` taps, GELU, dropout) and a 1×1 output convolution that starts
  at zero, so the untrained network predicts the per-band mean log-mel. Receptive field
  ``layers · (kernel_size - 1) + 1`` frames, centred.
* Unit variances in MLPG, in training and in :meth:`FeatureConverter.infer` alike: the network
  predicts means only (no variance parameters). With MGE the means are trained for exactly this
  generation, so a per-dimension variance would only reweight what the means already absorb.
* Both sides are standardized with the train split's statistics of the prepared cache
  (``stats.npz``), held as persistent buffers so a checkpoint alone rebuilds a usable converter:
  inputs ``(features - features_mean) / features_std``, outputs in units of
  ``(mel - mel_mean) / mel_std``; :meth:`FeatureConverter.infer` maps the generated trajectory
  back to the cache's natural-log mel magnitudes.
* Padded batches: activations past each sequence's length are zeroed after every layer, so each
  sequence of a batch is converted exactly as if it were passed alone (zero padding at its edges).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vocoder.losses import delta_windows, mlpg, normalize_windows


def frame_mask(lengths: torch.Tensor | None, batch: int, frames: int, device: torch.device) -> torch.Tensor:
    """Boolean mask of the frames inside each sequence of a padded batch.

    Args:
        lengths: (B,) valid frames per sequence, or ``None`` (every frame valid).
        batch: B.
        frames: T, the padded length.
        device: device of the mask.

    Returns:
        (B, T) bool, ``True`` where ``t < lengths[b]``.
    """
    if lengths is None:
        return torch.ones((batch, frames), dtype=torch.bool, device=device)
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    return torch.arange(frames, device=device)[None, :] < lengths[:, None]


class FeatureConverter(nn.Module):
    """Predicts static + dynamic log-mel means from LPCNet features; :meth:`infer` runs MLPG.

    Args:
        in_dim: input features per frame (LPCNet: 18 BFCC + pitch period + pitch correlation = 20).
        out_dim: log-mel bands (the cache's ``n_mels``).
        channels: hidden channels of every convolution.
        kernel_size: taps of the hidden convolutions along time (odd: centred, non-causal).
        layers: convolutions with ``kernel_size`` taps (≥ 1): the input one plus ``layers - 1``
            residual ones.
        dropout: dropout after each hidden activation while training.
        windows: MLPG windows ``(left, right, coefficients)``, static first (lists in YAML);
            ``None`` is the standard static / Δ ``[-0.5, 0, 0.5]`` / ΔΔ ``[1, -2, 1]`` set
            (:func:`vocoder.losses.delta_windows`). Must equal the MGE loss's windows.
    """

    def __init__(
        self,
        *,
        in_dim: int = 20,
        out_dim: int = 80,
        channels: int = 256,
        kernel_size: int = 5,
        layers: int = 4,
        dropout: float = 0.1,
        windows: Sequence[Sequence[object]] | None = None,
    ) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1 or channels < 1:
            raise ValueError(
                f"in_dim, out_dim and channels must be >= 1, got {in_dim}, {out_dim}, {channels}"
            )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1 (centred convolutions), got {kernel_size}")
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.kernel_size = kernel_size
        self.windows = normalize_windows(delta_windows(width=1, order=2) if windows is None else windows)
        self.num_windows = len(self.windows)
        padding = kernel_size // 2
        self.input_conv = nn.Conv1d(in_dim, channels, kernel_size, padding=padding)
        self.residual_convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=padding) for _ in range(layers - 1)
        )
        self.output_conv = nn.Conv1d(channels, self.num_windows * out_dim, 1)
        # zero start: the untrained converter predicts the mean log-mel (0 in normalized units)
        nn.init.zeros_(self.output_conv.weight)
        nn.init.zeros_(self.output_conv.bias)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("features_mean", torch.zeros(in_dim))
        self.register_buffer("features_std", torch.ones(in_dim))
        self.register_buffer("mel_mean", torch.zeros(out_dim))
        self.register_buffer("mel_std", torch.ones(out_dim))

    @property
    def receptive_field(self) -> int:
        """Input frames each output frame depends on (centred on it)."""
        return (1 + len(self.residual_convs)) * (self.kernel_size - 1) + 1

    def set_normalization(
        self,
        features_mean: torch.Tensor | np.ndarray,
        features_std: torch.Tensor | np.ndarray,
        mel_mean: torch.Tensor | np.ndarray,
        mel_std: torch.Tensor | np.ndarray,
    ) -> None:
        """Store the standardization statistics of inputs and outputs (the cache's ``stats.npz``).

        Args:
            features_mean: (in_dim,) feature means.
            features_std: (in_dim,) feature standard deviations (> 0).
            mel_mean: (out_dim,) log-mel means.
            mel_std: (out_dim,) log-mel standard deviations (> 0).
        """
        for name, value, size in (
            ("features_mean", features_mean, self.in_dim),
            ("features_std", features_std, self.in_dim),
            ("mel_mean", mel_mean, self.out_dim),
            ("mel_std", mel_std, self.out_dim),
        ):
            buffer = getattr(self, name)
            value = torch.as_tensor(np.asarray(value), dtype=buffer.dtype, device=buffer.device)
            if value.shape != (size,):
                raise ValueError(f"{name} must have shape ({size},), got {tuple(value.shape)}")
            if name.endswith("_std") and not bool((value > 0).all()):
                raise ValueError(f"{name} must be positive everywhere")
            buffer.copy_(value)

    def normalize_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """The cache's log-mel (..., out_dim) in the network's standardized output units."""
        return (mel - self.mel_mean) / self.mel_std

    def denormalize_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Standardized log-mel (..., out_dim) back to the cache's natural-log mel magnitudes."""
        return mel * self.mel_std + self.mel_mean

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Means of the static and dynamic log-mel features, standardized, window-major.

        Args:
            features: (B, T, in_dim) LPCNet features as stored in the cache (not normalized).
            lengths: (B,) valid frames per sequence of a padded batch (``None``: all T); frames
                past a sequence's length may hold anything.

        Returns:
            (B, T, num_windows · out_dim) means laid out ``[static | Δ | ΔΔ]`` (the
            :func:`vocoder.losses.mlpg` layout) in units of ``(mel - mel_mean) / mel_std``;
            zero past each sequence's length.
        """
        if features.dim() != 3 or features.shape[-1] != self.in_dim:
            raise ValueError(f"features must be (B, T, {self.in_dim}), got shape {tuple(features.shape)}")
        B, T, _ = features.shape
        # (B, 1, T): padding frames are zeroed before every convolution, as zero padding at the edge
        valid = frame_mask(lengths, B, T, features.device)[:, None, :]
        mask = valid.to(features.dtype)
        # where, not a product: padding may hold anything (even NaN) without leaking into the sequence
        x = torch.where(valid, ((features - self.features_mean) / self.features_std).transpose(1, 2), 0.0)
        h = self.dropout(F.gelu(self.input_conv(x))) * mask
        for conv in self.residual_convs:
            h = h + self.dropout(F.gelu(conv(h))) * mask
        return (self.output_conv(h) * mask).transpose(1, 2)

    def generate(self, means: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Unit-variance MLPG of predicted means, in standardized units (differentiable).

        Args:
            means: (B, T, num_windows · out_dim) output of :meth:`forward`.
            lengths: (B,) valid frames per sequence (each generated as if alone).

        Returns:
            (B, T, out_dim) standardized static trajectory; zero past each sequence's length.
        """
        return mlpg(means, None, self.windows, lengths=lengths)

    @torch.no_grad()
    def infer(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Log-mel trajectories of LPCNet features: network → MLPG → the cache's log-mel units.

        Dropout follows the module's mode: call ``.eval()`` first (a loaded converter is in eval mode).

        Args:
            features: (B, T, in_dim) or (T, in_dim) LPCNet features as stored in the cache.
            lengths: (B,) valid frames per sequence of a padded batch (``None``: all T).

        Returns:
            (B, T, out_dim) or (T, out_dim) natural-log mel magnitudes, as
            :func:`vocoder.data.compute_features` stores them; padding frames hold ``mel_mean``.
        """
        unbatched = features.dim() == 2
        if unbatched:
            if lengths is not None:
                raise ValueError("lengths is only meaningful for batched (B, T, in_dim) features")
            features = features[None]
        generated = self.generate(self(features, lengths), lengths)
        mel = self.denormalize_mel(generated)
        return mel[0] if unbatched else mel
