"""Spectral losses for waveform generators: Parallel WaveNet's power loss and a multi-resolution STFT loss.

Both use :func:`vocoder.dsp.stft` (periodic Hann window, centred frames with zero padding) and are
differentiable with respect to the generated waveform.

* :func:`power_loss` — ``mean_f (P̂_f - P_f)²`` between the power spectra ``P = |STFT|²`` averaged
  over time (Parallel WaveNet, van den Oord et al. 2017: keeps the student from whispering); with
  ``time_average=False`` the per-frame powers are compared instead.
* :func:`stft_loss` — per resolution, spectral convergence ``‖|Y| - |Ŷ|‖_F / ‖|Y|‖_F`` (linear
  magnitude, per utterance, then averaged) and the mean absolute log-magnitude difference; each
  term averaged over the resolutions (Yamamoto et al., Parallel WaveGAN).

The log floor defaults to the machine epsilon of the waveform's dtype.
"""

from __future__ import annotations

import torch
from torch import nn

from vocoder.dsp import stft

# Parallel WaveGAN's three resolutions (n_fft, hop_length, win_length).
DEFAULT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")


def stft_magnitude(x: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """Magnitude STFT.

    Args:
        x: (B, N) waveform.
        n_fft: FFT size.
        hop_length: frame step.
        win_length: Hann window length (≤ n_fft).

    Returns:
        (B, n_fft // 2 + 1, 1 + N // hop_length) magnitudes.
    """
    return stft(x, n_fft, hop_length, win_length).abs()


def power_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    n_fft: int = 1024,
    hop_length: int = 256,
    win_length: int = 1024,
    time_average: bool = True,
) -> torch.Tensor:
    """Squared distance between power spectra (Parallel WaveNet's power loss).

    Args:
        prediction: (B, N) generated waveform.
        target: (B, N) natural waveform.
        n_fft: FFT size.
        hop_length: frame step.
        win_length: window length.
        time_average: compare time-averaged power spectra (the paper's loss) instead of every frame.

    Returns:
        Scalar: mean over batch, frequency bins (and frames without ``time_average``).
    """
    _check_pair(prediction, target)
    predicted_power = stft_magnitude(prediction, n_fft, hop_length, win_length).square()
    target_power = stft_magnitude(target, n_fft, hop_length, win_length).square()
    if time_average:
        predicted_power = predicted_power.mean(dim=-1)
        target_power = target_power.mean(dim=-1)
    return (predicted_power - target_power).square().mean()


def spectral_convergence(prediction_magnitude: torch.Tensor, target_magnitude: torch.Tensor) -> torch.Tensor:
    """Spectral convergence ``‖|Y| - |Ŷ|‖_F / ‖|Y|‖_F`` per utterance, averaged over the batch.

    Args:
        prediction_magnitude: (B, bins, frames) generated magnitudes.
        target_magnitude: (B, bins, frames) natural magnitudes.

    Returns:
        Scalar.
    """
    difference = (target_magnitude - prediction_magnitude).flatten(1).norm(dim=1)
    reference = target_magnitude.flatten(1).norm(dim=1)
    floor = torch.finfo(reference.dtype).eps
    return (difference / reference.clamp_min(floor)).mean()


def log_magnitude_distance(
    prediction_magnitude: torch.Tensor, target_magnitude: torch.Tensor, floor: float | None = None
) -> torch.Tensor:
    """Mean absolute difference of natural-log magnitudes.

    Args:
        prediction_magnitude: (B, bins, frames) generated magnitudes.
        target_magnitude: (B, bins, frames) natural magnitudes.
        floor: lower bound of the magnitudes inside the log (default: dtype's machine epsilon).

    Returns:
        Scalar.
    """
    floor = torch.finfo(prediction_magnitude.dtype).eps if floor is None else floor
    return (
        (torch.log(prediction_magnitude.clamp_min(floor)) - torch.log(target_magnitude.clamp_min(floor)))
        .abs()
        .mean()
    )


def stft_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    resolutions: tuple[tuple[int, int, int], ...] | list[tuple[int, int, int]] = DEFAULT_RESOLUTIONS,
    floor: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-resolution STFT loss terms.

    Args:
        prediction: (B, N) generated waveform.
        target: (B, N) natural waveform.
        resolutions: ``(n_fft, hop_length, win_length)`` triples.
        floor: log-magnitude floor (default: dtype's machine epsilon).

    Returns:
        ``(spectral_convergence, log_magnitude)`` scalars, each averaged over the resolutions.
    """
    _check_pair(prediction, target)
    if len(resolutions) == 0:
        raise ValueError("resolutions must not be empty")
    convergence = prediction.new_zeros(())
    log_magnitude = prediction.new_zeros(())
    for n_fft, hop_length, win_length in resolutions:
        predicted = stft_magnitude(prediction, n_fft, hop_length, win_length)
        natural = stft_magnitude(target, n_fft, hop_length, win_length)
        convergence = convergence + spectral_convergence(predicted, natural)
        log_magnitude = log_magnitude + log_magnitude_distance(predicted, natural, floor)
    return convergence / len(resolutions), log_magnitude / len(resolutions)


class PowerLoss(nn.Module):
    """Module form of :func:`power_loss`.

    Args:
        n_fft: FFT size.
        hop_length: frame step.
        win_length: window length.
        time_average: compare time-averaged power spectra (Parallel WaveNet) instead of every frame.
    """

    def __init__(
        self, *, n_fft: int = 1024, hop_length: int = 256, win_length: int = 1024, time_average: bool = True
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.time_average = time_average

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Power loss between (B, N) waveforms; scalar."""
        return power_loss(
            prediction,
            target,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            time_average=self.time_average,
        )

    def extra_repr(self) -> str:
        return (
            f"n_fft={self.n_fft}, hop_length={self.hop_length}, win_length={self.win_length}, "
            f"time_average={self.time_average}"
        )


class STFTLoss(nn.Module):
    """Module form of :func:`stft_loss` (multi-resolution spectral convergence + log magnitude).

    Args:
        resolutions: ``(n_fft, hop_length, win_length)`` triples.
        floor: log-magnitude floor (default: dtype's machine epsilon).
    """

    def __init__(
        self,
        *,
        resolutions: tuple[tuple[int, int, int], ...] | list[tuple[int, int, int]] = DEFAULT_RESOLUTIONS,
        floor: float | None = None,
    ) -> None:
        super().__init__()
        self.resolutions = tuple(tuple(int(v) for v in r) for r in resolutions)
        if len(self.resolutions) == 0 or any(len(r) != 3 for r in self.resolutions):
            raise ValueError("resolutions must be non-empty (n_fft, hop_length, win_length) triples")
        self.floor = floor

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(spectral_convergence, log_magnitude)`` between (B, N) waveforms."""
        return stft_loss(prediction, target, resolutions=self.resolutions, floor=self.floor)

    def extra_repr(self) -> str:
        return f"resolutions={self.resolutions}, floor={self.floor}"
