"""Density distillation KL, the frozen teacher in a distillation step, and the spectral losses."""

import math

import librosa
import numpy as np
import pytest
import torch
from scipy import integrate, stats

from vocoder.losses import (
    DistillationKL,
    FrameMagnitudeLoss,
    PowerLoss,
    STFTLoss,
    distillation_kl,
    frame_magnitude_loss,
    log_magnitude_distance,
    logistic_entropy,
    power_loss,
    sample_logistic,
    spectral_convergence,
    stft_loss,
    stft_magnitude,
    student_teacher_cross_entropy,
)
from vocoder.models import IAFStudent, WaveNetTeacher, freeze

DT = torch.float64


def _logistic_params(mu: float, s: float, n: int) -> torch.Tensor:
    """Single-component (K = 1) teacher parameters, (1, 3, n)."""
    return torch.tensor([0.0, mu, math.log(s)], dtype=DT).view(1, 3, 1).expand(1, 3, n)


def _logistic_logpdf(mu: float, s: float):
    def logpdf(x: float) -> float:
        u = -abs(x - mu) / s  # the density is symmetric: evaluate on the side where exp(u) ≤ 1
        return u - math.log(s) - 2.0 * math.log1p(math.exp(u))

    return logpdf


def _numerical_kl(mu_s: float, s_s: float, teacher_logpdf) -> float:
    """∫ p_S (log p_S - log p_T) by adaptive quadrature over ±40 student scales (tail mass e^-40)."""
    student_logpdf = _logistic_logpdf(mu_s, s_s)

    def integrand(x: float) -> float:
        log_p = student_logpdf(x)
        return math.exp(log_p) * (log_p - teacher_logpdf(x))

    return integrate.quad(integrand, mu_s - 40 * s_s, mu_s + 40 * s_s, limit=500, epsabs=1e-12, epsrel=1e-10)[
        0
    ]


def _binned_logpdf(mu: float, s: float, bits: int):
    """log[(F(x + h) - F(x - h)) / 2h] for a Logistic(mu, s) teacher, via survival functions in the upper
    half so that the difference of two CDFs near one does not cancel."""
    half = 1.0 / (2**bits - 1)

    def logpdf(x: float) -> float:
        if x > mu:
            p = stats.logistic.sf(x - half, mu, s) - stats.logistic.sf(x + half, mu, s)
        else:
            p = stats.logistic.cdf(x + half, mu, s) - stats.logistic.cdf(x - half, mu, s)
        return math.log(p / (2 * half))

    return logpdf


CASES = [
    (0.0, 0.1, 0.0, 0.1),  # identical: KL = 0
    (0.1, 0.05, -0.05, 0.2),  # teacher wider
    (0.0, 0.3, 0.2, 0.02),  # teacher much narrower: large KL
]


@pytest.mark.parametrize("mu_s,s_s,mu_t,s_t", CASES)
@pytest.mark.parametrize(
    "density,bits,num_samples",
    [("continuous", 16, 1), ("continuous", 16, 4), ("discretized", 16, 1), ("discretized", 5, 1)],
)
def test_kl_estimator_matches_numerical_integration(
    mu_s: float, s_s: float, mu_t: float, s_t: float, density: str, bits: int, num_samples: int
) -> None:
    """Monte-Carlo KL(Logistic ‖ Logistic) vs quadrature.

    Tolerance: the estimator is a mean of 60,000 i.i.d. per-step terms, so it is unbiased with standard
    error σ/√n (σ the sample standard deviation of the terms); 5 standard errors fail by chance with
    probability < 1e-6, plus 1e-9 for the quadrature. At 5 bits the teacher's bin (0.065) is comparable
    to its scale, so the discretized density is tested against its own box-smoothed reference.
    """
    n = 60_000
    generator = torch.Generator().manual_seed(11)
    z = sample_logistic([1, n], DT, None, generator)
    mu = torch.full((1, n), mu_s, dtype=DT)
    log_s = torch.full((1, n), math.log(s_s), dtype=DT)
    x = mu + s_s * z
    params = _logistic_params(mu_t, s_t, n)
    terms = distillation_kl(
        mu,
        log_s,
        x,
        params,
        teacher_density=density,
        bits=bits,
        num_samples=num_samples,
        reduction="none",
        generator=generator,
    )
    estimate = terms.mean().item()
    standard_error = terms.std().item() / math.sqrt(n)
    if density == "continuous":
        reference = _numerical_kl(mu_s, s_s, _logistic_logpdf(mu_t, s_t))
    else:
        reference = _numerical_kl(mu_s, s_s, _binned_logpdf(mu_t, s_t, bits))
    assert abs(estimate - reference) <= 5 * standard_error + 1e-9
    if (mu_s, s_s) == (mu_t, s_t) and density == "continuous":
        assert reference == pytest.approx(0.0, abs=1e-9)


