"""Feature settings shared by preparation, datasets and models (defined once).

The STFT/mel analysis of each sample rate is defined here too (:func:`standard_analysis`): the data
configs take ``hop_length``, ``win_length``, ``n_fft`` and ``fmax`` from it through the
``${vocoder_analysis:KEY,${data.features.sample_rate}}`` resolver, so ``data.features.sample_rate=24000``
alone gives the 24 kHz analysis, and any of the four can still be set explicitly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

#: xiph LPCNet's rate and frame: its 20 features exist for 10 ms frames of a 16 kHz signal.
LPCNET_SAMPLE_RATE = 16000
LPCNET_HOP_LENGTH = 160
#: Rates with a conventional analysis of their own (LJSpeech's 22.05 kHz, LibriTTS's and Vocos's 24 kHz):
#: hop 256, window and FFT of 1024 samples (HiFi-GAN, Parallel WaveGAN, Vocos).
_HOP_256_RATES = (22050, 24000)


def standard_analysis(sample_rate: int) -> dict[str, int | float]:
    """The STFT/mel analysis this project uses at ``sample_rate`` (the data configs' defaults).

    * 16 kHz: LPCNet's 10 ms frames — hop 160, window 640, FFT 1024, mel up to 8 kHz;
    * 22.05 and 24 kHz: hop 256, window 1024, FFT 1024, mel up to the Nyquist frequency;
    * any other rate: 10 ms frames — hop ``round(rate / 100)``, window 4 hops, the FFT the next
      power of two (at least 1024), mel up to the Nyquist frequency.

    Args:
        sample_rate: in Hz (> 0).

    Returns:
        ``{"hop_length", "win_length", "n_fft"}`` (int) and ``"fmax"`` (float, Hz).
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    if sample_rate == LPCNET_SAMPLE_RATE:
        return {"hop_length": LPCNET_HOP_LENGTH, "win_length": 640, "n_fft": 1024, "fmax": 8000.0}
    if sample_rate in _HOP_256_RATES:
        return {"hop_length": 256, "win_length": 1024, "n_fft": 1024, "fmax": sample_rate / 2.0}
    hop = max(1, round(sample_rate / 100))
    window = 4 * hop
    return {
        "hop_length": hop,
        "win_length": window,
        "n_fft": max(1024, 1 << (window - 1).bit_length()),
        "fmax": sample_rate / 2.0,
    }


@dataclass(frozen=True)
class FeatureSettings:
    """Audio and feature parameters of a prepared corpus.

    The log-mel is analysed at ``sample_rate`` with ``hop_length``. LPCNet's 20 features are defined
    for 10 ms frames at 16 kHz: they exist in a cache whose frames are 10 ms long
    (:attr:`lpcnet_frames`: ``hop_length · 100 == sample_rate``; at another rate than 16 kHz they are
    computed on a 16 kHz copy), frame-aligned with the log-mel. An utterance of ``N`` samples is
    trimmed to ``T = N // hop_length`` frames and ``T · hop_length`` samples; frame ``k`` describes
    samples ``[k·hop, (k+1)·hop)``.
    """

    sample_rate: int = 16000
    hop_length: int = 160
    n_fft: int = 1024
    win_length: int = 640
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    mel_floor: float = 1e-5
    preemphasis: float = 0.85
    lpc_order: int = 16
    mulaw_bits: int = 8
    pitch_correlation: str = "xiph"

    @property
    def lpcnet_frames(self) -> bool:
        """Whether the frames are 10 ms long, so that LPCNet's features exist for them."""
        return self.hop_length * 100 == self.sample_rate

    @property
    def lpcnet_native(self) -> bool:
        """Whether these are LPCNet's own settings: 16 kHz audio in 10 ms frames of 160 samples."""
        return self.sample_rate == LPCNET_SAMPLE_RATE and self.hop_length == LPCNET_HOP_LENGTH

    def fingerprint(self) -> str:
        """A short hash of every setting and of the feature definition's version: a cache entry made
        with other settings, or by code that defined the features differently, is stale."""
        from vocoder.dsp import FEATURES_VERSION

        described = {**asdict(self), "lpcnet_features_version": FEATURES_VERSION}
        if described["pitch_correlation"] == "xiph":  # the default keeps the caches made before the setting
            del described["pitch_correlation"]
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
