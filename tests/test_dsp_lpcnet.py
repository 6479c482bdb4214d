"""LPCNet feature extraction: Levinson-Durbin, LPC prediction, Bark cepstrum, LPC from cepstrum, pitch.

References are independent: scipy's Toeplitz solver, brute-force sample loops, a literal per-frame
transcription of xiph/LPCNet's C (freq.c / lpcnet_enc.c) and pyworld's Harvest on real speech.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import soundfile as sf

from vocoder.dsp import (
    bark_cepstrum,
    levinson_durbin,
    lpc_from_cepstrum,
    lpc_predict,
    lpcnet_features,
    period_from_feature,
    pitch_track,
    preemphasis,
    xiph_pitch_correlation,
)
from vocoder.dsp._bark import analysis_window, band_compensation, log_band_energies

# xiph/LPCNet freq.c, 16 kHz, 18 bands.
XIPH_EBAND5MS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 34, 40]
XIPH_COMPENSATION = [0.8, 1, 1, 1, 1, 1, 1, 1, 0.666667, 0.5, 0.5, 0.5, 0.333333, 0.25, 0.25, 0.2, 0.166667,
                     0.173913]
# The same table at full precision (xiph prints 6 digits of 2/3, 1/3, 1/6, 4/23), for transcriptions
# compared at 1e-9.
EXACT_COMPENSATION = [0.8, 1, 1, 1, 1, 1, 1, 1, 2 / 3, 0.5, 0.5, 0.5, 1 / 3, 0.25, 0.25, 0.2, 1 / 6, 4 / 23]


def _read(path) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float64")
    assert rate == 16000
    return audio


def _utterances(root, count: int) -> list[np.ndarray]:
    return [_read(p) for p in sorted((root / "wav").glob("*.wav"))[:count]]


# ----------------------------------------------------------------------------- Levinson-Durbin


def _random_autocorr(rng: np.random.Generator, batch: tuple[int, ...], order: int) -> np.ndarray:
    """Biased autocorrelation estimates of coloured noise (positive definite), ``batch + (order + 1,)``."""
    noise = rng.standard_normal(batch + (400,))
    coloured = noise + 0.9 * np.roll(noise, 1, axis=-1) - 0.5 * np.roll(noise, 2, axis=-1)
    full = np.fft.irfft(np.abs(np.fft.rfft(coloured, n=1024, axis=-1)) ** 2, n=1024, axis=-1)
    return full[..., :order + 1] / 400.0


@pytest.mark.parametrize("order", [1, 2, 5, 16, 24])
def test_levinson_matches_toeplitz_solve(order):
    rng = np.random.default_rng(order)
    autocorr = _random_autocorr(rng, (3, 4), order)
    lpc, error = levinson_durbin(autocorr)
    assert lpc.shape == (3, 4, order) and error.shape == (3, 4)
    assert lpc.dtype == np.float64
    for index in np.ndindex(3, 4):
        r = autocorr[index]
        expected = scipy.linalg.solve_toeplitz(r[:order], -r[1:order + 1])
        np.testing.assert_allclose(lpc[index], expected, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(error[index], r[0] + expected @ r[1:order + 1], rtol=1e-9)


def test_levinson_order_argument_and_float32():
    rng = np.random.default_rng(1)
    autocorr = _random_autocorr(rng, (5,), 20)
    lpc8, err8 = levinson_durbin(autocorr, order=8)
    ref8, ref_err = levinson_durbin(autocorr[:, :9])
    np.testing.assert_allclose(lpc8, ref8, rtol=1e-12)
    np.testing.assert_allclose(err8, ref_err, rtol=1e-12)
    lpc32, _ = levinson_durbin(autocorr.astype(np.float32), order=8)
    assert lpc32.dtype == np.float32
    np.testing.assert_allclose(lpc32, lpc8, rtol=2e-3, atol=2e-4)
    with pytest.raises(ValueError):
        levinson_durbin(autocorr, order=21)


def test_levinson_degenerate_inputs_are_finite():
    zero_lpc, zero_err = levinson_durbin(np.zeros((2, 17)))
    assert np.all(zero_lpc == 0.0) and np.all(zero_err == 0.0)
    # A pure sinusoid: the Toeplitz matrix is singular from order 3 on.
    lags = np.arange(17)
    sinusoid = np.cos(2 * np.pi * 0.05 * lags)
    lpc, error = levinson_durbin(sinusoid)
    assert np.all(np.isfinite(lpc)) and np.isfinite(error) and error >= 0.0
    # Order-2 predictor of a sinusoid: x[n] = 2 cos(ω) x[n−1] − x[n−2].
    np.testing.assert_allclose(lpc[:2], [-2 * np.cos(2 * np.pi * 0.05), 1.0], atol=1e-6)
    assert np.all(lpc[2:] == 0.0) and error <= 1e-10
    # Mixed batch: a zero frame must not disturb its neighbours.
    batch = np.stack([np.zeros(17), _random_autocorr(np.random.default_rng(2), (), 16)])
    mixed, _ = levinson_durbin(batch)
    np.testing.assert_allclose(mixed[1], levinson_durbin(batch[1])[0], rtol=1e-12)
    assert np.all(mixed[0] == 0.0)


def _xiph_lpc(ac: np.ndarray, p: int) -> np.ndarray:
    """Literal transcription of xiph's ``_lpcnet_lpc`` (float build) with its 30 dB early stop."""
    lpc = [0.0] * p
    error = ac[0]
    if ac[0] != 0:
        for i in range(p):
            rr = sum(lpc[j] * ac[i - j] for j in range(i)) + ac[i + 1]
            r = -rr / error
            lpc[i] = r
            for j in range((i + 1) >> 1):
                tmp1, tmp2 = lpc[j], lpc[i - 1 - j]
                lpc[j] = tmp1 + r * tmp2
                lpc[i - 1 - j] = tmp2 + r * tmp1
            error = error - r * r * error
            if error < 0.001 * ac[0]:
                break
    return np.asarray(lpc)


