"""μ-law, pre-/de-emphasis and (log-)mel spectrograms against closed forms and library references."""

import math

import librosa
import numpy as np
import pytest
import scipy.signal
import torch

from vocoder.dsp import (
    DEFAULT_ALPHA,
    deemphasis,
    log_mel_spectrogram,
    mel_filterbank,
    mel_spectrogram,
    mulaw_compress,
    mulaw_decode,
    mulaw_encode,
    mulaw_expand,
    preemphasis,
)

BIT_DEPTHS = [2, 4, 8, 10, 16]


def _uniform(count: int, seed: int = 0, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, count)


# --------------------------------------------------------------------------------------------- μ-law


@pytest.mark.parametrize("bits", BIT_DEPTHS)
@pytest.mark.parametrize("backend", ["numpy", "torch32", "torch64"])
def test_mulaw_decode_encode_within_half_code_step(bits, backend):
    mu = 2**bits - 1
    x = _uniform(50_000, seed=bits)
    # include the ends and zero, where clipping/sign handling could go wrong
    x = np.concatenate([x, [-1.0, 0.0, 1.0]])
    if backend == "numpy":
        x_hat = mulaw_decode(mulaw_encode(x, bits), bits)
    else:
        dtype = torch.float32 if backend == "torch32" else torch.float64
        xt = torch.from_numpy(x).to(dtype)
        x = xt.double().numpy()  # the value actually encoded
        x_hat = mulaw_decode(mulaw_encode(xt, bits).to(dtype), bits).double().numpy()
    # one code step is 2/μ in the companded domain; decoding lands on the code's centre
    error = np.abs(mulaw_compress(x_hat, bits) - mulaw_compress(x, bits))
    slack = 1e-12 if backend != "torch32" else 2e-7
    assert error.max() <= 1.0 / mu + slack
    # and the bound is tight: random inputs reach almost half a step
    assert error.max() > 0.45 / mu


@pytest.mark.parametrize("bits", BIT_DEPTHS)
def test_mulaw_encode_decode_is_identity_on_all_codes(bits):
    codes = np.arange(2**bits, dtype=np.int64)
    np.testing.assert_array_equal(mulaw_encode(mulaw_decode(codes, bits), bits), codes)
    codes_t = torch.from_numpy(codes)
    for dtype in (torch.float32, torch.float64):
        decoded = mulaw_decode(codes_t.to(dtype), bits)
        assert decoded.dtype == dtype
        torch.testing.assert_close(mulaw_encode(decoded, bits), codes_t, rtol=0, atol=0)
    # integer codes decode to the default float dtype (float32)
    assert mulaw_decode(codes_t, bits).dtype == torch.get_default_dtype()


