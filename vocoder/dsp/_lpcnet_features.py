"""LPCNet's conditioning features of a 16 kHz waveform: 18 BFCC, pitch period, pitch correlation, LPC."""

from __future__ import annotations

import numpy as np

from vocoder.dsp._bark import FRAME_SIZE, LPCNET_SAMPLE_RATE, PCM_SCALE, _bfcc_from_pcm, lpc_from_cepstrum
from vocoder.dsp._emphasis import DEFAULT_ALPHA
from vocoder.dsp._emphasis import preemphasis as _preemphasis
from vocoder.dsp._pitch import pitch_track

#: Feature layout: columns of ``features`` returned by :func:`lpcnet_features`.
NB_BFCC = 18
PITCH_PERIOD_INDEX = 18
PITCH_CORRELATION_INDEX = 19
NB_FEATURES = 20


def lpcnet_features(
    x: np.ndarray,
    sample_rate: int = LPCNET_SAMPLE_RATE,
    preemphasis: float = DEFAULT_ALPHA,
    lpc_order: int = 16,
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

    Returns:
        ``(features, lpc)``: ``features`` ``(N // 160, 20)`` float32 = 18 BFCC, pitch period in
        samples (32–256), pitch correlation (0–1); ``lpc`` ``(N // 160, lpc_order)`` float32
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
    period, correlation = pitch_track(x, sample_rate)
    features = np.empty((n_frames, NB_FEATURES), dtype=np.float32)
    features[:, :NB_BFCC] = bfcc
    features[:, PITCH_PERIOD_INDEX] = period
    features[:, PITCH_CORRELATION_INDEX] = correlation
    # LPC from the float32 BFCC that are stored, so that synthesis from `features` reproduces `lpc`.
    lpc = lpc_from_cepstrum(features[:, :NB_BFCC], order=lpc_order)
    return features, lpc.astype(np.float32, copy=False)
