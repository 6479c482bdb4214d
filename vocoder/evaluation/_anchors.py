"""Yardsticks scored on the same utterances as a vocoder: WORLD, Griffin-Lim, 8-bit μ-law.

Every anchor is called as ``anchor(x, sample_rate)`` with a 1-D float waveform and returns a
float32 waveform of the same length.
"""

from __future__ import annotations

import numpy as np

from vocoder.dsp import mulaw_decode, mulaw_encode
from vocoder.evaluation._metrics import quiet_import


def world_resynthesis(x: np.ndarray, sample_rate: int = 16000, frame_period_ms: float = 5.0) -> np.ndarray:
    """WORLD analysis (harvest, CheapTrick, D4C) and synthesis of ``x``."""
    pyworld = quiet_import("pyworld")
    wave = np.ascontiguousarray(x, dtype=np.float64)
    f0, times = pyworld.harvest(wave, sample_rate, f0_floor=60.0, f0_ceil=500.0, frame_period=frame_period_ms)
    envelope = pyworld.cheaptrick(wave, f0, times, sample_rate)
    aperiodicity = pyworld.d4c(wave, f0, times, sample_rate)
    out = pyworld.synthesize(f0, envelope, aperiodicity, sample_rate, frame_period_ms)
    # WORLD's length follows its frame grid; the scores compare sample-aligned signals
    out = np.pad(out, (0, max(0, len(x) - len(out))))
    return out[: len(x)].astype(np.float32)


def griffin_lim_from_mel(x: np.ndarray, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 160,
                         win_length: int = 640, n_mels: int = 80, fmin: float = 0.0,
                         fmax: float | None = None, n_iter: int = 32) -> np.ndarray:
    """Griffin-Lim reconstruction from the mel magnitude spectrogram (the log-mel's information).

    ``fmax=None`` is the Nyquist frequency. The initial phases are drawn from a fixed seed, so the
    anchor (and its scores) are the same on every run.
    """
    import librosa

    fmax = sample_rate / 2 if fmax is None else fmax
    mel = librosa.feature.melspectrogram(y=x.astype(np.float32), sr=sample_rate, n_fft=n_fft,
                                         hop_length=hop_length, win_length=win_length, n_mels=n_mels,
                                         fmin=fmin, fmax=fmax, power=1.0)
    # librosa.feature.inverse.mel_to_audio in two steps, to seed Griffin-Lim's initial phases
    magnitude = librosa.feature.inverse.mel_to_stft(mel, sr=sample_rate, n_fft=n_fft, power=1.0,
                                                    fmin=fmin, fmax=fmax)
    out = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop_length, win_length=win_length,
                             length=len(x), random_state=0)
    return out.astype(np.float32)


def mulaw_8bit(x: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """8-bit μ-law quantization of the natural wave: the ceiling of a μ-law output model.

    ``sample_rate`` is unused (quantization is per sample); it keeps the anchors' common signature.
    """
    return mulaw_decode(mulaw_encode(np.clip(x, -1, 1), 8), 8).astype(np.float32)


ANCHORS = {
    "world": world_resynthesis,
    "griffin_lim": griffin_lim_from_mel,
    "mulaw8": mulaw_8bit,
}