def test_levinson_early_stop_matches_xiph():
    # Two sinusoids in faint noise: 30 dB of prediction gain is reached within a few orders.
    rng = np.random.default_rng(3)
    n = np.arange(4000)
    signal = np.sin(0.1 * np.pi * n) + 0.5 * np.sin(0.3 * np.pi * n + 1.0) + 1e-3 * rng.standard_normal(4000)
    autocorr = np.array([signal[k:] @ signal[:len(signal) - k] for k in range(17)])
    lpc, error = levinson_durbin(autocorr, min_error_ratio=1e-3)
    expected = _xiph_lpc(autocorr, 16)
    assert np.any(expected == 0.0)  # the early stop did trigger
    np.testing.assert_allclose(lpc, expected, rtol=1e-9, atol=1e-12)
    assert error < 1e-3 * autocorr[0]


# ----------------------------------------------------------------------------- LPC prediction


def _brute_force_predict(signal, lpc, hop, history=None):
    order = lpc.shape[-1]
    past = np.zeros(order) if history is None else np.asarray(history, dtype=np.float64)
    padded = np.concatenate([past, signal])
    out = np.zeros(len(signal))
    for n in range(len(signal)):
        for k in range(1, order + 1):
            out[n] -= lpc[n // hop, k - 1] * padded[order + n - k]
    return out


@pytest.mark.parametrize("length,hop,order", [(1000, 160, 16), (480, 160, 4), (97, 10, 3)])
def test_lpc_predict_matches_brute_force(length, hop, order):
    rng = np.random.default_rng(length)
    signal = rng.standard_normal(length)
    frames = -(-length // hop)
    lpc = 0.3 * rng.standard_normal((frames, order))
    np.testing.assert_allclose(lpc_predict(signal, lpc, hop), _brute_force_predict(signal, lpc, hop),
                               rtol=1e-12, atol=1e-12)
    history = rng.standard_normal(order)
    np.testing.assert_allclose(lpc_predict(signal, lpc, hop, history=history),
                               _brute_force_predict(signal, lpc, hop, history), rtol=1e-12, atol=1e-12)


def test_lpc_predict_batched_and_validation():
    rng = np.random.default_rng(7)
    signal = rng.standard_normal((3, 800))
    lpc = 0.2 * rng.standard_normal((3, 6, 16))  # more frames than needed is fine
    batched = lpc_predict(signal, lpc)
    assert batched.shape == (3, 800) and batched.dtype == np.float64
    for b in range(3):
        np.testing.assert_allclose(batched[b], lpc_predict(signal[b], lpc[b]), rtol=1e-12, atol=1e-12)
    assert lpc_predict(signal.astype(np.float32), lpc.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError):
        lpc_predict(signal[0], lpc[0, :4])  # 4 frames of 160 < 800 samples
    with pytest.raises(ValueError):
        lpc_predict(signal, lpc[0])


def test_lpc_predict_exact_on_ar_process():
    # An AR(2) process with zero initial state is predicted exactly from its past.
    excitation = np.zeros(640)
    excitation[0] = 1.0
    a = np.array([-1.6, 0.8])
    signal = np.zeros(640)
    for n in range(640):
        previous = signal[n - 1] if n >= 1 else 0.0
        before = signal[n - 2] if n >= 2 else 0.0
        signal[n] = excitation[n] - a[0] * previous - a[1] * before
    lpc = np.tile(a, (4, 1))
    residual = signal - lpc_predict(signal, lpc)
    np.testing.assert_allclose(residual, excitation, atol=1e-12)


# ----------------------------------------------------------------------------- Bark cepstrum


def _xiph_frame_bfcc(frame_pcm: np.ndarray) -> np.ndarray:
    """Literal per-frame transcription of xiph's frame_analysis + compute_frame_features (BFCC part)."""
    half = [np.sin(0.5 * np.pi * np.sin(0.5 * np.pi * (i + 0.5) / 160) ** 2) for i in range(160)]
    x = frame_pcm.copy()
    for i in range(160):
        x[i] *= half[i]
        x[319 - i] *= half[i]
    spectrum = np.fft.fft(x) / 320.0  # opus_fft scales by 1/N
    band = [0.0] * 18
    for i in range(17):
        size = (XIPH_EBAND5MS[i + 1] - XIPH_EBAND5MS[i]) * 4
        for j in range(size):
            frac = j / size
            power = abs(spectrum[XIPH_EBAND5MS[i] * 4 + j]) ** 2
            band[i] += (1 - frac) * power
            band[i + 1] += frac * power
    band[0] *= 2
    band[17] *= 2
    log_max, follow, ly = -2.0, -2.0, [0.0] * 18
    for i in range(18):
        ly[i] = np.log10(1e-2 + band[i])
        ly[i] = max(log_max - 8, max(follow - 2.5, ly[i]))
        log_max = max(log_max, ly[i])
        follow = max(follow - 2.5, ly[i])
    out = np.zeros(18)
    for i in range(18):
        out[i] = sum(ly[j] * np.cos((j + 0.5) * i * np.pi / 18) * (np.sqrt(0.5) if i == 0 else 1.0)
                     for j in range(18)) * np.sqrt(2.0 / 18)
    out[0] -= 4
    return out


def _xiph_lpc_from_cepstrum(cepstrum: np.ndarray, order: int = 16) -> np.ndarray:
    """Literal transcription of xiph's lpc_from_cepstrum / lpc_from_bands."""
    tmp = cepstrum.astype(np.float64).copy()
    tmp[0] += 4
    energies = np.zeros(18)
    for i in range(18):
        energies[i] = sum(tmp[j] * np.cos((i + 0.5) * j * np.pi / 18) * (np.sqrt(0.5) if j == 0 else 1.0)
                          for j in range(18)) * np.sqrt(2.0 / 18)
        energies[i] = 10.0 ** energies[i] * EXACT_COMPENSATION[i]
    gains = np.zeros(161)
    for i in range(17):
        size = (XIPH_EBAND5MS[i + 1] - XIPH_EBAND5MS[i]) * 4
        for j in range(size):
            frac = j / size
            gains[XIPH_EBAND5MS[i] * 4 + j] = (1 - frac) * energies[i] + frac * energies[i + 1]
    gains[160] = 0
    full = np.concatenate([gains, gains[159:0:-1]])  # Hermitian (real, even) extension to 320 bins
    n = np.arange(320)
    ac = np.array([np.sum(full * np.cos(2 * np.pi * n * lag / 320)) for lag in range(order + 1)])
    ac[0] += ac[0] * 1e-4 + 320 / 12 / 38.0
    for i in range(1, order + 1):
        ac[i] *= 1 - 6e-5 * i * i
    return _xiph_lpc(ac, order)


def test_band_layout_constants_match_xiph():
    np.testing.assert_allclose(band_compensation(), XIPH_COMPENSATION, atol=1e-6)
    window = analysis_window()
    np.testing.assert_allclose(window[:160] ** 2 + window[160:] ** 2, 1.0, atol=1e-12)  # power complementary
    np.testing.assert_allclose(window, window[::-1], atol=1e-15)


def test_log_band_energies_closed_form_matches_loop():
    rng = np.random.default_rng(11)
    energies = 10.0 ** rng.uniform(-4, 9, size=(200, 18))
    energies[::7, 5:] = 0.0  # deep spectral holes exercise both clamps
    ours = log_band_energies(energies)
    for row, got in zip(energies, ours, strict=True):
        log_max, follow = -2.0, -2.0
        for i in range(18):
            value = max(log_max - 8, max(follow - 2.5, np.log10(1e-2 + row[i])))
            log_max, follow = max(log_max, value), max(follow - 2.5, value)
            assert got[i] == pytest.approx(value, abs=1e-12)


def test_bark_cepstrum_and_lpc_match_xiph_transcription(slt_root):
    audio = _utterances(slt_root, 1)[0]
    cepstra = bark_cepstrum(audio)
    assert cepstra.shape == (len(audio) // 160, 18) and cepstra.dtype == np.float64
    emphasized = np.concatenate([np.zeros(80), preemphasis(audio) * 32768.0, np.zeros(320)])
    for k in (0, 37, 120, 201, len(cepstra) - 1):
        frame = emphasized[160 * k:160 * k + 320]  # samples [160k − 80, 160k + 240) of the signal
        np.testing.assert_allclose(cepstra[k], _xiph_frame_bfcc(frame), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(lpc_from_cepstrum(cepstra[k]), _xiph_lpc_from_cepstrum(cepstra[k]),
                                   rtol=1e-7, atol=1e-9)


def test_lpc_from_cepstrum_shapes():
    rng = np.random.default_rng(5)
    cepstra = rng.normal(0, 1, size=(2, 3, 18))
    cepstra[..., 0] += 10
    lpc = lpc_from_cepstrum(cepstra, order=10)
    assert lpc.shape == (2, 3, 10) and lpc.dtype == np.float64
    assert lpc_from_cepstrum(cepstra.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError):
        lpc_from_cepstrum(cepstra[..., :17])


def _direct_lpc(emphasized: np.ndarray, n_frames: int, order: int = 16) -> np.ndarray:
    """LPC from the autocorrelation of each frame's own 320-sample window (same window and centring)."""
    window = analysis_window()
    padded = np.concatenate([np.zeros(80), emphasized, np.zeros(320)])
    lpc = np.empty((n_frames, order))
    for k in range(n_frames):
        frame = padded[160 * k:160 * k + 320] * window
        ac = np.array([frame[lag:] @ frame[:320 - lag] for lag in range(order + 1)])
        ac[0] = ac[0] * (1 + 1e-4) + 1e-12
        ac[1:] *= 1 - 6e-5 * np.arange(1, order + 1) ** 2
        lpc[k] = levinson_durbin(ac)[0]
    return lpc


def test_lpc_from_cepstrum_prediction_gain(sample_root, slt_root):
    """Prediction gain of the feature LPC on voiced frames of the pre-emphasized real speech.

    Baseline: the best *fixed* first-order predictor s[n] ≈ ρ s[n−1], ρ fitted on the very frames
    scored (pooled lag-1 correlation) — the strongest fixed predictor there is in hindsight, and the
    "s[n−1]·0.9"-style predictor a vocoder without LPC would use. The feature LPC, which sees only the
    18 smoothed band energies, must beat it by a wide margin and stay within 2.5 dB of the LPC of the
    frame's own autocorrelation (misaligning the LPC by one frame costs about 4 dB).
    """
    signal_energy = residual_energy = direct_energy = lag0 = lag1 = 0.0
    for audio in _utterances(sample_root, 3) + _utterances(slt_root, 1):
        features, lpc = lpcnet_features(audio)
        n_frames = len(features)
        emphasized = preemphasis(audio)[:n_frames * 160]
        voiced = features[:, 19] > 0.0  # stored g − 0.5: g > 0.5
        residual = emphasized - lpc_predict(emphasized, lpc.astype(np.float64))
        direct_residual = emphasized - lpc_predict(emphasized, _direct_lpc(emphasized, n_frames))
        previous = np.concatenate([[0.0], emphasized[:-1]])

        def voiced_sum(values, voiced=voiced, n_frames=n_frames):
            return float(values.reshape(n_frames, 160)[voiced].sum())

        signal_energy += voiced_sum(emphasized ** 2)
        residual_energy += voiced_sum(residual ** 2)
        direct_energy += voiced_sum(direct_residual ** 2)
        lag0 += voiced_sum(emphasized ** 2)
        lag1 += voiced_sum(emphasized * previous)
    rho = lag1 / lag0
    gain_db = 10 * np.log10(signal_energy / residual_energy)
    direct_db = 10 * np.log10(signal_energy / direct_energy)
    first_order_db = -10 * np.log10(1 - rho ** 2)
    print(f"\nprediction gain on voiced frames: feature LPC {gain_db:.2f} dB, frame-autocorrelation LPC "
          f"{direct_db:.2f} dB, best fixed first-order (rho={rho:.3f}) {first_order_db:.2f} dB")
    assert gain_db > first_order_db + 4.0
    assert gain_db > direct_db - 2.5


# ----------------------------------------------------------------------------- pitch


def _harmonic(f0: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Several harmonics (1/h amplitudes, random phases) below 4 kHz plus noise 30 dB down."""
    t = np.arange(int(seconds * 16000)) / 16000
    signal = sum(np.cos(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi)) / h
                 for h in range(1, 13) if h * f0 < 4000)
    signal = 0.5 * signal / np.abs(signal).max()
    return signal + 0.5 * 10 ** (-30 / 20) * rng.standard_normal(t.shape) / np.sqrt(2)


@pytest.mark.parametrize("f0", [70.0, 97.3, 140.0, 211.0, 300.0, 400.0])
def test_pitch_on_harmonic_signals(f0):
    rng = np.random.default_rng(int(f0 * 10))
    period, correlation = pitch_track(_harmonic(f0, 1.0, rng))
    assert period.shape == correlation.shape == (100,)
    inner = slice(3, -3)  # frames whose windows and lags lie inside the signal
    estimate = np.median(16000.0 / period[inner])
    assert abs(estimate - f0) / f0 < 0.01
    assert np.median(correlation[inner]) > 0.9
    assert np.all(np.abs(16000.0 / period[inner] - f0) / f0 < 0.05)


def test_pitch_on_white_noise_is_unvoiced():
    noise = 0.1 * np.random.default_rng(0).standard_normal(32000)
    period, correlation = pitch_track(noise)
    assert np.median(correlation) < 0.35
    assert np.quantile(correlation, 0.9) < 0.45
    assert np.all((period >= 32) & (period <= 256))


def test_pitch_validation():
    with pytest.raises(ValueError):
        pitch_track(np.zeros(16000), sample_rate=22050)
    period, correlation = pitch_track(np.zeros(100))
    assert period.shape == correlation.shape == (0,)


def test_pitch_gross_error_against_harvest(sample_root, slt_root):
    """Gross pitch error vs pyworld Harvest: relative error > 20 % on frames both call voiced.

    Our frame k is centred on sample 160k + 80, halfway between Harvest's frames k and k + 1
    (frame_period 10 ms, frame i at 160i); the reference is their geometric mean, voiced where both
    are. Harvest runs with the tracker's 62.5–500 Hz range (floor 60 Hz).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyworld
    both = gross = 0
    for audio in _utterances(sample_root, 6) + _utterances(slt_root, 1):
        f0, _ = pyworld.harvest(audio, 16000, f0_floor=60.0, f0_ceil=500.0, frame_period=10.0)
        period, correlation = pitch_track(audio)
        n = len(period)
        assert len(f0) >= n + 1
        reference_voiced = (f0[:n] > 0) & (f0[1:n + 1] > 0)
        reference = np.sqrt(f0[:n] * f0[1:n + 1])
        voiced = reference_voiced & (correlation > 0.5)
        relative = np.abs(16000.0 / period[voiced] - reference[voiced]) / reference[voiced]
        both += int(voiced.sum())
        gross += int((relative > 0.2).sum())
    gpe = gross / both
    print(f"\nGPE vs Harvest: {100 * gpe:.2f} % ({gross}/{both} frames voiced in both)")
    assert both > 1000
    assert gpe <= 0.10


# ----------------------------------------------------------------------------- lpcnet_features


@pytest.mark.parametrize("length", [0, 159, 160, 16037])
def test_lpcnet_features_shapes(length):
    rng = np.random.default_rng(length)
    audio = 0.1 * rng.standard_normal(length)
    features, lpc = lpcnet_features(audio, lpc_order=12)
    frames = length // 160
    assert features.shape == (frames, 20) and features.dtype == np.float32
    assert lpc.shape == (frames, 12) and lpc.dtype == np.float32
    assert np.all(np.isfinite(features)) and np.all(np.isfinite(lpc))


def test_lpcnet_features_consistency(slt_root):
    audio = _utterances(slt_root, 1)[0]
    features, lpc = lpcnet_features(audio)
    # Synthesis recomputes the LPC from the stored features alone.
    np.testing.assert_array_equal(lpc, lpc_from_cepstrum(features[:, :18]))
    np.testing.assert_allclose(features[:, :18], bark_cepstrum(audio), rtol=1e-6, atol=1e-5)
    period, _ = pitch_track(audio)
    # xiph's storage: (T − 100) / 50 and g − 0.5
    np.testing.assert_allclose(features[:, 18], (period - 100) / 50, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(period_from_feature(features[:, 18]), period, rtol=1e-6)
    assert np.all((features[:, 18] >= (32 - 100) / 50 - 1e-6) & (features[:, 18] <= (256 - 100) / 50 + 1e-6))
    assert np.all(features[:, 19] <= 0.5 + 1e-6)
    assert np.mean(features[:, 19] > 0.0) > 0.3  # real speech is largely voiced (g > 0.5)


@pytest.mark.parametrize("audio", [np.zeros(16000), 1e-9 * np.random.default_rng(0).standard_normal(16000)],
                         ids=["zeros", "near-silence"])
def test_lpcnet_features_silence_is_finite(audio):
    features, lpc = lpcnet_features(audio)
    assert np.all(np.isfinite(features)) and np.all(np.isfinite(lpc))
    np.testing.assert_allclose(features[:, 19], -0.5, atol=1e-3)  # g = 0 stored as −0.5
    # Silence sits at the log floor: every band log10(1e-2) = −2, so c0 = −2·sqrt(18) − 4.
    np.testing.assert_allclose(features[:, 0], -2 * np.sqrt(18) - 4, atol=1e-3)


def test_lpcnet_features_validation():
    with pytest.raises(ValueError):
        lpcnet_features(np.zeros(16000), sample_rate=22050)
    with pytest.raises(ValueError):
        lpcnet_features(np.zeros((2, 16000)))
    with pytest.raises(ValueError):
        lpcnet_features(np.zeros(16000, dtype=np.int16))


def _xiph_correlation_by_hand(pcm, lpc, period, radius=4):
    """Float64 loops over xiph's definition (no vectorization): residual, smoothing, per half-frame
    2xy/(1+xx+yy) maximized over lags ±radius with the 3× interpolation, energy-weighted per
    4-frame superframe."""
    interp = [0.026184, -0.098339, 0.369938, 0.837891, -0.184969, 0.070242, -0.020947]
    n_frames, order = lpc.shape
    r = []
    for n in range(n_frames * 160):
        acc = pcm[n]
        for k in range(1, order + 1):
            if n - k >= 0:
                acc += lpc[n // 160, k - 1] * pcm[n - k]
        r.append(acc)
    x = [r[n] + (0.7 * r[n - 1] if n else 0.0) for n in range(len(r))]

    def xc(h, lag):
        xy = e0 = e1 = 0.0
        for i in range(80):
            a = x[80 * h + i]
            b = x[80 * h + i - lag] if 80 * h + i - lag >= 0 else 0.0
            xy, e0, e1 = xy + a * b, e0 + a * a, e1 + b * b
        return 2 * xy / (1 + e0 + e1), e0

    halves = []
    for h in range(2 * n_frames):
        lag0 = int(min(max(round(period[h // 2]), 32), 256))
        best = -1e30
        for lag in range(lag0 - radius, lag0 + radius + 1):
            values = [xc(h, lag + j)[0] for j in range(-3, 4)]
            v1 = sum(values[j] * interp[j] for j in range(7))
            v2 = sum(values[6 - j] * interp[j] for j in range(7))
            best = max(best, values[3], v1, v2)
        halves.append((best, xc(h, lag0)[1]))
    g = np.zeros(n_frames)
    for first in range(0, n_frames, 4):
        hs = halves[2 * first : 2 * first + 8]
        value = sum(c * w for c, w in hs) / (1e-15 + sum(w for _, w in hs))
        g[first : first + 4] = value
    return g


def test_xiph_pitch_correlation_matches_definition(slt_root):
    audio = _utterances(slt_root, 1)[0][16000:16000 + 12 * 160].astype(np.float64)
    emphasized = preemphasis(audio) * 32768.0
    features, lpc = lpcnet_features(audio)
    period = period_from_feature(features[:, 18].astype(np.float64))
    expected = _xiph_correlation_by_hand(emphasized, lpc.astype(np.float64), period)
    got = xiph_pitch_correlation(emphasized, lpc, period)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert np.ptp(expected) > 0.05  # not a constant: the segment holds voiced and weaker frames
    # stored as g − 0.5 (float32; the stored period is float32 too, so compare loosely)
    np.testing.assert_allclose(features[:, 19], expected - 0.5, atol=1e-3)


def test_xiph_pitch_correlation_of_a_periodic_signal():
    # a pulse train of period 100: the residual repeats exactly, g → 1; white noise: g ≈ 0
    n = 16 * 160
    pulses = np.zeros(n)
    pulses[::100] = 8000.0
    lpc = np.zeros((16, 16))
    g_periodic = xiph_pitch_correlation(pulses, lpc, np.full(16, 100.0))
    assert np.all(g_periodic[4:] > 0.95)
    noise = 3000.0 * np.random.default_rng(0).standard_normal(n)
    g_noise = xiph_pitch_correlation(noise, lpc, np.full(16, 100.0))
    assert np.all(np.abs(g_noise) < 0.45) and abs(g_noise.mean()) < 0.2
    # every frame of a 4-frame superframe shares one value, as in xiph's encoder
    assert np.all(g_noise.reshape(4, 4) == g_noise.reshape(4, 4)[:, :1])
