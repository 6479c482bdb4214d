"""Discriminators for adversarial training of waveform generators.

Every discriminator maps waveforms ``(B, T)`` to a list of :class:`DiscriminatorOutput`, one per
sub-discriminator (a resolution, a period): the raw score map (no sigmoid; the objectives in
:mod:`vocoder.losses` decide what it means) and the activations of every hidden layer (for feature
matching). None is causal: a score depends on samples on both sides.

* :class:`MultiResolutionSTFTDiscriminator` — 2-D convolutions over the (frame, frequency) plane of
  an STFT at several resolutions (UnivNet, Vocos; DAC with ``spectrum="complex"``). The time axis is
  never strided: every STFT frame has its row of scores; frequency is strided by 2 in three layers.
* :class:`MultiPeriodDiscriminator` — HiFi-GAN's MPD: the waveform folded into ``(T / p, p)`` for
  each period ``p`` and convolved along the first axis only, so each column (the samples of one
  phase of the period) is scored on its own.
* :class:`ParallelWaveGANDiscriminator` — Parallel WaveGAN's stack of non-causal dilated 1-D
  convolutions: one score per sample.

:func:`build_discriminators` assembles a :class:`Discriminators` from kind names and settings (what
``loss.adversarial`` configures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vocoder.dsp import stft

#: ``spectrum`` choices of :class:`SpectrogramDiscriminator`.
SPECTRUM_KINDS = ("magnitude", "log_magnitude", "complex")
#: UnivNet's / Parallel WaveGAN's three STFT resolutions (n_fft, hop_length, win_length).
DEFAULT_DISCRIMINATOR_RESOLUTIONS: tuple[tuple[int, int, int], ...] = (
    (1024, 120, 600), (2048, 240, 1200), (512, 50, 240),
)


class DiscriminatorOutput(NamedTuple):
    """What one sub-discriminator says about a batch of waveforms.

    Attributes:
        score: the raw score map, ``(B, 1, ...)`` (its layout is the sub-discriminator's).
        features: the activations of every hidden layer, each ``(B, C, ...)``.
    """

    score: torch.Tensor
    features: list[torch.Tensor]


def _normed(layer: nn.Module, weight_norm: bool) -> nn.Module:
    return nn.utils.parametrizations.weight_norm(layer) if weight_norm else layer


def _score(convs: nn.ModuleList, output: nn.Module, h: torch.Tensor, slope: float) -> DiscriminatorOutput:
    """Run ``h`` through ``convs`` (each followed by a leaky ReLU of ``slope``) and ``output``, keeping
    every hidden activation for feature matching."""
    features = []
    for conv in convs:
        h = F.leaky_relu(conv(h), slope)
        features.append(h)
    return DiscriminatorOutput(output(h), features)


def _check_waveform(x: torch.Tensor) -> None:
    if x.dim() != 2:
        raise ValueError(f"expected waveforms (B, T), got shape {tuple(x.shape)}")


class SpectrogramDiscriminator(nn.Module):
    """One resolution of a multi-resolution STFT discriminator.

    The STFT (:func:`vocoder.dsp.stft`: periodic Hann window, centred frames) is laid out as an image
    ``(B, C, frames, bins)`` and scored by six 2-D convolutions: ``(3, 9)`` kernels (frames × bins),
    frequency strided by 2 in layers 2-4, then two ``(3, 3)`` layers, leaky ReLU (0.1) between them.
    Every layer has a time kernel of 3 and time stride 1, so a score frame depends on the STFT frames
    within :attr:`frame_radius` = 6 on either side.

    Args:
        n_fft: FFT size.
        hop_length: frame step (samples).
        win_length: Hann window length (≤ ``n_fft``).
        channels: hidden channels.
        spectrum: ``magnitude`` (``|X|``, UnivNet), ``log_magnitude`` (``log(|X| + floor)``) or
            ``complex`` (real and imaginary parts as two channels, DAC).
        floor: the offset inside the log of ``log_magnitude``.
        weight_norm: weight-normalize every convolution.
    """

    #: STFT frames on either side of a score frame that it depends on.
    frame_radius = 6

    def __init__(
        self,
        n_fft: int,
        hop_length: int,
        win_length: int,
        channels: int = 32,
        spectrum: str = "log_magnitude",
        floor: float = 1e-4,
        weight_norm: bool = True,
    ) -> None:
        super().__init__()
        if not 1 <= win_length <= n_fft or hop_length < 1:
            raise ValueError(f"resolution ({n_fft}, {hop_length}, {win_length}): need 1 <= win_length <= "
                             "n_fft and hop_length >= 1")
        if spectrum not in SPECTRUM_KINDS:
            raise ValueError(f"spectrum: expected one of {', '.join(SPECTRUM_KINDS)}, got {spectrum!r}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if not floor > 0:
            raise ValueError(f"floor must be > 0, got {floor}")
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        self.spectrum, self.floor = spectrum, floor
        inputs = 2 if spectrum == "complex" else 1
        shapes = [
            (inputs, channels, (3, 9), (1, 1)),
            (channels, channels, (3, 9), (1, 2)),
            (channels, channels, (3, 9), (1, 2)),
            (channels, channels, (3, 9), (1, 2)),
            (channels, channels, (3, 3), (1, 1)),
        ]
        self.convs = nn.ModuleList(
            _normed(nn.Conv2d(cin, cout, kernel, stride, padding=(kernel[0] // 2, kernel[1] // 2)),
                    weight_norm)
            for cin, cout, kernel, stride in shapes
        )
        self.output = _normed(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)), weight_norm)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's input image.

        Args:
            x: (B, T) waveforms.

        Returns:
            (B, C, 1 + T // hop_length, n_fft // 2 + 1); C = 2 for ``complex``, else 1.
        """
        spec = stft(x, self.n_fft, self.hop_length, self.win_length).transpose(1, 2)  # (B, frames, bins)
        if self.spectrum == "complex":
            return torch.stack([spec.real, spec.imag], dim=1)
        magnitude = spec.abs()
        if self.spectrum == "log_magnitude":
            magnitude = torch.log(magnitude + self.floor)
        return magnitude.unsqueeze(1)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        """Score map ``(B, 1, 1 + T // hop_length, bins')`` and the five hidden activations."""
        _check_waveform(x)
        h = self.spectrogram(x)
        return _score(self.convs, self.output, h, 0.1)


class MultiResolutionSTFTDiscriminator(nn.Module):
    """:class:`SpectrogramDiscriminator` s at several STFT resolutions.

    Args:
        resolutions: ``(n_fft, hop_length, win_length)`` per sub-discriminator.
        channels, spectrum, floor, weight_norm: as :class:`SpectrogramDiscriminator`.
    """

    def __init__(
        self,
        resolutions: Sequence[Sequence[int]] = DEFAULT_DISCRIMINATOR_RESOLUTIONS,
        channels: int = 32,
        spectrum: str = "log_magnitude",
        floor: float = 1e-4,
        weight_norm: bool = True,
    ) -> None:
        super().__init__()
        if not resolutions or any(len(r) != 3 for r in resolutions):
            raise ValueError("resolutions: expected a list of [n_fft, hop_length, win_length], "
                             f"got {resolutions!r}")
        self.discriminators = nn.ModuleList(
            SpectrogramDiscriminator(int(n), int(h), int(w), channels, spectrum, floor, weight_norm)
            for n, h, w in resolutions
        )

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        """One :class:`DiscriminatorOutput` per resolution."""
        return [discriminator(x) for discriminator in self.discriminators]


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's sub-discriminator of one period ``p``.

    The waveform (reflect-padded at its end to a multiple of ``p``) is folded into ``(B, 1, T / p, p)``
    and scored by ``(kernel_size, 1)`` convolutions, strided by ``stride`` along the first axis in the
    ``len(channels)`` first layers, then one unstrided ``(kernel_size, 1)`` layer and a ``(3, 1)``
    output layer (leaky ReLU 0.1): the score of column ``c`` depends only on samples ``≡ c (mod p)``,
    over :attr:`receptive_rows` rows (periods) of them.

    Args:
        period: the folding period ``p`` (samples).
        channels: channels of the strided layers (HiFi-GAN: 32, 128, 512, 1024); the unstrided layer
            keeps the last.
        kernel_size: kernel length along the folded time axis.
        stride: stride of the strided layers.
        weight_norm: weight-normalize every convolution.
    """

    def __init__(
        self,
        period: int,
        channels: Sequence[int] = (32, 128, 512, 1024),
        kernel_size: int = 5,
        stride: int = 3,
        weight_norm: bool = True,
    ) -> None:
        super().__init__()
        odd_kernel = kernel_size >= 1 and kernel_size % 2 == 1
        if period < 1 or not channels or min(channels) < 1 or not odd_kernel or stride < 1:
            raise ValueError(f"period discriminator: need period >= 1, channels >= 1, an odd kernel_size and "
                             f"stride >= 1 (got {period}, {list(channels)}, {kernel_size}, {stride})")
        self.period = int(period)
        pad = (kernel_size // 2, 0)
        layers = []
        previous = 1
        for width in channels:
            layers.append(nn.Conv2d(previous, int(width), (kernel_size, 1), (stride, 1), padding=pad))
            previous = int(width)
        layers.append(nn.Conv2d(previous, previous, (kernel_size, 1), 1, padding=pad))
        self.convs = nn.ModuleList(_normed(layer, weight_norm) for layer in layers)
        self.output = _normed(nn.Conv2d(previous, 1, (3, 1), 1, padding=(1, 0)), weight_norm)
        # rows (periods) an output row depends on: 1 + sum of (k - 1) · (product of earlier strides)
        receptive, jump = 1, 1
        for layer in [*layers, self.output]:
            receptive += (layer.kernel_size[0] - 1) * jump
            jump *= layer.stride[0]
        self.receptive_rows = receptive

    def fold(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) → (B, 1, ceil(T / p), p), the end reflect-padded (zero-padded when T ≤ the padding)."""
        _check_waveform(x)
        extra = (-x.shape[1]) % self.period
        if extra:
            mode = "reflect" if x.shape[1] > extra else "constant"
            x = F.pad(x.unsqueeze(1), (0, extra), mode=mode).squeeze(1)
        return x.reshape(x.shape[0], 1, -1, self.period)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        """Score map ``(B, 1, rows', p)`` and the hidden activations."""
        h = self.fold(x)
        return _score(self.convs, self.output, h, 0.1)


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN's multi-period discriminator: one :class:`PeriodDiscriminator` per period.

    Args:
        periods: the folding periods (HiFi-GAN: 2, 3, 5, 7, 11).
        channels, kernel_size, stride, weight_norm: as :class:`PeriodDiscriminator`.
    """

    def __init__(
        self,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        channels: Sequence[int] = (32, 128, 512, 1024),
        kernel_size: int = 5,
        stride: int = 3,
        weight_norm: bool = True,
    ) -> None:
        super().__init__()
        if not periods:
            raise ValueError("periods: need at least one period")
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(int(p), channels, kernel_size, stride, weight_norm) for p in periods
        )

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        """One :class:`DiscriminatorOutput` per period."""
        return [discriminator(x) for discriminator in self.discriminators]


class ParallelWaveGANDiscriminator(nn.Module):
    """Parallel WaveGAN's discriminator: non-causal dilated 1-D convolutions, one score per sample.

    ``layers - 1`` hidden convolutions of ``kernel_size`` with leaky ReLU (0.2) — dilation 1, then
    ``i`` for layer ``i`` (``dilation_factor=1``, Parallel WaveGAN's default) or ``dilation_factor ** i``
    — and an undilated output convolution. The score of sample ``t`` depends on the samples within
    :attr:`radius` on either side (:attr:`receptive_field` = 2 · radius + 1; 77 for 10 layers).

    Args:
        layers: convolutions in all (≥ 2).
        channels: hidden channels.
        kernel_size: odd kernel length.
        dilation_factor: 1 for linearly growing dilations, else their geometric base.
        weight_norm: weight-normalize every convolution.
    """

    def __init__(
        self,
        layers: int = 10,
        channels: int = 64,
        kernel_size: int = 3,
        dilation_factor: int = 1,
        weight_norm: bool = True,
    ) -> None:
        super().__init__()
        if layers < 2 or channels < 1 or kernel_size < 1 or kernel_size % 2 == 0 or dilation_factor < 1:
            raise ValueError(f"parallel wavegan discriminator: need layers >= 2, channels >= 1, an odd "
                             f"kernel_size and dilation_factor >= 1 (got {layers}, {channels}, "
                             f"{kernel_size}, {dilation_factor})")
        dilations = [1] + [i if dilation_factor == 1 else dilation_factor**i for i in range(1, layers - 1)]
        convs = []
        previous = 1
        for dilation in dilations:
            padding = (kernel_size - 1) // 2 * dilation
            convs.append(nn.Conv1d(previous, channels, kernel_size, padding=padding, dilation=dilation))
            previous = channels
        self.convs = nn.ModuleList(_normed(conv, weight_norm) for conv in convs)
        output = nn.Conv1d(channels, 1, kernel_size, padding=(kernel_size - 1) // 2)
        self.output = _normed(output, weight_norm)
        self.radius = (kernel_size - 1) // 2 * (sum(dilations) + 1)
        self.receptive_field = 2 * self.radius + 1

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        """One :class:`DiscriminatorOutput`: score ``(B, 1, T)`` and the hidden activations."""
        _check_waveform(x)
        h = x.unsqueeze(1)
        return [_score(self.convs, self.output, h, 0.2)]


#: discriminator kinds by config name (``loss.adversarial.discriminators``).
DISCRIMINATOR_KINDS: dict[str, type[nn.Module]] = {
    "mrstft": MultiResolutionSTFTDiscriminator,
    "mpd": MultiPeriodDiscriminator,
    "pwg": ParallelWaveGANDiscriminator,
}


class Discriminators(nn.Module):
    """Several discriminator kinds side by side, scoring the same waveforms.

    Args:
        discriminators: kind name → discriminator (each returns a list of :class:`DiscriminatorOutput`).
    """

    def __init__(self, discriminators: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not discriminators:
            raise ValueError("need at least one discriminator")
        self.kinds = nn.ModuleDict(dict(discriminators))

    def forward(self, x: torch.Tensor) -> dict[str, list[DiscriminatorOutput]]:
        """Kind name → the outputs of its sub-discriminators for ``x`` (B, T)."""
        return {name: discriminator(x) for name, discriminator in self.kinds.items()}


def build_discriminators(
    kinds: Sequence[str], settings: Mapping[str, Mapping[str, Any]] | None = None
) -> Discriminators:
    """Discriminators by kind name (:data:`DISCRIMINATOR_KINDS`), each from its keyword arguments.

    Args:
        kinds: e.g. ``["mrstft", "mpd"]``.
        settings: kind → keyword arguments of its class (a kind without an entry takes the defaults).

    Raises:
        ValueError: an unknown or repeated kind, or settings its class rejects; the message starts with
            the kind's name.
    """
    settings = dict(settings or {})
    if not kinds:
        raise ValueError(f"no discriminator; give one or more of {', '.join(DISCRIMINATOR_KINDS)}")
    built: dict[str, nn.Module] = {}
    for kind in kinds:
        if kind not in DISCRIMINATOR_KINDS:
            raise ValueError(f"{kind}: unknown discriminator (known: {', '.join(DISCRIMINATOR_KINDS)})")
        if kind in built:
            raise ValueError(f"{kind}: listed twice")
        try:
            built[kind] = DISCRIMINATOR_KINDS[kind](**dict(settings.get(kind) or {}))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{kind}: {exc}") from None
    return Discriminators(built)
