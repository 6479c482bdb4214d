"""Yardsticks scored on the same utterances as a vocoder: WORLD, Griffin-Lim, 8-bit μ-law."""

from __future__ import annotations

import numpy as np

from vocoder.dsp import mulaw_decode, mulaw_encode


def world_resynthesis(x: np.ndarray, sample_rate: int = 16000, frame_period_ms: float = 5.0) -> np.ndarray:
    """WORLD analysis (harvest, CheapTrick, D4C) and synthesis of ``x``."""
    import pyworld

    wave = np.ascontiguousarray(x, dtype=np.float64)
    f0, times = pyworld.harvest(wave, sample_rate, f0_floor=60.0, f0_ceil=500.0, frame_period=frame_period_ms)
    envelope = pyworld.cheaptrick(wave, f0, times, sample_rate)
    aperiodicity = pyworld.d4c(wave, f0, times, sample_rate)
    out = pyworld.synthesize(f0, envelope, aperiodicity, sample_rate, frame_period_ms)
    return out[: len(x)].astype(np.float32)


def griffin_lim_from_mel(x: np.ndarray, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 160,
                         win_length: int = 640, n_mels: int = 80, fmin: float = 0.0, fmax: float = 8000.0,
                         n_iter: int = 32) -> np.ndarray:
    """Griffin-Lim reconstruction from the mel magnitude spectrogram (the log-mel's information)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=x.astype(np.float32), sr=sample_rate, n_fft=n_fft,
                                         hop_length=hop_length, win_length=win_length, n_mels=n_mels,
                                         fmin=fmin, fmax=fmax, power=1.0)
    out = librosa.feature.inverse.mel_to_audio(mel, sr=sample_rate, n_fft=n_fft, hop_length=hop_length,
                                               win_length=win_length, fmin=fmin, fmax=fmax, power=1.0,
                                               n_iter=n_iter, length=len(x))
    return out.astype(np.float32)


def mulaw_8bit(x: np.ndarray) -> np.ndarray:
    """8-bit μ-law quantization of the natural wave: the ceiling of a μ-law output model."""
    return mulaw_decode(mulaw_encode(np.clip(x, -1, 1), 8), 8).astype(np.float32)


ANCHORS = {
    "world": world_resynthesis,
    "griffin_lim": griffin_lim_from_mel,
    "mulaw8": mulaw_8bit,
}