@pytest.mark.parametrize("bits", BIT_DEPTHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mulaw_numpy_and_torch_give_identical_codes(bits, dtype):
    mu = 2**bits - 1
    random = _uniform(200_000, seed=100 + bits)
    # waveform values whose companded value sits exactly on a rounding boundary between codes
    boundaries = mulaw_expand((np.arange(mu) + 0.5) * (2.0 / mu) - 1.0, bits)
    x = np.concatenate([random, boundaries, np.nextafter(boundaries, 2), np.nextafter(boundaries, -2)])
    x = x.astype(dtype)
    codes_np = mulaw_encode(x, bits)
    codes_t = mulaw_encode(torch.from_numpy(x), bits)
    assert codes_np.dtype == np.int64 and codes_t.dtype == torch.int64
    np.testing.assert_array_equal(codes_np, codes_t.numpy())
    # the codes do not depend on the input's float width either (float32 values are exact in float64)
    np.testing.assert_array_equal(codes_np, mulaw_encode(x.astype(np.float64), bits))


@pytest.mark.parametrize("bits", [2, 4, 8, 10, 16])
def test_mulaw_mid_level_is_silence(bits):
    mu = 2**bits - 1
    mid = 2 ** (bits - 1)
    assert int(mulaw_encode(np.zeros(1), bits)[0]) == mid
    assert int(mulaw_encode(torch.zeros(1), bits)[0]) == mid
    # closed form: u = 1/μ ⇒ x = ((1 + μ)^(1/μ) − 1) / μ, the smallest positive reconstruction level
    expected = ((1.0 + mu) ** (1.0 / mu) - 1.0) / mu
    assert mulaw_decode(np.array(mid), bits) == pytest.approx(expected, rel=1e-12)
    # the code below is its mirror image (u = −1/μ): silence lies between the two middle codes
    below = float(mulaw_decode(np.array(mid - 1), bits))
    assert below == pytest.approx(-expected, rel=1e-12)
    if bits >= 8:
        assert float(mulaw_decode(np.array(mid), bits)) < 1e-4


@pytest.mark.parametrize("bits", [4, 8, 16])
def test_mulaw_encode_clips_outside_unit_range(bits):
    mu = 2**bits - 1
    x = np.array([-np.inf, -7.5, -1.0 - 1e-9, -1.0, 1.0, 1.0 + 1e-9, 3.0, np.inf])
    expected = np.array([0, 0, 0, 0, mu, mu, mu, mu])
    np.testing.assert_array_equal(mulaw_encode(x, bits), expected)
    np.testing.assert_array_equal(mulaw_encode(torch.from_numpy(x), bits).numpy(), expected)
    np.testing.assert_array_equal(mulaw_encode(torch.from_numpy(x).float(), bits).numpy(), expected)


def test_mulaw_rejects_bad_bit_depths():
    for bits in (0, 17):
        with pytest.raises(ValueError, match="bit depth"):
            mulaw_encode(np.zeros(3), bits)


@pytest.mark.parametrize("bits", [1, 8, 12, 16])
def test_mulaw_compress_expand_are_exact_inverses(bits):
    mu = 2**bits - 1
    x = np.concatenate([_uniform(10_000, seed=bits), [-1.0, -1e-300, 0.0, 1e-300, 1.0]])
    u = mulaw_compress(x, bits)
    np.testing.assert_allclose(mulaw_expand(u, bits), x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mulaw_compress(mulaw_expand(x, bits), bits), x, rtol=0, atol=1e-12)
    # closed form of the compander, and its fixed points ±1, 0
    closed_form = np.sign(x) * np.log(1 + mu * np.abs(x)) / np.log(1 + mu)
    np.testing.assert_allclose(u, closed_form, rtol=1e-14, atol=1e-15)
    half = math.log(1 + mu / 2) / math.log(1 + mu)
    assert mulaw_compress(np.array(0.5), bits) == pytest.approx(half, rel=1e-15)
    np.testing.assert_array_equal(mulaw_compress(np.array([-1.0, 0.0, 1.0]), bits), [-1.0, 0.0, 1.0])
    xt = torch.from_numpy(x)
    ut = mulaw_compress(xt, bits)
    assert ut.dtype == torch.float64
    torch.testing.assert_close(ut, torch.from_numpy(u), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(mulaw_expand(ut, bits), xt, rtol=0, atol=1e-12)
    torch.testing.assert_close(mulaw_compress(mulaw_expand(xt, bits), bits), xt, rtol=0, atol=1e-12)


def test_mulaw_compress_is_differentiable_with_the_closed_form_slope():
    bits, mu = 8, 255
    x = torch.tensor([-0.7, -0.01, 0.02, 0.5], dtype=torch.float64, requires_grad=True)
    mulaw_compress(x, bits).sum().backward()
    expected = mu / ((1 + mu * x.detach().abs()) * math.log1p(mu))
    torch.testing.assert_close(x.grad, expected, rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------------ emphasis


@pytest.mark.parametrize("alpha", [DEFAULT_ALPHA, 0.97, -0.5])
@pytest.mark.parametrize("initial", [0.0, 0.3])
def test_preemphasis_equals_lfilter(alpha, initial):
    x = np.random.default_rng(1).standard_normal((3, 2, 500))
    # FIR 1 − α z⁻¹ with x[−1] = initial ⇔ direct-form-II-transposed state −α·initial
    zi = np.full((3, 2, 1), -alpha * initial)
    expected, _ = scipy.signal.lfilter([1.0, -alpha], [1.0], x, axis=-1, zi=zi)
    np.testing.assert_allclose(preemphasis(x, alpha, initial), expected, rtol=1e-13, atol=1e-13)
    got_t = preemphasis(torch.from_numpy(x), alpha, initial)
    assert isinstance(got_t, torch.Tensor) and got_t.dtype == torch.float64
    np.testing.assert_allclose(got_t.numpy(), expected, rtol=1e-13, atol=1e-13)


def test_preemphasis_default_alpha_is_lpcnet():
    assert DEFAULT_ALPHA == 0.85
    x = np.array([1.0, 2.0, -1.0])
    np.testing.assert_allclose(preemphasis(x), [1.0, 2.0 - 0.85, -1.0 - 1.7], rtol=1e-15)


@pytest.mark.parametrize("alpha", [DEFAULT_ALPHA, 0.97])
@pytest.mark.parametrize("initial", [0.0, -0.25])
def test_emphasis_pair_are_exact_inverses_numpy(alpha, initial):
    x = np.random.default_rng(2).standard_normal((4, 1000))
    there_and_back = deemphasis(preemphasis(x, alpha, initial), alpha, initial)
    np.testing.assert_allclose(there_and_back, x, rtol=0, atol=1e-12)
    back_and_there = preemphasis(deemphasis(x, alpha, initial), alpha, initial)
    np.testing.assert_allclose(back_and_there, x, rtol=0, atol=1e-12)
    # de-emphasis is the IIR recursion y[n] = x[n] + α y[n−1] with y[−1] = initial
    y = deemphasis(x[0], alpha, initial)
    previous = initial
    for n in range(5):
        assert y[n] == pytest.approx(x[0, n] + alpha * previous, rel=1e-14, abs=1e-14)
        previous = y[n]


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("initial", [0.0, 0.4])
def test_emphasis_pair_are_exact_inverses_torch(dtype, atol, initial):
    x = torch.randn(2, 3, 800, generator=torch.Generator().manual_seed(3), dtype=torch.float64).to(dtype)
    y = preemphasis(x, DEFAULT_ALPHA, initial)
    assert y.shape == x.shape and y.dtype == dtype
    back = deemphasis(y, DEFAULT_ALPHA, initial)
    assert back.shape == x.shape and back.dtype == dtype and back.device == x.device
    torch.testing.assert_close(back, x, rtol=0, atol=atol)
    torch.testing.assert_close(preemphasis(deemphasis(x, DEFAULT_ALPHA, initial), DEFAULT_ALPHA, initial),
                               x, rtol=0, atol=atol)
    # torch and numpy paths agree
    np.testing.assert_allclose(y.double().numpy(), preemphasis(x.double().numpy(), DEFAULT_ALPHA, initial),
                               rtol=0, atol=atol)


def test_emphasis_initial_carries_state_across_chunks():
    x = np.random.default_rng(4).standard_normal(1000)
    whole_pre, whole_de = preemphasis(x), deemphasis(x)
    first, second = x[:377], x[377:]
    # pre-emphasis: the state is the last input sample; de-emphasis: the last output sample
    np.testing.assert_allclose(np.concatenate([preemphasis(first), preemphasis(second, initial=first[-1])]),
                               whole_pre, rtol=0, atol=1e-14)
    de_first = deemphasis(first)
    np.testing.assert_allclose(np.concatenate([de_first, deemphasis(second, initial=de_first[-1])]),
                               whole_de, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------- mel spectrum


def _test_signal(length: int, dtype, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length) / 16000.0
    wave = 0.5 * np.sin(2 * np.pi * 220.0 * t) + 0.2 * np.sin(2 * np.pi * 3100.0 * t)
    return (wave + 0.05 * rng.standard_normal(length)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("power", [1.0, 2.0])
@pytest.mark.parametrize(
    "n_fft,hop_length,win_length,n_mels,fmax",
    [
        (512, 128, None, 40, None),
        (1024, 160, 640, 80, 8000.0),
        (400, 100, 300, 64, 7600.0),
        (256, 64, 255, 32, None),
    ],
)
def test_mel_spectrogram_equals_librosa(dtype, power, n_fft, hop_length, win_length, n_mels, fmax):
    x = np.stack([_test_signal(4001, dtype, seed=5), _test_signal(4001, dtype, seed=6)])  # (B=2, T)
    expected = librosa.feature.melspectrogram(
        y=x, sr=16000, n_fft=n_fft, hop_length=hop_length, win_length=win_length, n_mels=n_mels, fmax=fmax,
        power=power, dtype=dtype,
    )
    got = mel_spectrogram(torch.from_numpy(x), 16000, n_fft, hop_length, win_length, n_mels=n_mels, fmax=fmax,
                          power=power)
    assert got.dtype == torch.from_numpy(x).dtype
    assert tuple(got.shape) == expected.shape == (2, n_mels, 1 + 4001 // hop_length)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    # relative to each bin, with a floor far below the signal for the (near-)empty top bands
    np.testing.assert_allclose(got.numpy(), expected, rtol=rtol, atol=rtol * 1e-6 * expected.max())


def test_mel_magnitude_with_gradient_equals_the_fast_path_and_stays_finite_on_silence():
    # no gradient: |X| from re² + im²; with one: complex abs, whose gradient at |X| = 0 is 0 (a square
    # root's would be infinite and turn the gradient of a half-silent signal into NaN)
    x = torch.from_numpy(_test_signal(3200, np.float64))
    x[:1600] = 0.0
    fast = mel_spectrogram(x, 16000, 512, 160, n_mels=40, power=1.0)
    x.requires_grad_(True)
    with_grad = mel_spectrogram(x, 16000, 512, 160, n_mels=40, power=1.0)
    torch.testing.assert_close(with_grad.detach(), fast, rtol=1e-12, atol=1e-15)
    with_grad.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[1700:].abs().max() > 0


def test_mel_filterbank_is_librosa_in_the_requested_dtype():
    bank = mel_filterbank(22050, 1024, 80, fmin=50.0, fmax=11025.0, dtype=torch.float64)
    expected = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=50.0, fmax=11025.0, dtype=np.float64)
    assert bank.shape == (80, 513) and bank.dtype == torch.float64
    np.testing.assert_allclose(bank.numpy(), expected, rtol=1e-15, atol=0)
    assert mel_filterbank(22050, 1024, 80).dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_mel_of_silence_is_the_dtype_floor(dtype):
    x = torch.zeros(2, 3200, dtype=dtype)
    log_mel = log_mel_spectrogram(x, 16000, 512, 160, 400, n_mels=40)
    assert log_mel.dtype == dtype and log_mel.shape == (2, 40, 21)
    assert torch.isfinite(log_mel).all()
    expected = math.log(torch.finfo(dtype).tiny)  # ≈ −87.3 in float32, ≈ −708.4 in float64
    torch.testing.assert_close(log_mel, torch.full_like(log_mel, expected), rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_mel_honours_an_explicit_floor(dtype):
    silent = log_mel_spectrogram(torch.zeros(1600, dtype=dtype), 16000, 512, 160, n_mels=40, floor=1e-3)
    torch.testing.assert_close(silent, torch.full_like(silent, math.log(1e-3)), rtol=1e-7, atol=0)
    x = torch.from_numpy(_test_signal(3200, np.float64)).to(dtype)
    magnitude = librosa.feature.melspectrogram(y=x.double().numpy(), sr=16000, n_fft=512, hop_length=160,
                                               n_mels=40, power=1.0, dtype=np.float64)
    floor = float(np.median(magnitude))  # half the bins on each side of the floor
    log_mel = log_mel_spectrogram(x, 16000, 512, 160, n_mels=40, floor=floor)
    expected = np.log(np.maximum(magnitude, floor))
    np.testing.assert_allclose(log_mel.double().numpy(), expected, rtol=0,
                               atol=1e-5 if dtype == torch.float32 else 1e-12)
