"""LPCNet's conditioning features of a 16 kHz waveform: 18 BFCC, pitch period, pitch correlation, LPC.

The 20 features follow xiph's definition (``dump_data.c`` / ``lpcnet_enc.c``, unquantized):

* columns 0–17: Bark-frequency cepstrum (:mod:`vocoder.dsp._bark`);
* column 18: pitch period as xiph stores it, ``(T − 100) / 50`` (``.01·(T₀ + T₁ − 200)`` over the two
  half-frames), ``T`` in samples (32–256) — :func:`period_from_feature` inverts it;
* column 19: pitch correlation as xiph stores it, ``g − 0.5``, where ``g`` is xiph's statistic: on the
  smoothed LPC residual ``x[n] = r[n] + 0.7·r[n−1]`` (``r`` the pre-emphasized 16-bit-scale signal
  filtered by the frame's ``A(z)``), each 80-sample half-frame ``h`` scores
  ``c_h = 2·Σ x[n]x[n−T] / (1 + Σ x[n]² + Σ x[n−T]²)`` at the tracked period (with xiph's 3× upsampled
  maximum around it), and ``g`` is the energy-weighted mean ``Σ_h w_h c_h / Σ_h w_h``
  (``w_h = Σ x[n]²`` over the half-frame) over the 8 half-frames of each 4-frame (40 ms) superframe,
  so, as in xiph, the 4 frames of a superframe share one correlation.

The period track itself comes from :func:`vocoder.dsp.pitch_track` (a Viterbi tracker whose gross
error against harvest is < 1 %), not from xiph's open-loop search.
"""

from __future__ import annotations

import numba
import numpy as np

from vocoder.dsp._bark import FRAME_SIZE, LPCNET_SAMPLE_RATE, PCM_SCALE, _bfcc_from_pcm, lpc_from_cepstrum
from vocoder.dsp._emphasis import DEFAULT_ALPHA
from vocoder.dsp._emphasis import preemphasis as _preemphasis
from vocoder.dsp._pitch import REDUCTION_FASTMATH, pitch_track

#: Feature layout: columns of ``features`` returned by :func:`lpcnet_features`.
NB_BFCC = 18
PITCH_PERIOD_INDEX = 18
PITCH_CORRELATION_INDEX = 19
NB_FEATURES = 20
#: Pitch-correlation statistics of :func:`lpcnet_features`.
PITCH_CORRELATIONS = ("xiph", "ncc")
#: Version of the feature definition: a cache made with another version is stale.
FEATURES_VERSION = 2
#: xiph's pitch storage: ``f = (T − PERIOD_OFFSET) / PERIOD_SCALE``.
PERIOD_OFFSET = 100.0
PERIOD_SCALE = 50.0
#: xiph stores the correlation minus this value.
CORRELATION_OFFSET = 0.5
_HALF = 80
_SUPERFRAME = 4
# xiph's 3x upsampling filter of the correlation (sinc([-3:3]+1/3)·window, normalized)
_INTERP = np.array([0.026184, -0.098339, 0.369938, 0.837891, -0.184969, 0.070242, -0.020947])


def period_to_feature(period):
    """Pitch period in samples → xiph's stored value ``(T − 100) / 50``."""
    return (period - PERIOD_OFFSET) / PERIOD_SCALE


def period_from_feature(feature):
    """xiph's stored period value → pitch period in samples (``50·f + 100``)."""
    return feature * PERIOD_SCALE + PERIOD_OFFSET


@numba.njit(cache=True, nogil=True, fastmath=set(REDUCTION_FASTMATH))
def _smoothed_residual(x, lpc, frame):  # pragma: no cover - compiled
    """``r[n] + 0.7·r[n−1]`` with ``r[n] = x[n] + Σ_k a_k[f(n)] x[n − k]`` (zero past), as xiph's encoder."""
    n_frames, order = lpc.shape
    out = np.zeros(n_frames * frame)
    previous = 0.0
    for f in range(n_frames):
        for i in range(frame):
            n = f * frame + i
            acc = 0.0
            for k in range(1, min(order, n) + 1):  # samples before the signal are zero
                acc += lpc[f, k - 1] * x[n - k]
            acc += x[n]
            out[n] = acc + 0.7 * previous
            previous = acc
    return out


@numba.njit(cache=True, nogil=True, fastmath=set(REDUCTION_FASTMATH))
def _half_frame_correlation(x, lags, half, radius, interp):  # pragma: no cover - compiled
    """Per half-frame: energy and the 3×-upsampled maximum of xiph's ``2xy/(1+x²+y²)`` near each lag."""
    halves = lags.shape[0]
    taps = interp.shape[0]
    side = taps // 2
    width = 2 * (radius + side) + 1
    energy = np.zeros(halves)
    best = np.zeros(halves)
    xc = np.zeros(width)
    for h in range(halves):
        start = h * half
        e0 = 0.0
        for i in range(half):
            e0 += x[start + i] * x[start + i]
        energy[h] = e0
        first = lags[h] - radius - side
        for j in range(width):
            lag = first + j
            xy = 0.0
            yy = 0.0
            for i in range(max(0, lag - start), half):  # x before the signal is zero
                y = x[start + i - lag]
                xy += x[start + i] * y
                yy += y * y
            xc[j] = 2.0 * xy / (1.0 + e0 + yy)
        peak = -1e30
        for j in range(side, width - side):
            v1 = 0.0
            v2 = 0.0
            for t in range(taps):
                v1 += xc[j - side + t] * interp[t]
                v2 += xc[j + side - t] * interp[t]
            value = max(xc[j], max(v1, v2))
            if value > peak:
                peak = value
        best[h] = peak
    return energy, best


