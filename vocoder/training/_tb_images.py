"""Images for TensorBoard: natural vs synthesized log-mel spectrograms stacked."""

from __future__ import annotations

import numpy as np
import torch

from vocoder.dsp import log_mel_spectrogram


def _log_mel(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    wave = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    return log_mel_spectrogram(
        wave, sample_rate, n_fft=1024, hop_length=sample_rate // 100, win_length=sample_rate // 25,
        n_mels=80, floor=1e-5,
    ).numpy()


def mel_comparison_image(natural: np.ndarray, synthesized: np.ndarray, sample_rate: int) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 image: natural log-mel on top, synthesized below, low frequencies down.

    Both panels share one colour scale (that of the natural spectrogram) so level errors show.
    """
    from matplotlib import colormaps

    top, bottom = _log_mel(natural, sample_rate), _log_mel(synthesized, sample_rate)
    width = max(top.shape[1], bottom.shape[1])
    top = np.pad(top, ((0, 0), (0, width - top.shape[1])), constant_values=top.min())
    bottom = np.pad(bottom, ((0, 0), (0, width - bottom.shape[1])), constant_values=top.min())
    low, high = float(top.min()), float(top.max())
    separator = np.full((2, width), high)
    stacked = np.concatenate([top[::-1], separator, bottom[::-1]], axis=0)
    scaled = np.clip((stacked - low) / max(high - low, 1e-6), 0, 1)
    return (colormaps["viridis"](scaled)[..., :3] * 255).astype(np.uint8)