def test_kl_terms_against_scipy_log_density_and_entropy() -> None:
    """Per step, each term is exactly -log p_T(x_t) - (log s + 2), checked against scipy's logistic."""
    n = 1000
    z = sample_logistic([1, n], DT, None, torch.Generator().manual_seed(0))
    mu = torch.full((1, n), 0.2, dtype=DT)
    log_s = torch.full((1, n), math.log(0.1), dtype=DT)
    x = mu + 0.1 * z
    terms = distillation_kl(mu, log_s, x, _logistic_params(0.2, 0.1, n), reduction="none")
    expected = -stats.logistic(loc=0.2, scale=0.1).logpdf(x.numpy()) - (math.log(0.1) + 2.0)
    np.testing.assert_allclose(terms.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert logistic_entropy(torch.tensor(math.log(0.1), dtype=DT)).item() == pytest.approx(
        stats.logistic(scale=0.1).entropy(), rel=1e-12
    )


@pytest.mark.parametrize("density", ["continuous", "discretized"])
def test_distillation_gradcheck(density: str) -> None:
    g = torch.Generator().manual_seed(5)
    mu = (torch.randn(1, 4, generator=g, dtype=DT) * 0.1).requires_grad_(True)
    log_s = (torch.randn(1, 4, generator=g, dtype=DT) * 0.3 - 3.0).requires_grad_(True)
    x = (torch.randn(1, 4, generator=g, dtype=DT) * 0.1).requires_grad_(True)
    params = torch.cat(
        [
            torch.randn(1, 2, 4, generator=g, dtype=DT),
            torch.randn(1, 2, 4, generator=g, dtype=DT) * 0.1,
            torch.randn(1, 2, 4, generator=g, dtype=DT) * 0.3 - 3.0,
        ],
        dim=1,
    ).requires_grad_(True)

    def loss(mu, log_s, x, params):
        return distillation_kl(mu, log_s, x, params, teacher_density=density, bits=8)

    assert torch.autograd.gradcheck(loss, (mu, log_s, x, params))
    module = DistillationKL(teacher_density=density, bits=8)
    # exact on any CPU: the module calls the same function with the same tensors (same ops, same order)
    torch.testing.assert_close(module(mu, log_s, x, params), loss(mu, log_s, x, params), rtol=0, atol=0)


def test_cross_entropy_extra_draws_reuse_teacher_parameters() -> None:
    """num_samples > 1 averages the sample's own term with fresh reparameterised draws."""
    mu = torch.zeros(1, 3, dtype=DT)
    log_s = torch.full((1, 3), -2.0, dtype=DT)
    x = torch.tensor([[0.1, -0.2, 0.05]], dtype=DT)
    params = _logistic_params(0.0, 0.2, 3)
    single = student_teacher_cross_entropy(mu, log_s, x, params)
    generator = torch.Generator().manual_seed(3)
    double = student_teacher_cross_entropy(mu, log_s, x, params, num_samples=2, generator=generator)
    draw = mu + math.exp(-2.0) * sample_logistic([1, 3], DT, None, torch.Generator().manual_seed(3))
    other = -torch.from_numpy(stats.logistic(loc=0.0, scale=0.2).logpdf(draw.numpy()))
    torch.testing.assert_close(double, (single + other) / 2, rtol=1e-12, atol=1e-12)


def _tiny_teacher() -> WaveNetTeacher:
    return WaveNetTeacher(
        n_mels=4,
        hop_length=8,
        layers=4,
        dilation_cycle=2,
        kernel_size=2,
        residual_channels=6,
        gate_channels=8,
        skip_channels=6,
        mixture_components=2,
    )


def _tiny_student() -> IAFStudent:
    student = IAFStudent(
        n_mels=4, hop_length=8, flow_layers=[2, 2], dilation_cycle=2, residual_channels=6, gate_channels=8
    )
    with torch.no_grad():  # leave the identity start so that every layer receives gradient at step 0
        for flow in student.flows:
            for net in flow.nets:
                net.output.weight.normal_(0.0, 0.05)
    return student


def test_frozen_teacher_stays_bit_identical_while_student_learns() -> None:
    teacher = freeze(_tiny_teacher())
    snapshot = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = _tiny_student()
    initial = {k: v.clone() for k, v in student.state_dict().items()}
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    mel = torch.randn(2, 4, 5)
    losses = []
    for step in range(4):
        optimizer.zero_grad()
        z = student.sample_noise(mel, seed=step)
        x, mu, log_s = student(z, mel)
        params = teacher.mixture_params(x, mel)
        loss = distillation_kl(mu, log_s, x, params)
        loss.backward()
        losses.append(loss.item())
        grads = [p.grad for p in student.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(int(torch.count_nonzero(g)) > 0 for g in grads) == len(grads)
        assert all(p.grad is None for p in teacher.parameters())
        optimizer.step()
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    for k, v in teacher.state_dict().items():  # exact: a frozen teacher is never written to
        assert torch.equal(v, snapshot[k]), k
    assert any(not torch.equal(v, initial[k]) for k, v in student.state_dict().items())
    assert len(set(losses)) == len(losses)


def test_gradient_reaches_student_through_the_teacher_input() -> None:
    """The teacher's parameters depend on the student's sample: that path must carry gradient."""
    teacher = freeze(_tiny_teacher())
    student = _tiny_student()
    mel = torch.randn(1, 4, 4)
    z = student.sample_noise(mel, seed=0)
    x, mu, log_s = student(z, mel)
    through = torch.autograd.grad(distillation_kl(mu, log_s, x, teacher.mixture_params(x, mel)), x)[0]
    detached = torch.autograd.grad(distillation_kl(mu, log_s, x, teacher.mixture_params(x.detach(), mel)), x)[
        0
    ]
    assert (through - detached).abs().max() > 1e-6


# ----------------------------------------------------------------------------- spectral losses


def _numpy_power(x: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    spec = librosa.stft(
        x, n_fft=n_fft, hop_length=hop, win_length=win, window="hann", center=True, pad_mode="constant"
    )
    return np.abs(spec) ** 2


@pytest.mark.parametrize("time_average", [True, False])
def test_power_loss_against_librosa(time_average: bool) -> None:
    rng = np.random.default_rng(0)
    target = rng.standard_normal((2, 3000)) * 0.1
    prediction = target + rng.standard_normal((2, 3000)) * 0.05
    got = power_loss(
        torch.from_numpy(prediction),
        torch.from_numpy(target),
        n_fft=512,
        hop_length=128,
        win_length=400,
        time_average=time_average,
    ).item()
    p_hat = _numpy_power(prediction, 512, 128, 400)
    p = _numpy_power(target, 512, 128, 400)
    if time_average:
        p_hat, p = p_hat.mean(-1), p.mean(-1)
    assert got == pytest.approx(np.mean((p_hat - p) ** 2), rel=1e-9)
    module = PowerLoss(n_fft=512, hop_length=128, win_length=400, time_average=time_average)
    assert module(torch.from_numpy(prediction), torch.from_numpy(target)).item() == pytest.approx(
        got, rel=1e-12
    )


def test_stft_loss_closed_forms() -> None:
    """For ŷ = 2y: spectral convergence is 1 and the log-magnitude distance is log 2 at every resolution."""
    y = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 4000)) * 0.1)
    convergence, log_magnitude = stft_loss(2 * y, y)
    assert convergence.item() == pytest.approx(1.0, abs=1e-12)
    assert log_magnitude.item() == pytest.approx(math.log(2.0), abs=1e-12)
    zero_sc, zero_mag = STFTLoss(resolutions=[(256, 64, 256)])(y, y)
    assert zero_sc.item() == 0.0 and zero_mag.item() == 0.0
    assert power_loss(y, y).item() == 0.0


