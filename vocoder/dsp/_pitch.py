"""Pitch period and voicing correlation per 10 ms frame for LPCNet's features (16 kHz).

A compact two-stage RAPT-style tracker (Talkin 1995) with xiph LPCNet's sub-harmonic rule:

1. The waveform is band-passed to 70–2400 Hz: voicing periodicity lives in the low harmonics,
   while rumble below 70 Hz correlates at every short lag and the upper band mostly adds
   aspiration noise. The band-passed signal is decimated to 8 kHz.
2. Coarse normalized cross-correlation (NCC) at 8 kHz of every frame's 20 ms window with the same
   window τ samples earlier, ``Σ a[n] a[n − τ] / sqrt(Σ a[n]² · Σ a[n − τ]²)``, for all lags of
   the 32–256-sample range (16–128 at 8 kHz) and all frames at once with one batch of real FFTs;
   window energies come from one cumulative sum.
3. Octave-error handling on the coarse NCC: a lag whose half (or third) lag correlates nearly as
   well is a period multiple and is attenuated (xiph LPCNet's rule, extended to thirds), plus a
   mild bias toward short lags (RAPT's lag weight).
4. A Viterbi track over all frames with one state per coarse lag plus an "unvoiced" state: a lag
   change costs in proportion to the squared log-period change (capped at a fixed octave-jump
   cost, so the maximisation is a generalized distance transform, linear in the number of lags),
   voicing on/offsets cost a little and the unvoiced state scores a constant threshold. Periods
   stay continuous in voiced stretches without being forced across unvoiced gaps.
5. Refinement at 16 kHz: the NCC of the band-passed full-rate signal around twice the coarse lag,
   its maximum and a parabola through the neighbours give the period with sub-sample precision and
   the correlation at the peak. Unvoiced frames take the period interpolated (in log period) from
   the neighbouring voiced frames and report the NCC at that period, which is low there.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.fft
import scipy.signal

# numba flags that let a float reduction use SIMD lanes (reassociation: the sums' rounding then depends on
# the vector width, ~1e-16 relative) without assuming away NaN or infinity
REDUCTION_FASTMATH = ("reassoc", "contract", "nsz")
PITCH_MIN_PERIOD = 32
PITCH_MAX_PERIOD = 256
_SAMPLE_RATE = 16000
_FRAME = 160
# 20 ms correlation window: one period of a 62.5 Hz voice fits, and pitch glides stay trackable.
_WINDOW = 320
_HIGHPASS_HZ = 70.0
_LOWPASS_HZ = 2400.0
# Coarse stage at 8 kHz: lags 16 … 128 (the 32 … 256 range), one more on each side for the octave
# rule's neighbourhoods.
_DECIMATION = 2
_COARSE_LO = PITCH_MIN_PERIOD // _DECIMATION
_COARSE_HI = PITCH_MAX_PERIOD // _DECIMATION
# Fine stage: NCC at 2τ − 2 … 2τ + 2 (16 kHz) around the coarse lag τ.
_FINE_RADIUS = 2
# Energy of a 20 ms window of 16-bit quantization noise (for a [-1, 1] waveform): regularises the
# NCC denominator so that digital silence correlates 0 instead of amplifying rounding noise.
_ENERGY_FLOOR = _WINDOW / 12.0 / 32768.0**2
# Octave rule: a lag correlating less than _SUBHARMONIC_RATIO × the correlation around its half
# (third) lag is taken for a period multiple and its score is multiplied by _SUBHARMONIC_PENALTY.
_SUBHARMONIC_RATIO = 1.1
_SUBHARMONIC_PENALTY = 0.8
# Score reduction per octave above the shortest lag (RAPT's lag weight, gentler).
_LAG_BIAS = 0.02
# Viterbi, in units of NCC score per frame.
_VOICING_THRESHOLD = 0.5
_TRANSITION_WEIGHT = 20.0  # × (ln τ_j − ln τ_i)²: a 5 % change per 10 ms costs 0.05, 25 % costs 1
_JUMP_COST = 1.5  # cap of the transition cost (octave jumps)
_VOICING_COST = 0.3


# The band-pass's second-order sections, designed once at import (a tuple: a constant, not a cache;
# designing them costs more than filtering a 3 s utterance).
_BANDPASS_SOS = tuple(map(tuple, scipy.signal.butter(2, [_HIGHPASS_HZ, _LOWPASS_HZ], btype="bandpass",
                                                     fs=_SAMPLE_RATE, output="sos")))


def _bandpass(x: np.ndarray) -> np.ndarray:
    """Butterworth band-pass ``(N,)`` → ``(N,)``, 70–2400 Hz at 16 kHz.

    Causal: its group delay of about a millisecond shifts every frame alike and does not matter for
    a correlation-based period estimate.
    """
    return scipy.signal.sosfilt(np.array(_BANDPASS_SOS), x)


def _padded(x: np.ndarray, n_frames: int, frame: int, window: int, max_lag: int) -> tuple[np.ndarray, int]:
    """Zero-padded copy of ``x`` so that each frame's window and all its lagged windows are slices.

    Returns ``(padded, first)``: frame ``k``'s window is ``padded[first + k·frame : … + window]``,
    centred on the middle of the frame.
    """
    first = max_lag
    front = first + window // 2 - frame // 2
    padded = np.zeros(first + n_frames * frame + window, dtype=np.float64)
    usable = min(x.shape[0], padded.shape[0] - front)
    padded[front:front + usable] = x[:usable]
    return padded, first


def _coarse_ncc(x8: np.ndarray, n_frames: int) -> np.ndarray:
    """Coarse NCC ``(n_frames, 115)`` at 8 kHz for lags ``_COARSE_LO − 1 … _COARSE_HI + 1``."""
    frame, window = _FRAME // _DECIMATION, _WINDOW // _DECIMATION
    lag_lo, lag_hi = _COARSE_LO - 1, _COARSE_HI + 1
    padded, first = _padded(x8, n_frames, frame, window, lag_hi)
    span = window + lag_hi  # from the window lagged by lag_hi to the end of the window
    segments = np.lib.stride_tricks.sliding_window_view(padded, span)[first - lag_hi::frame][:n_frames]
    n_fft = scipy.fft.next_fast_len(span, real=True)
    # xcorr[m] = Σ_n current[n] · segment[n + m] with current = segment[lag_hi:]; lag τ ↔ m = lag_hi − τ.
    # n_fft ≥ span, so no circular wrap reaches the lags used.
    current = scipy.fft.rfft(segments[:, lag_hi:], n=n_fft, axis=-1)
    xcorr = scipy.fft.irfft(np.conj(current) * scipy.fft.rfft(segments, n=n_fft, axis=-1), n=n_fft, axis=-1)
    xcorr = xcorr[:, lag_hi - lag_lo::-1]
    cumulative = np.concatenate([[0.0], np.cumsum(padded * padded)])
    starts = first + frame * np.arange(n_frames)
    lagged = starts[:, None] - np.arange(lag_lo, lag_hi + 1)[None, :]
    lagged_energy = np.maximum(cumulative[lagged + window] - cumulative[lagged], 0.0)
    energy = np.maximum(cumulative[starts + window] - cumulative[starts], 0.0)
    floor = _ENERGY_FLOOR / _DECIMATION
    return np.clip(xcorr / np.sqrt((energy[:, None] + floor) * (lagged_energy + floor)), -1.0, 1.0)


@numba.njit(cache=True, nogil=True)
def _octave_scores(ncc, lag_lo, min_lag, max_lag, ratio, penalty, lag_bias):  # pragma: no cover - compiled
    """Viterbi scores ``(T, max_lag − min_lag + 1)`` from the NCC ``(T, ·)`` whose column 0 is ``lag_lo``."""
    n_frames = ncc.shape[0]
    n_lags = max_lag - min_lag + 1
    scores = np.empty((n_frames, n_lags))
    for t in range(n_frames):
        for j in range(n_lags):
            lag = min_lag + j
            value = ncc[t, lag - lag_lo]
            score = value
            if value > 0.0:
                for divisor in (2, 3):
                    sub = lag // divisor  # floor of the (possibly fractional) sub-lag
                    if sub < min_lag:
                        continue
                    near = max(ncc[t, sub - 1 - lag_lo], ncc[t, sub - lag_lo], ncc[t, sub + 1 - lag_lo])
                    if value < ratio * near:
                        score = value * penalty
                        break
            scores[t, j] = score - lag_bias * np.log2(lag / min_lag)
    return scores


@numba.njit(cache=True, nogil=True)
def _viterbi(scores, positions, voicing_threshold, transition_weight, jump_cost,
             voicing_cost):  # pragma: no cover - compiled
    """Best state per frame, ``-1`` = unvoiced, else the lag index, for ``scores`` ``(T, K)``.

    Voiced-to-voiced transitions cost ``min(w · (x_j − x_i)², jump_cost)`` for the state positions
    ``x`` (log lags, increasing). The quadratic part is a max-plus convolution evaluated with the
    lower-envelope-of-parabolas distance transform (Felzenszwalb & Huttenlocher), O(K) per frame.
    """
    n_frames, n_lags = scores.shape
    path = np.empty(n_frames, dtype=np.int64)
    if n_frames == 0:
        return path
    unvoiced = n_lags
    back = np.empty((n_frames, n_lags + 1), dtype=np.int32)
    prev = np.empty(n_lags + 1)
    cur = np.empty(n_lags + 1)
    hull = np.empty(n_lags, dtype=np.int64)
    bounds = np.empty(n_lags + 1)
    for j in range(n_lags):
        prev[j] = scores[0, j]
    prev[unvoiced] = voicing_threshold
    for t in range(1, n_frames):
        best_voiced = 0
        for j in range(1, n_lags):
            if prev[j] > prev[best_voiced]:
                best_voiced = j
        # Lower envelope of the parabolas  −prev[i] + w (x − x_i)², i.e. the smallest cost to arrive.
        k = 0
        hull[0] = 0
        bounds[0] = -np.inf
        bounds[1] = np.inf
        for q in range(1, n_lags):
            # bounds[0] = −inf stops the pop loop at the first parabola.
            while True:
                i = hull[k]
                s = ((-prev[q] + transition_weight * positions[q] ** 2)
                     - (-prev[i] + transition_weight * positions[i] ** 2)) / (
                    2.0 * transition_weight * (positions[q] - positions[i]))
                if s > bounds[k]:
                    break
                k -= 1
            k += 1
            hull[k] = q
            bounds[k] = s
            bounds[k + 1] = np.inf
        k = 0
        jump_score = prev[best_voiced] - jump_cost
        onset_score = prev[unvoiced] - voicing_cost
        for j in range(n_lags):
            while bounds[k + 1] < positions[j]:
                k += 1
            i = hull[k]
            step = positions[j] - positions[i]
            best = prev[i] - transition_weight * step * step
            arg = i
            if jump_score > best:
                best = jump_score
                arg = best_voiced
            if onset_score > best:
                best = onset_score
                arg = unvoiced
            cur[j] = best + scores[t, j]
            back[t, j] = arg
        if prev[best_voiced] - voicing_cost > prev[unvoiced]:
            cur[unvoiced] = prev[best_voiced] - voicing_cost + voicing_threshold
            back[t, unvoiced] = best_voiced
        else:
            cur[unvoiced] = prev[unvoiced] + voicing_threshold
            back[t, unvoiced] = unvoiced
        # Renormalise so that the accumulated scores stay bounded on long inputs.
        top = cur[0]
        for j in range(1, n_lags + 1):
            top = max(top, cur[j])
        for j in range(n_lags + 1):
            prev[j] = cur[j] - top
    state = 0
    for j in range(1, n_lags + 1):
        if prev[j] > prev[state]:
            state = j
    for t in range(n_frames - 1, -1, -1):
        path[t] = -1 if state == unvoiced else state
        state = back[t, state]
    return path


@numba.njit(cache=True, nogil=True, fastmath=set(REDUCTION_FASTMATH))
def _fine_ncc(padded, first, centre_lags, radius, frame, window, energy_floor):  # pragma: no cover - compiled
    """Direct-sum NCC ``(T, 2·radius + 1)`` of frame ``t``'s window at lags ``centre_lags[t] − radius …``."""
    n_frames = centre_lags.shape[0]
    out = np.empty((n_frames, 2 * radius + 1))
    for t in range(n_frames):
        start = first + t * frame
        energy = 0.0
        for n in range(window):
            energy += padded[start + n] * padded[start + n]
        for m in range(2 * radius + 1):
            lagged = start - (centre_lags[t] - radius + m)
            xcorr = 0.0
            lagged_energy = 0.0
            for n in range(window):
                xcorr += padded[start + n] * padded[lagged + n]
                lagged_energy += padded[lagged + n] * padded[lagged + n]
            value = xcorr / np.sqrt((energy + energy_floor) * (lagged_energy + energy_floor))
            out[t, m] = min(1.0, max(-1.0, value))
    return out


