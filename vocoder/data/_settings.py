"""Feature settings shared by preparation, datasets and models (defined once)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FeatureSettings:
    """Audio and feature parameters of a prepared corpus.

    LPCNet features always use 10 ms frames at 16 kHz (``hop_length`` = 160) and a 20 ms
    analysis window; the log-mel uses the same hop so that both feature streams are frame-aligned.
    An utterance of ``N`` samples is trimmed to ``T = N // hop_length`` frames and ``T · hop_length``
    samples; frame ``k`` describes samples ``[k·hop, (k+1)·hop)``.
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

    def fingerprint(self) -> str:
        """A short hash of every setting and of the feature definition's version: a cache entry made
        with other settings, or by code that defined the features differently, is stale."""
        from vocoder.dsp import FEATURES_VERSION

        described = {**asdict(self), "lpcnet_features_version": FEATURES_VERSION}
        if described["pitch_correlation"] == "xiph":  # the default keeps the caches made before the setting
            del described["pitch_correlation"]
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