@pytest.mark.parametrize("silent_prediction", [True, False])
def test_spectral_losses_have_finite_gradients_on_silence(silent_prediction: bool) -> None:
    """Exact digital silence (zero STFT bins) must not produce NaN gradients."""
    target = torch.zeros(1, 2048)
    target[:, 1000:1200] = torch.randn(1, 200) * 0.1
    prediction = torch.zeros(1, 2048)
    if not silent_prediction:
        prediction[:, 1024:] = torch.randn(1, 1024) * 0.01
    prediction.requires_grad_(True)
    convergence, log_magnitude = STFTLoss()(prediction, target)
    (convergence + log_magnitude + PowerLoss()(prediction, target)).backward()
    assert torch.isfinite(prediction.grad).all()
    if not silent_prediction:
        assert prediction.grad[:, 1024:].abs().max() > 0


def test_log_magnitude_floor_against_hand_computation() -> None:
    """log max(|Y|, floor): bins below the floor count at the floor and get no gradient."""
    prediction = torch.tensor([[[1e-5, 0.5, 2e-3]]], dtype=DT, requires_grad=True)
    target = torch.tensor([[[1e-1, 1e-6, 1e-3]]], dtype=DT)
    floor = 1e-3
    got = log_magnitude_distance(prediction, target, floor)
    by_hand = (
        abs(math.log(1e-3) - math.log(1e-1))
        + abs(math.log(0.5) - math.log(1e-3))
        + abs(math.log(2e-3) - math.log(1e-3))
    ) / 3
    assert got.item() == pytest.approx(by_hand, rel=1e-12)
    got.backward()
    # d/dp |log p - log t| = sign / p / 3 above the floor, 0 below it
    torch.testing.assert_close(
        prediction.grad[0, 0], torch.tensor([0.0, 1 / 0.5 / 3, 1 / 2e-3 / 3], dtype=DT)
    )
    # the old default (float eps) hands almost all of the gradient to the quiet bin
    eps_gradient = torch.autograd.grad(log_magnitude_distance(prediction, target), prediction)[0][0, 0]
    assert eps_gradient[0].abs() / eps_gradient.abs().sum() > 0.99
    with pytest.raises(ValueError, match="floor must be > 0"):
        STFTLoss(floor=0.0)


