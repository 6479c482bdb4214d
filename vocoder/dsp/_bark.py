"""LPCNet's Bark-frequency cepstrum (BFCC) and the LPC it implies, after xiph's reference C code.

Conventions, matched to ``dump_data``/``lpcnet_enc.c`` and ``freq.c`` of xiph/LPCNet at 16 kHz:

* 10 ms frames (160 samples) analysed with a 20 ms (320-sample) power-complementary "Vorbis"
  window ``w[n] = sin(π/2 · sin²(π (n + ½) / 320))``. Frame ``k`` describes samples
  ``[160k, 160k + 160)`` and its window is centred on them, i.e. covers ``[160k − 80, 160k + 240)``
  (zeros outside the signal); xiph reaches the same alignment with its ``TRAINING_OFFSET`` of 80.
* 18 bands on the ``eband5ms`` layout (edges 0, 200, …, 8000 Hz in 200 Hz units), energies summed
  with triangular weights between band centres as in ``compute_band_energy`` (first and last band
  doubled because they only have half a triangle).
* The waveform in ``[-1, 1]`` is scaled to 16-bit PCM units (× 32768) first, so that xiph's
  constants keep their meaning and the features are on the scale LPCNet models are trained on:
  ``log10(1e-2 + E)`` (a floor 5–13 dB above the band energy of 16-bit quantization noise),
  each band clamped to at most 80 dB below the running maximum and to a decay of at most 25 dB
  per band, orthonormal DCT-II, then ``c_0 −= 4``.
* :func:`lpc_from_cepstrum` inverts the chain (``c_0 += 4``, inverse DCT, ``10^x``, per-band
  compensation of the triangular sums, linear interpolation to 161 bins), takes the inverse real
  FFT as an autocorrelation, adds a −40 dB white-noise floor plus 16-bit quantization noise, applies
  the lag window ``1 − 6e-5 · i²`` and runs Levinson-Durbin with xiph's 30 dB early stop.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from vocoder.dsp._emphasis import DEFAULT_ALPHA
from vocoder.dsp._emphasis import preemphasis as _preemphasis
from vocoder.dsp._lpc import levinson_durbin

LPCNET_SAMPLE_RATE = 16000
FRAME_SIZE = 160
WINDOW_SIZE = 320
FREQ_SIZE = WINDOW_SIZE // 2 + 1
NB_BANDS = 18
#: Band edges of xiph's ``eband5ms`` in units of 200 Hz (= 4 FFT bins of 50 Hz at 16 kHz / 320).
EBAND_5MS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 34, 40)
BINS_PER_UNIT = 4
#: Scale from a [-1, 1] waveform to the 16-bit PCM units xiph's constants are expressed in.
PCM_SCALE = 32768.0
#: xiph's log-energy floor, ``log10(1e-2 + E)``, in 16-bit PCM units.
LOG_ENERGY_FLOOR = 1e-2
#: xiph subtracts 4 from ``c_0`` to centre it; :func:`lpc_from_cepstrum` adds it back.
C0_OFFSET = 4.0
LPC_ORDER = 16


def analysis_window(dtype: np.dtype = np.float64) -> np.ndarray:
    """LPCNet's power-complementary 320-sample analysis window ``(320,)``."""
    n = np.arange(WINDOW_SIZE, dtype=np.float64)
    return np.sin(0.5 * np.pi * np.sin(np.pi * (n + 0.5) / WINDOW_SIZE) ** 2).astype(dtype)


def band_interpolation_matrix() -> np.ndarray:
    """Triangular band weights ``(18, 161)``: a bin at fraction ``f`` of band ``i`` gives ``1 − f`` to ``i``.

    Row ``i`` rises linearly from the centre of band ``i − 1`` to that of band ``i`` and falls to the
    centre of band ``i + 1``; the columns sum to 1 below 8 kHz and the Nyquist bin gets 0, as in
    xiph's ``interp_band_gain`` (this matrix, transposed, interpolates band values to bins).
    """
    edges = np.asarray(EBAND_5MS) * BINS_PER_UNIT
    bins = np.arange(edges[-1])
    band = np.searchsorted(edges, bins, side="right") - 1
    frac = (bins - edges[band]) / (edges[band + 1] - edges[band])
    weights = np.zeros((NB_BANDS, FREQ_SIZE))
    weights[band, bins] = 1.0 - frac
    weights[band + 1, bins] += frac
    return weights


