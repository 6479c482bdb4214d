"""STFT and (log-)mel spectrograms on ``torch.stft`` with librosa's mel filter bank.

Conventions, stated once and matched to ``librosa.feature.melspectrogram`` defaults:

* periodic Hann window of ``win_length`` samples, zero-padded symmetrically to ``n_fft``;
* ``center=True`` pads ``n_fft // 2`` samples on both sides with zeros (``pad_mode="constant"``,
  librosa ≥ 0.10's default), so frame ``k`` is centred on sample ``k · hop_length`` and a signal of
  ``T`` samples gives ``1 + T // hop_length`` frames;
* Slaney mel scale and Slaney area normalisation (``htk=False, norm="slaney"``);
* ``power=2`` gives a power spectrogram, ``power=1`` a magnitude spectrogram.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch


def stft(
    x: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    center: bool = True,
    pad_mode: str = "constant",
) -> torch.Tensor:
    """Complex STFT of ``x`` ``(..., T)`` → ``(..., n_fft // 2 + 1, frames)``."""
    win_length = win_length or n_fft
    window = torch.hann_window(win_length, periodic=True, dtype=x.dtype, device=x.device)
    batch_shape = x.shape[:-1]
    spec = torch.stft(
        x.reshape(-1, x.shape[-1]),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        return_complex=True,
    )
    return spec.reshape(*batch_shape, *spec.shape[-2:])


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """librosa's Slaney mel filter bank as a tensor ``(n_mels, n_fft // 2 + 1)``."""
    # built in float64 and then cast: librosa's default float32 bank would cap a float64 mel
    # spectrogram at single precision (~3e-8 relative)
    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax,
                                dtype=np.float64)
    return torch.from_numpy(np.asarray(basis)).to(dtype=dtype, device=device)


def mel_spectrogram(
    x: torch.Tensor,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    power: float = 2.0,
    center: bool = True,
    filterbank: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mel spectrogram of ``x`` ``(..., T)`` → ``(..., n_mels, frames)``.

    Equal to ``librosa.feature.melspectrogram`` with the same arguments (see the module
    docstring for the window/centering/padding conventions). Differentiable.
    """
    spec = stft(x, n_fft, hop_length, win_length, center=center)
    if power == 2.0 or not (torch.is_grad_enabled() and spec.requires_grad):
        # |X|² from the real and imaginary parts: cheaper than complex abs (a hypot per bin)
        parts = torch.view_as_real(spec)
        spec = parts[..., 0].square() + parts[..., 1].square()
        if power != 2.0:
            spec = spec.sqrt() if power == 1.0 else spec.pow(power / 2)
    else:  # magnitude with a gradient: abs's is 0 at 0, the square root's would not be finite
        spec = spec.abs()
        if power != 1.0:
            spec = spec.pow(power)
    if filterbank is None:
        filterbank = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, dtype=spec.dtype,
                                    device=spec.device)
    return torch.matmul(filterbank, spec)


def log_mel_spectrogram(
    x: torch.Tensor,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    floor: float | None = None,
    center: bool = True,
    filterbank: torch.Tensor | None = None,
) -> torch.Tensor:
    """Natural log of the mel *magnitude* spectrogram, ``(..., n_mels, frames)``.

    ``floor`` bounds the argument of the log from below; by default it is the smallest normal
    number of ``x``'s own dtype (``torch.finfo(dtype).tiny``), which stays non-zero in float32
    unlike Python's ``sys.float_info.min``.
    """
    mel = mel_spectrogram(
        x, sample_rate, n_fft, hop_length, win_length, n_mels, fmin, fmax, power=1.0, center=center,
        filterbank=filterbank,
    )
    floor = torch.finfo(mel.dtype).tiny if floor is None else floor
    return torch.log(mel.clamp_min(floor))
