"""xiph LPCNet's training-data augmentation (``dump_data.c``, v0.1), applied on the fly per segment.

xiph's ``dump_data -train`` makes its training data robust to level and channel: every 2,821 frames
it draws a gain of ``−20 … +19`` dB (1 in 20 times × 0.01, 1 in 100 times silence) and a random
second-order filter ``(1 + b₁z⁻¹ + b₂z⁻²)/(1 + a₁z⁻¹ + a₂z⁻²)`` with ``a, b`` uniform in ±0.375, after
a DC-removing high-pass biquad; the features are then computed from the augmented signal. Here the
same draws are made once per training segment (15 frames; the distribution over the data is the
same), seeded by the segment's crop seed so that data order, crops and augmentation are all
reproducible and resume exactly. The Bark cepstrum and the LPC are recomputed from the augmented
audio; the pitch period and correlation are kept from the cache (a gain leaves them unchanged and
the correlation is measured on the LPC residual, which the recomputed LPC whitens again).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal

#: xiph's DC high-pass biquad (``a_hp``, ``b_hp`` in dump_data.c): zeros at z = 1, poles near it.
HIGHPASS_B = (1.0, -2.0, 1.0)
HIGHPASS_A = (1.0, -1.99599, 0.99600)


@dataclass(frozen=True)
class AugmentSettings:
    """``data.augment``: xiph's level/channel augmentation of LPCNet's training segments.

    Attributes:
        enabled: augment training segments (dev/eval never are).
        gain_db_min, gain_db_max: the gain is ``10^(g/20)`` with ``g`` a whole number of dB drawn
            uniformly in ``[gain_db_min, gain_db_max]`` (xiph: −20 … 19).
        attenuate_probability: chance of a further × 0.01 (xiph: 1/20).
        silence_probability: chance of a zero gain (xiph: 1/100).
        filter_range: the random biquad's coefficients are uniform in ±filter_range (xiph: 0.375).
        highpass: apply xiph's DC high-pass biquad first.
    """

    enabled: bool = False
    gain_db_min: int = -20
    gain_db_max: int = 19
    attenuate_probability: float = 0.05
    silence_probability: float = 0.01
    filter_range: float = 0.375
    highpass: bool = True

    def __post_init__(self) -> None:
        if self.gain_db_min > self.gain_db_max:
            raise ValueError(f"gain_db_min ({self.gain_db_min}) must not exceed gain_db_max ({self.gain_db_max})")
        for name in ("attenuate_probability", "silence_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.filter_range < 1.0:
            raise ValueError(f"filter_range must be in [0, 1), got {self.filter_range}")


@dataclass(frozen=True)
class AugmentDraw:
    """One segment's draw: linear gain and the random biquad's ``(b₁, b₂)``, ``(a₁, a₂)``."""

    gain: float
    b: tuple[float, float]
    a: tuple[float, float]


def draw_augmentation(settings: AugmentSettings, rng: np.random.Generator) -> AugmentDraw:
    """Draw a gain and a filter as xiph's ``dump_data.c`` does."""
    gain_db = int(rng.integers(settings.gain_db_min, settings.gain_db_max + 1))
    gain = 10.0 ** (gain_db / 20.0)
    if rng.random() < settings.attenuate_probability:
        gain *= 0.01
    if rng.random() < settings.silence_probability:
        gain = 0.0
    a1, a2, b1, b2 = (2.0 * rng.random(4) - 1.0) * settings.filter_range
    return AugmentDraw(gain=gain, b=(float(b1), float(b2)), a=(float(a1), float(a2)))


def augment_waveform(x: np.ndarray, draw: AugmentDraw, highpass: bool = True) -> np.ndarray:
    """High-pass (optional), random biquad and gain of a waveform ``(N,)`` → float64 ``(N,)``."""
    y = np.asarray(x, dtype=np.float64)
    if highpass:
        y = scipy.signal.lfilter(HIGHPASS_B, HIGHPASS_A, y)
    y = scipy.signal.lfilter((1.0, *draw.b), (1.0, *draw.a), y)
    return y * draw.gain