def band_energy_matrix() -> np.ndarray:
    """Weights ``(18, 161)`` of xiph's ``compute_band_energy``: the triangles, half-triangle edges doubled."""
    weights = band_interpolation_matrix()
    weights[0] *= 2.0
    weights[-1] *= 2.0
    return weights


def band_compensation() -> np.ndarray:
    """xiph's ``compensation`` table ``(18,)``: ``4 / Σ weights`` turns a band sum into 4 × power per bin."""
    return BINS_PER_UNIT / band_energy_matrix().sum(axis=1)


def _frames(x: np.ndarray, n_frames: int) -> np.ndarray:
    """Windowed analysis frames ``(n_frames, 320)``; frame ``k`` covers ``[160k − 80, 160k + 240)``."""
    half_hop = (WINDOW_SIZE - FRAME_SIZE) // 2
    padded = np.zeros(n_frames * FRAME_SIZE + WINDOW_SIZE, dtype=np.float64)
    usable = min(x.shape[-1], n_frames * FRAME_SIZE + WINDOW_SIZE - FRAME_SIZE - half_hop)
    padded[half_hop:half_hop + usable] = x[:usable]
    view = np.lib.stride_tricks.sliding_window_view(padded, WINDOW_SIZE)[::FRAME_SIZE][:n_frames]
    return view * analysis_window()


def band_energies(x_pcm: np.ndarray, n_frames: int) -> np.ndarray:
    """Band energies ``(n_frames, 18)`` of a pre-emphasized waveform in 16-bit PCM units ``(N,)``.

    The spectrum is scaled like opus' FFT (``1 / 320``), as in xiph's ``forward_transform``.
    """
    spectrum = scipy.fft.rfft(_frames(x_pcm, n_frames), axis=-1) * (1.0 / WINDOW_SIZE)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    return power @ band_energy_matrix().T


def log_band_energies(energies: np.ndarray) -> np.ndarray:
    """xiph's floored, dynamic-range-limited ``log10`` band energies ``(..., 18)``.

    The C loop ``Ly = max(logMax − 8, follow − 2.5, log10(1e-2 + E))``, ``logMax = max(logMax, Ly)``,
    ``follow = max(follow − 2.5, Ly)`` (both starting at −2) is evaluated in closed form with running
    maxima over the bands: the clamped values never exceed the running maximum, so ``logMax`` is the
    running maximum of the raw log energies, and ``follow_i + 2.5 i`` is a running maximum too.
    """
    raw = np.log10(LOG_ENERGY_FLOOR + energies)
    start = np.full(raw.shape[:-1] + (1,), -2.0)
    # log_max[..., i] = max(−2, raw[..., :i])
    log_max = np.maximum.accumulate(np.concatenate([start, raw[..., :-1]], axis=-1), axis=-1)
    decay = 2.5 * np.arange(NB_BANDS + 1)
    # follow[..., i] + 2.5 i = max(−2, max_{j<i} max(raw_j, log_max_j − 8) + 2.5 (j + 1))
    candidates = np.maximum(raw, log_max - 8.0) + decay[1:]
    running = np.maximum.accumulate(np.concatenate([start, candidates], axis=-1), axis=-1)
    follow = running[..., :-1] - decay[:-1]
    return np.maximum(raw, np.maximum(log_max - 8.0, follow - 2.5))