def test_spectral_convergence_batch_and_utterance_against_hand_computation() -> None:
    """Batch SC: one ratio of norms over the batch (Parallel WaveGAN); utterance SC: mean of ratios."""
    target = torch.tensor([[[3.0, 4.0]], [[0.03, 0.04]]], dtype=DT)  # a loud and a quiet crop (‖·‖ 5, 0.05)
    prediction = torch.tensor([[[3.0, 4.0]], [[0.0, 0.0]]], dtype=DT)  # the quiet one entirely missing
    batch = spectral_convergence(prediction, target, "batch")
    assert batch.item() == pytest.approx(0.05 / math.sqrt(25 + 0.0025), rel=1e-12)
    utterance = spectral_convergence(prediction, target, "utterance")
    assert utterance.item() == pytest.approx((0.0 + 1.0) / 2, rel=1e-12)
    y = torch.from_numpy(np.random.default_rng(2).standard_normal((3, 3000)) * 0.1)
    y_hat = y * torch.tensor([[2.0], [1.0], [0.5]], dtype=DT)
    for reduction in ("batch", "utterance"):
        got, _ = stft_loss(y_hat, y, resolutions=[(256, 64, 256)], convergence=reduction)
        magnitudes = stft_magnitude(y_hat, 256, 64, 256), stft_magnitude(y, 256, 64, 256)
        assert got.item() == pytest.approx(spectral_convergence(*magnitudes, reduction).item(), rel=1e-12)
    with pytest.raises(ValueError, match="convergence must be one of"):
        STFTLoss(convergence="frame")


def test_frame_magnitude_loss_against_librosa() -> None:
    rng = np.random.default_rng(3)
    target = rng.standard_normal((2, 3000)) * 0.1
    prediction = target + rng.standard_normal((2, 3000)) * 0.05
    got = frame_magnitude_loss(
        torch.from_numpy(prediction), torch.from_numpy(target), n_fft=512, hop_length=128, win_length=400
    ).item()
    expected = np.mean(
        (np.sqrt(_numpy_power(prediction, 512, 128, 400)) - np.sqrt(_numpy_power(target, 512, 128, 400))) ** 2
    )
    assert got == pytest.approx(expected, rel=1e-9)
    module = FrameMagnitudeLoss(n_fft=512, hop_length=128, win_length=400)
    assert module(torch.from_numpy(prediction), torch.from_numpy(target)).item() == pytest.approx(
        got, rel=1e-12
    )
