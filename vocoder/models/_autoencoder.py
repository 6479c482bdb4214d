"""Autoencoders over acoustic feature sequences, with length masks.

A compact conditioning interface: a ``(B, T, D)`` feature sequence (20 LPCNet features, 80 log-mel
bands…) is squeezed into a ``(B, ⌈T / downsample⌉, latent_size)`` latent sequence (low-bitrate coding,
a latent-diffusion TTS front end) and decoded back.

* :class:`FeatureAutoencoder` — deterministic encoder/decoder; the latent is normalized by a
  parameter-free map (``latent_norm``: ``tanh`` bounds each latent channel to (-1, 1), ``layer``
  standardizes each latent frame over its channels, ``none``), no reparameterization.
* :class:`VariationalFeatureAutoencoder` — the encoder gives a mean and a log-variance per latent
  channel; :meth:`~VariationalFeatureAutoencoder.reparameterize` draws ``μ + σ·ε`` while training
  (the mean in eval mode) and :func:`gaussian_kl` is ``KL(N(μ, σ²) ‖ N(0, 1))``.

Design choices (stated, not hidden):

* Non-causal 1-D convolutions over frames, like :class:`vocoder.models.FeatureConverter`: encoder
  = input convolution + ``layers - 1`` residual convolutions (``kernel_size`` taps, GELU) + a strided
  convolution of ``2·downsample - 1`` taps to the latent; decoder = the latent repeated
  ``downsample`` times + the same stack + a 1×1 output convolution.
* Inputs are standardized with persistent buffers (the cache's ``features_mean`` / ``features_std``,
  :meth:`set_normalization`): a checkpoint alone rebuilds a usable autoencoder; :meth:`decode`
  returns features in the input's (the cache's) units, ready to drive a vocoder.
* Length masks: frames past each sequence's length are zeroed (``torch.where``, so padding may even
  hold NaN) before every convolution, so each sequence of a padded batch is encoded and decoded
  exactly as if it were passed alone. In the outputs, padding is set to ``mask_value`` (the
  reconstruction) and ``latent_mask_value`` (latent, mean and log-variance); losses must use the
  lengths (:func:`masked_mean`) and never see it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vocoder.models._feature_converter import frame_mask

LATENT_NORMS = ("tanh", "layer", "none")


class AutoencoderOutput(NamedTuple):
    """What :meth:`FeatureAutoencoder.train_sample` returns.

    Attributes:
        rec: (B, T, D) reconstruction in the input's units; ``mask_value`` past ``lengths``.
        latent: (B, T', latent_size) latent with ``T' = ⌈T / downsample⌉``; ``latent_mask_value``
            past ``latent_lengths``.
        latent_lengths: (B,) valid latent frames ``⌈lengths / downsample⌉`` (``None`` without lengths).
    """

    rec: torch.Tensor
    latent: torch.Tensor
    latent_lengths: torch.Tensor | None


class VariationalAutoencoderOutput(NamedTuple):
    """What :meth:`VariationalFeatureAutoencoder.train_sample` returns (``AutoencoderOutput`` + μ, log σ²).

    Attributes:
        rec, latent, latent_lengths: as in :class:`AutoencoderOutput` (``latent`` is the drawn sample).
        mean: (B, T', latent_size) posterior means; ``latent_mask_value`` past ``latent_lengths``.
        log_var: (B, T', latent_size) posterior log-variances; same masking.
    """

    rec: torch.Tensor
    latent: torch.Tensor
    latent_lengths: torch.Tensor | None
    mean: torch.Tensor
    log_var: torch.Tensor


def latent_lengths_for(lengths: torch.Tensor | None, downsample: int) -> torch.Tensor | None:
    """Valid latent frames ``⌈lengths / downsample⌉`` of sequences with ``lengths`` frames."""
    if lengths is None:
        return None
    return torch.div(torch.as_tensor(lengths) + downsample - 1, downsample, rounding_mode="floor")


def masked_mean(values: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``(B, T, C)`` values over the valid frames (``t < lengths[b]``) and all channels."""
    B, T, C = values.shape
    valid = frame_mask(lengths, B, T, values.device)
    total = torch.where(valid[..., None], values, 0.0).sum()
    return total / (valid.sum().clamp_min(1) * C)


def gaussian_kl(
    mean: torch.Tensor, log_var: torch.Tensor, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """``KL(N(μ, σ²) ‖ N(0, 1))`` in nats per latent frame (summed over channels, mean over frames).

    Per channel ``½ (μ² + σ² − 1 − log σ²)``.

    Args:
        mean: (B, T', C) posterior means.
        log_var: (B, T', C) posterior log-variances.
        lengths: (B,) valid latent frames (``None``: all).

    Returns:
        Scalar.
    """
    per_channel = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var)
    return masked_mean(per_channel, lengths) * mean.shape[-1]


class _ConvStack(nn.Module):
    """Input convolution + residual convolutions (GELU, dropout), masked before each one."""

    def __init__(
        self, in_channels: int, channels: int, kernel_size: int, layers: int, dropout: float
    ) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.input_conv = nn.Conv1d(in_channels, channels, kernel_size, padding=padding)
        self.residual_convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=padding) for _ in range(layers - 1)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T) → (B, channels, T); ``valid`` (B, 1, T) bool."""
        h = torch.where(valid, self.dropout(F.gelu(self.input_conv(torch.where(valid, x, 0.0)))), 0.0)
        for conv in self.residual_convs:
            h = torch.where(valid, h + self.dropout(F.gelu(conv(h))), 0.0)
        return h


class FeatureAutoencoder(nn.Module):
    """Deterministic autoencoder of ``(B, T, input_size)`` feature sequences with a normalized latent.

    Args:
        input_size: features per frame D (20 LPCNet features, 80 mel bands…).
        latent_size: latent channels per latent frame.
        channels: hidden channels of every convolution.
        kernel_size: taps of the hidden convolutions (odd: centred, non-causal).
        layers: hidden convolutions in the encoder and in the decoder (≥ 1).
        downsample: input frames per latent frame (≥ 1).
        dropout: dropout after each hidden activation while training.
        latent_norm: ``tanh``, ``layer`` (needs ``latent_size ≥ 2``) or ``none`` (module docstring).
        mask_value: value of the reconstruction past each sequence's length.
        latent_mask_value: value of the latent past each sequence's latent length.
    """

    def __init__(
        self,
        input_size: int = 20,
        latent_size: int = 8,
        *,
        channels: int = 128,
        kernel_size: int = 3,
        layers: int = 3,
        downsample: int = 1,
        dropout: float = 0.0,
        latent_norm: str = "tanh",
        mask_value: float = 0.0,
        latent_mask_value: float = 0.0,
    ) -> None:
        super().__init__()
        if input_size < 1 or latent_size < 1 or channels < 1:
            raise ValueError(
                f"input_size, latent_size, channels must be >= 1, got {input_size}, {latent_size}, {channels}"
            )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1 (centred convolutions), got {kernel_size}")
        if layers < 1 or downsample < 1:
            raise ValueError(f"layers and downsample must be >= 1, got {layers}, {downsample}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if latent_norm not in LATENT_NORMS:
            raise ValueError(f"latent_norm must be one of {', '.join(LATENT_NORMS)}, got {latent_norm!r}")
        if latent_norm == "layer" and latent_size < 2:
            raise ValueError("latent_norm='layer' standardizes over latent channels: needs latent_size >= 2")
        self.input_size = input_size
        self.latent_size = latent_size
        self.downsample = downsample
        self.latent_norm = latent_norm
        self.mask_value = float(mask_value)
        self.latent_mask_value = float(latent_mask_value)
        self.encoder = _ConvStack(input_size, channels, kernel_size, layers, dropout)
        # 2·s − 1 taps, padding s − 1, stride s: exactly ⌈T / s⌉ latent frames for any T
        self.to_latent = nn.Conv1d(
            channels, self._encoder_outputs(), 2 * downsample - 1, stride=downsample, padding=downsample - 1
        )
        self.decoder = _ConvStack(latent_size, channels, kernel_size, layers, dropout)
        self.output_conv = nn.Conv1d(channels, input_size, 1)
        self.register_buffer("features_mean", torch.zeros(input_size))
        self.register_buffer("features_std", torch.ones(input_size))

    def _encoder_outputs(self) -> int:
        return self.latent_size

    # ----------------------------------------------------------------------------- normalization
    def set_normalization(self, mean: torch.Tensor | np.ndarray, std: torch.Tensor | np.ndarray) -> None:
        """Store the input standardization (the cache's statistics).

        Args:
            mean: (input_size,) feature means.
            std: (input_size,) feature standard deviations; entries ≤ 0 are treated as 1.
        """
        mean = torch.as_tensor(np.asarray(mean), dtype=self.features_mean.dtype)
        std = torch.as_tensor(np.asarray(std), dtype=self.features_std.dtype)
        if mean.shape != (self.input_size,) or std.shape != (self.input_size,):
            raise ValueError(
                f"statistics must be ({self.input_size},), got {tuple(mean.shape)}, {tuple(std.shape)}"
            )
        with torch.no_grad():
            self.features_mean.copy_(mean)
            self.features_std.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Features (..., D) in the cache's units → standardized."""
        return (x - self.features_mean) / self.features_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Standardized features (..., D) → the cache's units."""
        return x * self.features_std + self.features_mean

    # ----------------------------------------------------------------------------- pieces
    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"x must be (B, T, {self.input_size}), got shape {tuple(x.shape)}")

    def _encode_raw(
        self, x: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, D) → (B, T', encoder outputs) before the latent's normalization, and latent lengths."""
        self._check_input(x)
        B, T, _ = x.shape
        valid = frame_mask(lengths, B, T, x.device)[:, None, :]
        h = self.encoder(self.normalize(x).transpose(1, 2), valid)
        return self.to_latent(h).transpose(1, 2), latent_lengths_for(lengths, self.downsample)

    def _mask_latent(self, latent: torch.Tensor, latent_lengths: torch.Tensor | None) -> torch.Tensor:
        if latent_lengths is None:
            return latent
        valid = frame_mask(latent_lengths, latent.shape[0], latent.shape[1], latent.device)
        return torch.where(valid[..., None], latent, self.latent_mask_value)

    def _normalize_latent(self, raw: torch.Tensor) -> torch.Tensor:
        if self.latent_norm == "tanh":
            return torch.tanh(raw)
        if self.latent_norm == "layer":
            return F.layer_norm(raw, (self.latent_size,))
        return raw

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Latent sequence of a feature sequence.

        Args:
            x: (B, T, input_size) features in the cache's units; padding past ``lengths`` may hold anything.
            lengths: (B,) valid frames per sequence (``None``: all T).

        Returns:
            (B, ⌈T / downsample⌉, latent_size); ``latent_mask_value`` past ``⌈lengths / downsample⌉``.
        """
        raw, latent_lengths = self._encode_raw(x, lengths)
        return self._mask_latent(self._normalize_latent(raw), latent_lengths)

    def decode(
        self, latent: torch.Tensor, lengths: torch.Tensor | None = None, frames: int | None = None
    ) -> torch.Tensor:
        """Features from a latent sequence.

        Args:
            latent: (B, T', latent_size); padding past the latent lengths may hold anything.
            lengths: (B,) valid *output* frames per sequence (the encoder's input lengths; the latent
                lengths are ``⌈lengths / downsample⌉``). ``None``: all.
            frames: output frames T (``None``: ``T' · downsample``; an encoded sequence of T frames
                is decoded with ``frames=T``).

        Returns:
            (B, T, input_size) in the cache's units; ``mask_value`` past ``lengths``.
        """
        if latent.dim() != 3 or latent.shape[-1] != self.latent_size:
            raise ValueError(f"latent must be (B, T', {self.latent_size}), got shape {tuple(latent.shape)}")
        B, T_latent, _ = latent.shape
        latent_lengths = latent_lengths_for(lengths, self.downsample)
        latent_valid = frame_mask(latent_lengths, B, T_latent, latent.device)
        z = torch.where(latent_valid[..., None], latent, 0.0).repeat_interleave(self.downsample, dim=1)
        # the decoder runs on whole latent frames (⌈L / s⌉ · s), as it does for a sequence alone
        upsampled_lengths = None if latent_lengths is None else latent_lengths * self.downsample
        valid = frame_mask(upsampled_lengths, B, z.shape[1], latent.device)[:, None, :]
        out = self.output_conv(self.decoder(z.transpose(1, 2), valid)).transpose(1, 2)
        frames = z.shape[1] if frames is None else frames
        if frames > z.shape[1]:
            raise ValueError(f"frames={frames} exceeds the {z.shape[1]} frames of {T_latent} latent frames")
        rec = self.denormalize(out[:, :frames])
        if lengths is None:
            return rec
        return torch.where(frame_mask(lengths, B, frames, latent.device)[..., None], rec, self.mask_value)

    def train_sample(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> AutoencoderOutput:
        """Encode and decode a (padded) batch.

        Args:
            x: (B, T, input_size) features in the cache's units.
            lengths: (B,) valid frames per sequence (``None``: all T).

        Returns:
            :class:`AutoencoderOutput` ``(rec (B, T, D), latent (B, T', latent_size), latent_lengths)``.
        """
        latent = self.encode(x, lengths)
        latent_lengths = latent_lengths_for(lengths, self.downsample)
        return AutoencoderOutput(self.decode(latent, lengths, frames=x.shape[1]), latent, latent_lengths)


class VariationalFeatureAutoencoder(FeatureAutoencoder):
    """Variational autoencoder of feature sequences: Gaussian posterior per latent frame, N(0, I) prior.

    Same arguments as :class:`FeatureAutoencoder` except ``latent_norm`` (none: the KL term
    regularizes the latent). ``log_var`` is clamped to [-``log_var_limit``, ``log_var_limit``].

    Args:
        log_var_limit: bound of the posterior log-variance (keeps ``exp`` finite early in training).
    """

    def __init__(
        self, input_size: int = 20, latent_size: int = 8, *, log_var_limit: float = 10.0, **options
    ) -> None:
        if "latent_norm" in options:
            raise TypeError("VariationalFeatureAutoencoder has no latent_norm (the KL term regularizes it)")
        super().__init__(input_size, latent_size, latent_norm="none", **options)
        self.log_var_limit = float(log_var_limit)

    def _encoder_outputs(self) -> int:
        return 2 * self.latent_size

    def posterior(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(mean, log_var, latent_lengths)`` of q(z | x), each (B, T', latent_size), masked."""
        raw, latent_lengths = self._encode_raw(x, lengths)
        mean, log_var = raw.chunk(2, dim=-1)
        log_var = log_var.clamp(-self.log_var_limit, self.log_var_limit)
        mean, log_var = self._mask_latent(mean, latent_lengths), self._mask_latent(log_var, latent_lengths)
        return mean, log_var, latent_lengths

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean (the deterministic code), (B, T', latent_size); masked as the latent."""
        return self.posterior(x, lengths)[0]

    def reparameterize(
        self, mean: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``μ + exp(½ log σ²) · ε``, ε ~ N(0, I), while training; ``μ`` in eval mode."""
        if not self.training:
            return mean
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + torch.exp(0.5 * log_var) * noise

    def train_sample(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> VariationalAutoencoderOutput:
        """Posterior, reparameterized sample and reconstruction of a (padded) batch.

        Returns:
            :class:`VariationalAutoencoderOutput` ``(rec, latent, latent_lengths, mean, log_var)``.
        """
        mean, log_var, latent_lengths = self.posterior(x, lengths)
        latent = self._mask_latent(self.reparameterize(mean, log_var), latent_lengths)
        rec = self.decode(latent, lengths, frames=x.shape[1])
        return VariationalAutoencoderOutput(rec, latent, latent_lengths, mean, log_var)

    def kl(self, output: VariationalAutoencoderOutput) -> torch.Tensor:
        """:func:`gaussian_kl` of a :meth:`train_sample` output (nats per latent frame)."""
        return gaussian_kl(output.mean, output.log_var, output.latent_lengths)

