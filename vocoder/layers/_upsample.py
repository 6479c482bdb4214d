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
* :class:`CentredUpsampler` first mixes ``±context`` neighbouring frames with a learned frame-rate
  convolution (look-ahead as well as look-back; the mel is known in full before synthesis, so this
  keeps the student causal in its noise), then aligns frames with the samples they were analysed
  at: the cache's STFT is centred, so frame ``k`` describes the window centred on sample ``k·hop``
  and is the nearest frame for samples ``[k·hop - hop/2, k·hop + hop/2)``. Each half frame takes the
  linear interpolation of the two frames around its centre (``¾·c_k + ¼·c_{k+1}`` for the first half
  of ``[k·hop, (k+1)·hop)``, ``¼·c_k + ¾·c_{k+1}`` for the second), so :meth:`forward_factored`
  returns ``2F`` half-frame columns with the factor ``hop / 2`` and the projections still run at
  (twice) the frame rate. It starts with the identity frame mixer.

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


class CentredUpsampler(nn.Module):
    """``±context`` frames mixed at the frame rate, then frame-centred half-frame interpolation.

    See the module docstring. Edges replicate the first/last frame.

    Args:
        channels: feature channels C.
        hop_length: samples per frame (even).
        context: frames of look-back and of look-ahead of the frame mixer (≥ 0).
    """

    def __init__(self, *, channels: int, hop_length: int, context: int = 2) -> None:
        super().__init__()
        if hop_length < 2 or hop_length % 2 != 0 or context < 0:
            raise ValueError(f"need an even hop_length ≥ 2 and context ≥ 0, got {hop_length}, {context}")
        self.channels = channels
        self.hop_length = hop_length
        self.context = context
        self.mixer = nn.Conv1d(
            channels, channels, 2 * context + 1, padding=context, padding_mode="replicate", bias=True
        )
        with torch.no_grad():
            self.mixer.weight.zero_()
            self.mixer.bias.zero_()
            self.mixer.weight[:, :, context].copy_(torch.eye(channels))

    def half_frames(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, F) frames → (B, C, 2F) mixed, frame-centred half-frame columns."""
        mixed = self.mixer(features)
        following = torch.cat([mixed[:, :, 1:], mixed[:, :, -1:]], dim=2)
        first = 0.75 * mixed + 0.25 * following
        second = 0.25 * mixed + 0.75 * following
        return torch.stack([first, second], dim=3).flatten(2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, F) frames → (B, C, F·hop) samples."""
        return self.half_frames(features).repeat_interleave(self.hop_length // 2, dim=2)

    def forward_factored(self, features: torch.Tensor) -> tuple[torch.Tensor, int]:
        """``(half-frame columns (B, C, 2F), hop / 2)``: repeating them gives :meth:`forward`."""
        return self.half_frames(features), self.hop_length // 2

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hop_length={self.hop_length}, context={self.context}"


UPSAMPLER_KINDS = ("repeat", "transposed", "centred")


def build_upsampler(
    kind: str, *, channels: int, hop_length: int, overlap: int = 0, context: int = 2
) -> nn.Module:
    """Construct an upsampler by name.

    Args:
        kind: ``"repeat"``, ``"transposed"`` or ``"centred"``.
        channels: feature channels (used by the transposed convolution and the frame mixer).
        hop_length: samples per frame.
        overlap: cross-frame reach of the transposed convolution (must be 0 for the others).
        context: frames of look-back/look-ahead of ``"centred"`` (ignored by the others).

    Returns:
        A :class:`RepeatUpsampler`, :class:`TransposedConvUpsampler` or :class:`CentredUpsampler`.
    """
    if kind in ("repeat", "centred") and overlap != 0:
        raise ValueError("overlap applies to the transposed-convolution upsampler only")
    if kind == "repeat":
        return RepeatUpsampler(hop_length=hop_length)
    if kind == "transposed":
        return TransposedConvUpsampler(channels=channels, hop_length=hop_length, overlap=overlap)
    if kind == "centred":
        return CentredUpsampler(channels=channels, hop_length=hop_length, context=context)
    raise ValueError(f"upsampler kind must be one of {UPSAMPLER_KINDS}, got {kind!r}")
