"""Frame-rate → sample-rate upsamplers for local conditioning.

Frame ``k`` describes samples ``[k·hop, (k+1)·hop)``; ``F`` frames become exactly ``F·hop`` samples.

* :class:`RepeatUpsampler` repeats every frame ``hop`` times: sample ``n`` uses frame ``n // hop``
  and nothing else. Because the conditioning enters each WaveNet layer through a 1×1 convolution,
  which commutes with repetition, :meth:`RepeatUpsampler.forward_factored` hands the frames back
  un-repeated with the factor ``hop`` so that the projections run at the frame rate.
* :class:`TransposedConvUpsampler` is a learned depthwise transposed convolution with stride ``hop``,
  kernel ``hop + 2·overlap`` and padding ``overlap``: output length ``(F - 1)·hop + hop + 2·overlap
  - 2·overlap = F·hop``, and frame ``k`` spreads over samples ``[k·hop - overlap, (k+1)·hop + overlap)``,
  symmetric about its own span. With ``overlap=0`` sample ``n`` again depends on frame ``n // hop``
  only. It starts as a partition of unity (a length-``hop`` box smoothed by a normalised box of
  ``2·overlap + 1`` taps), i.e. as repetition cross-faded over ``overlap`` samples at each boundary.

This module avoids ``from __future__ import annotations`` so that TorchScript can compile it.
"""

import torch
from torch import nn


class RepeatUpsampler(nn.Module):
    """Repeat each frame ``hop_length`` times (no parameters).

    Args:
        hop_length: samples per frame.
    """

    def __init__(self, *, hop_length: int) -> None:
        super().__init__()
        if hop_length < 1:
            raise ValueError(f"hop_length must be ≥ 1, got {hop_length}")
        self.hop_length = hop_length

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, F) frames → (B, C, F·hop) samples; sample ``n`` equals frame ``n // hop``."""
        return features.repeat_interleave(self.hop_length, dim=2)

    def forward_factored(self, features: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Upsampled features as ``(low_rate, repeat)``: repeating ``low_rate`` gives :meth:`forward`.

        Args:
            features: (B, C, F) frames.

        Returns:
            ``(features, hop_length)``: the frames themselves and the repetition factor.
        """
        return features, self.hop_length

    def extra_repr(self) -> str:
        return f"hop_length={self.hop_length}"


class TransposedConvUpsampler(nn.Module):
    """Learned depthwise transposed-convolution upsampler, frame-aligned (see module docstring).

    Args:
        channels: feature channels C (each channel is upsampled by its own kernel).
        hop_length: samples per frame (the stride).
        overlap: samples each frame's kernel reaches into each neighbouring frame (≥ 0).
    """

    def __init__(self, *, channels: int, hop_length: int, overlap: int = 0) -> None:
        super().__init__()
        if hop_length < 1 or overlap < 0:
            raise ValueError(f"need hop_length ≥ 1 and overlap ≥ 0, got {hop_length}, {overlap}")
        self.channels = channels
        self.hop_length = hop_length
        self.overlap = overlap
        self.conv = nn.ConvTranspose1d(
            channels,
            channels,
            kernel_size=hop_length + 2 * overlap,
            stride=hop_length,
            padding=overlap,
            groups=channels,
            bias=False,
        )
        with torch.no_grad():
            self.conv.weight.copy_(self.initial_kernel().expand_as(self.conv.weight))

    def initial_kernel(self) -> torch.Tensor:
        """The partition-of-unity kernel the weights start from, (hop + 2·overlap,), float64."""
        box = torch.ones(1, 1, self.hop_length, dtype=torch.float64)
        smooth = torch.full((1, 1, 2 * self.overlap + 1), 1.0 / (2 * self.overlap + 1), dtype=torch.float64)
        return torch.nn.functional.conv1d(box, smooth, padding=2 * self.overlap)[0, 0]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, F) frames → (B, C, F·hop) samples."""
        return self.conv(features)

    def forward_factored(self, features: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Sample-rate features with repetition factor 1 (interface of :class:`RepeatUpsampler`).

        Args:
            features: (B, C, F) frames.

        Returns:
            ``(upsampled (B, C, F·hop), 1)``.
        """
        return self.conv(features), 1

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hop_length={self.hop_length}, overlap={self.overlap}"


def build_upsampler(kind: str, *, channels: int, hop_length: int, overlap: int = 0) -> nn.Module:
    """Construct an upsampler by name.

    Args:
        kind: ``"repeat"`` or ``"transposed"``.
        channels: feature channels (used by the transposed convolution).
        hop_length: samples per frame.
        overlap: cross-frame reach of the transposed convolution (must be 0 for ``"repeat"``).

    Returns:
        A :class:`RepeatUpsampler` or :class:`TransposedConvUpsampler`.
    """
    if kind == "repeat":
        if overlap != 0:
            raise ValueError("overlap applies to the transposed-convolution upsampler only")
        return RepeatUpsampler(hop_length=hop_length)
    if kind == "transposed":
        return TransposedConvUpsampler(channels=channels, hop_length=hop_length, overlap=overlap)
    raise ValueError(f"upsampler kind must be 'repeat' or 'transposed', got {kind!r}")