def xiph_pitch_correlation(emphasized_pcm: np.ndarray, lpc: np.ndarray, period: np.ndarray,
                           frame: int = FRAME_SIZE, radius: int = 4) -> np.ndarray:
    """xiph's pitch correlation ``g`` per frame (see the module docstring).

    xiph's Viterbi path picks, per half-frame, the lag that maximizes the correlation within ±4 of
    the previous half-frame's; here the period track is given, and each half-frame takes the
    maximum within ``±radius`` samples of it.

    Args:
        emphasized_pcm: ``(N,)`` pre-emphasized waveform on the 16-bit scale.
        lpc: ``(F, order)`` LPC of each frame (``A(z) = 1 + Σ a_k z⁻ᵏ``).
        period: ``(F,)`` pitch period in samples.
        frame: samples per frame (160).
        radius: lag search radius around the tracked period (samples).

    Returns:
        ``(F,)`` float64 correlation, at most 1 (negative for anti-correlated frames).
    """
    n_frames = lpc.shape[0]
    if n_frames == 0:
        return np.zeros(0)
    smoothed = _smoothed_residual(np.ascontiguousarray(emphasized_pcm[: n_frames * frame], np.float64),
                                  np.ascontiguousarray(lpc, np.float64), frame)
    lags = np.clip(np.round(np.repeat(np.asarray(period, np.float64), 2)).astype(np.int64), 32, 256)
    energy, corr = _half_frame_correlation(smoothed, lags, frame // 2, radius, _INTERP)
    per_super = 2 * _SUPERFRAME
    pad = (-energy.shape[0]) % per_super
    w = np.concatenate([energy, np.zeros(pad)]).reshape(-1, per_super)
    c = np.concatenate([corr, np.zeros(pad)]).reshape(-1, per_super)
    g = (w * c).sum(-1) / (1e-15 + w.sum(-1))
    return np.repeat(g, _SUPERFRAME)[:n_frames]


def lpcnet_features(
    x: np.ndarray,
    sample_rate: int = LPCNET_SAMPLE_RATE,
    preemphasis: float = DEFAULT_ALPHA,
    lpc_order: int = 16,
    pitch_correlation: str = "xiph",
) -> tuple[np.ndarray, np.ndarray]:
    """LPCNet features and LPC coefficients per 10 ms frame.

    The BFCC follow xiph's LPCNet (see :mod:`vocoder.dsp._bark`); the LPC are recomputed from the
    BFCC with :func:`lpc_from_cepstrum`, exactly as a synthesizer that only has the features would,
    and predict the pre-emphasized signal. Pitch comes from :func:`pitch_track` on the waveform
    itself (not pre-emphasized). Frame ``k`` describes samples ``[160k, 160k + 160)``; trailing
    samples that do not fill a frame are ignored.

    Args:
        x: ``(N,)`` float waveform in ``[-1, 1]``.
        sample_rate: must be 16000.
        preemphasis: pre-emphasis coefficient α of ``1 − α z⁻¹`` (LPCNet: 0.85).
        lpc_order: LPC order (LPCNet: 16).
        pitch_correlation: ``xiph`` (:func:`xiph_pitch_correlation`) or ``ncc`` (this project's earlier
            statistic: the tracker's normalized cross-correlation of band-passed speech, which runs
            higher in voiced speech); stored as ``value − 0.5`` either way.

    Returns:
        ``(features, lpc)``: ``features`` ``(N // 160, 20)`` float32 = 18 BFCC, xiph's stored pitch
        period ``(T − 100)/50`` and pitch correlation ``g − 0.5`` (module docstring); ``lpc`` ``(N // 160, lpc_order)`` float32
        coefficients ``a_k`` of ``A(z) = 1 + Σ a_k z^-k`` (see :func:`vocoder.dsp.lpc_predict`).
    """
    if sample_rate != LPCNET_SAMPLE_RATE:
        raise ValueError(f"LPCNet features are defined at {LPCNET_SAMPLE_RATE} Hz, got {sample_rate}")
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected a float waveform in [-1, 1], got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    n_frames = x.shape[0] // FRAME_SIZE
    emphasized = _preemphasis(x, preemphasis) if preemphasis else x
    bfcc = _bfcc_from_pcm(emphasized * PCM_SCALE, n_frames)
    if pitch_correlation not in PITCH_CORRELATIONS:
        raise ValueError(f"pitch_correlation must be one of {PITCH_CORRELATIONS}, got {pitch_correlation!r}")
    period, ncc = pitch_track(x, sample_rate)
    features = np.empty((n_frames, NB_FEATURES), dtype=np.float32)
    features[:, :NB_BFCC] = bfcc
    features[:, PITCH_PERIOD_INDEX] = period_to_feature(period)
    # LPC from the float32 BFCC that are stored, so that synthesis from `features` reproduces `lpc`.
    lpc = lpc_from_cepstrum(features[:, :NB_BFCC], order=lpc_order)
    correlation = (xiph_pitch_correlation(emphasized * PCM_SCALE, lpc, period) if pitch_correlation == "xiph"
                   else ncc)
    features[:, PITCH_CORRELATION_INDEX] = correlation - CORRELATION_OFFSET
    return features, lpc.astype(np.float32, copy=False)