def bark_cepstrum(x: np.ndarray, preemphasis: float = DEFAULT_ALPHA) -> np.ndarray:
    """LPCNet's 18 Bark-frequency cepstral coefficients per 10 ms frame of a 16 kHz waveform.

    Args:
        x: ``(N,)`` waveform in ``[-1, 1]`` at 16 kHz.
        preemphasis: coefficient of the pre-emphasis ``1 − α z⁻¹`` applied first (LPCNet: 0.85);
            0 analyses ``x`` as given (already pre-emphasized).

    Returns:
        ``(N // 160, 18)`` float64 BFCC; frame ``k`` describes samples ``[160k, 160k + 160)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {x.shape}")
    if preemphasis:
        x = _preemphasis(x, preemphasis)
    return _bfcc_from_pcm(x * PCM_SCALE, x.shape[0] // FRAME_SIZE)


def _bfcc_from_pcm(x_pcm: np.ndarray, n_frames: int) -> np.ndarray:
    """BFCC ``(n_frames, 18)`` of a pre-emphasized waveform already in 16-bit PCM units."""
    cepstrum = scipy.fft.dct(log_band_energies(band_energies(x_pcm, n_frames)), type=2, norm="ortho", axis=-1)
    cepstrum[:, 0] -= C0_OFFSET
    return cepstrum


def lpc_from_cepstrum(bfcc: np.ndarray, order: int = LPC_ORDER) -> np.ndarray:
    """LPC coefficients implied by LPCNet's Bark cepstrum, as xiph's ``lpc_from_cepstrum``.

    The result predicts the *pre-emphasized* signal (the one the cepstrum was computed on):
    ``p[n] = −Σ_k a_k s[n − k]``, see :func:`vocoder.dsp.lpc_predict`.

    Args:
        bfcc: ``(..., 18)`` cepstra from :func:`bark_cepstrum` (``c_0`` offset included).
        order: LPC order (LPCNet: 16), at most 159.

    Returns:
        ``(..., order)`` coefficients ``a_1 … a_order`` of ``A(z) = 1 + Σ a_k z^-k``; float32 for a
        float32 input, float64 otherwise.
    """
    bfcc = np.asarray(bfcc)
    if bfcc.shape[-1] != NB_BANDS:
        raise ValueError(f"expected (..., {NB_BANDS}) cepstra, got {bfcc.shape}")
    if not 1 <= order < FREQ_SIZE - 1:
        raise ValueError(f"order must be in [1, {FREQ_SIZE - 2}], got {order}")
    out_dtype = np.float32 if bfcc.dtype == np.float32 else np.float64
    cepstrum = bfcc.astype(np.float64)  # a copy: c_0 is modified below
    cepstrum[..., 0] += C0_OFFSET
    energies = 10.0 ** scipy.fft.idct(cepstrum, type=2, norm="ortho", axis=-1) * band_compensation()
    # Nyquist bin stays 0 as in xiph. One multiply-add per band rather than a matrix product: every
    # frame's sums then run in the same order however many frames come in one call (a BLAS product's
    # order depends on the row count), so a streaming synthesizer that derives a few frames' predictors
    # at a time gets exactly the values of the whole utterance's call.
    interpolation = band_interpolation_matrix()
    power = np.zeros(energies.shape[:-1] + interpolation.shape[1:])
    for band in range(NB_BANDS):
        power += energies[..., band, None] * interpolation[band]
    # xiph's inverse_transform returns the unnormalised inverse DFT, i.e. 320 × irfft.
    autocorr = WINDOW_SIZE * scipy.fft.irfft(power, n=WINDOW_SIZE, axis=-1)[..., :order + 1]
    # −40 dB white-noise floor plus xiph's constant allowance for 16-bit quantization noise
    # (320 / 12 / 38): both keep the recursion well conditioned on spectra with deep valleys.
    autocorr[..., 0] += autocorr[..., 0] * 1e-4 + WINDOW_SIZE / 12.0 / 38.0
    lags = np.arange(1, order + 1)
    autocorr[..., 1:] *= 1.0 - 6e-5 * lags * lags
    lpc, _ = levinson_durbin(autocorr, order, min_error_ratio=1e-3)
    return lpc.astype(out_dtype, copy=False)