def pitch_track(x: np.ndarray, sample_rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """Pitch period (samples) and pitch correlation per 10 ms frame of a 16 kHz waveform.

    Frame ``k`` describes samples ``[160k, 160k + 160)``; its 20 ms analysis window is centred on them.

    Args:
        x: ``(N,)`` waveform in ``[-1, 1]`` (the NCC is scale-invariant above 16-bit silence).
        sample_rate: must be 16000 (periods are counted in 16 kHz samples).

    Returns:
        ``(period, correlation)``, both ``(N // 160,)`` float64: ``period`` in ``[32, 256]`` samples
        (62.5–500 Hz) with sub-sample precision; ``correlation`` in ``[0, 1]``, the normalized
        cross-correlation at that period — near 1 in clean voiced speech, low in unvoiced frames,
        whose period is interpolated from the neighbouring voiced frames.
    """
    if sample_rate != _SAMPLE_RATE:
        raise ValueError(f"pitch_track works at 16 kHz, got sample_rate={sample_rate}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {x.shape}")
    n_frames = x.shape[0] // _FRAME
    if n_frames == 0:
        return np.zeros(0), np.zeros(0)
    filtered = _bandpass(x)
    # Coarse stage at 8 kHz: the band-pass already removed most energy above 4 kHz.
    coarse = _coarse_ncc(filtered[::_DECIMATION], n_frames)
    scores = _octave_scores(coarse, _COARSE_LO - 1, _COARSE_LO, _COARSE_HI, _SUBHARMONIC_RATIO,
                            _SUBHARMONIC_PENALTY, _LAG_BIAS)
    coarse_lags = np.arange(_COARSE_LO, _COARSE_HI + 1)
    path = _viterbi(scores, np.log(coarse_lags.astype(np.float64)), _VOICING_THRESHOLD, _TRANSITION_WEIGHT,
                    _JUMP_COST, _VOICING_COST)
    voiced = path >= 0
    rows = np.arange(n_frames)
    if voiced.any():
        period = (_DECIMATION * coarse_lags[np.maximum(path, 0)]).astype(np.float64)
        # Unvoiced frames: interpolate log period between voiced neighbours (held at the ends).
        period[~voiced] = np.exp(np.interp(rows[~voiced], rows[voiced], np.log(period[voiced])))
    else:
        period = (_DECIMATION * coarse_lags[np.argmax(scores, axis=1)]).astype(np.float64)
    centre = np.clip(np.rint(period).astype(np.int64), PITCH_MIN_PERIOD, PITCH_MAX_PERIOD)
    padded, first = _padded(filtered, n_frames, _FRAME, _WINDOW, PITCH_MAX_PERIOD + _FINE_RADIUS + 1)
    fine = _fine_ncc(padded, first, centre, _FINE_RADIUS, _FRAME, _WINDOW, _ENERGY_FLOOR)
    # Voiced: best integer lag among centre ± 1, then a parabola through it and its neighbours.
    peak = 1 + np.argmax(fine[:, 1:-1], axis=1)
    left, middle, right = fine[rows, peak - 1], fine[rows, peak], fine[rows, peak + 1]
    curvature = left - 2.0 * middle + right
    offset = np.divide(0.5 * (left - right), curvature, out=np.zeros(n_frames), where=curvature < 0.0)
    offset = np.clip(offset, -0.5, 0.5)
    voiced_period = centre + (peak - _FINE_RADIUS) + offset
    voiced_corr = middle - 0.25 * (left - right) * offset
    # Unvoiced: linear interpolation of the NCC at the (fractional) interpolated period.
    position = np.clip(period - centre, -1.0, 1.0) + _FINE_RADIUS
    base = np.minimum(np.floor(position).astype(np.int64), 2 * _FINE_RADIUS - 1)
    frac = position - base
    unvoiced_corr = (1.0 - frac) * fine[rows, base] + frac * fine[rows, base + 1]
    period = np.where(voiced, voiced_period, period)
    correlation = np.where(voiced, voiced_corr, unvoiced_corr)
    return np.clip(period, PITCH_MIN_PERIOD, PITCH_MAX_PERIOD), np.clip(correlation, 0.0, 1.0)
