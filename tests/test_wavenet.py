"""WaveNet layers, upsamplers, the teacher, and the discretized mixture-of-logistics likelihood."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from vocoder.layers import (
    CausalConv1d,
    RepeatUpsampler,
    TransposedConvUpsampler,
    WaveNetStack,
    shift_right,
    wavenet_dilations,
)
from vocoder.losses import (
    DiscretizedMixLogisticNLL,
    discretized_mix_logistic_log_pmf,
    discretized_mix_logistic_log_prob,
    discretized_mix_logistic_nll,
    mix_logistic_binned_log_density,
    mix_logistic_log_density,
    quantize_to_levels,
    sample_discretized_mix_logistic,
)
from vocoder.models import WaveNetTeacher

DT = torch.float64


def _randomize(module: torch.nn.Module, std: float = 0.3, seed: int = 0) -> torch.nn.Module:
    """Non-trivial weights everywhere (default inits leave some paths near zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * std)
    return module


def _small_stack(skip: int | None, kernel_size: int, cond_channels: int = 3) -> WaveNetStack:
    stack = WaveNetStack(
        in_channels=1,
        out_channels=4,
        layers=5,
        dilation_cycle=3,
        residual_channels=6,
        gate_channels=8,
        skip_channels=skip,
        cond_channels=cond_channels,
        kernel_size=kernel_size,
    ).to(DT)
    return _randomize(stack)


# ----------------------------------------------------------------------------- layers


def test_dilations_cycle() -> None:
    assert wavenet_dilations(7, 3) == [1, 2, 4, 1, 2, 4, 1]
    assert wavenet_dilations(10, 10)[-1] == 512


@pytest.mark.parametrize("kernel_size,dilation", [(2, 1), (2, 4), (3, 2)])
def test_causal_conv_matches_explicit_sum(kernel_size: int, dilation: int) -> None:
    conv = _randomize(CausalConv1d(2, 3, kernel_size, dilation).to(DT))
    x = torch.randn(1, 2, 20, dtype=DT)
    y = conv(x)
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    xn = x.numpy()[0]
    expected = np.zeros((3, 20))
    for t in range(20):
        expected[:, t] = b
        for j in range(kernel_size):
            lag = (kernel_size - 1 - j) * dilation
            if t - lag >= 0:
                expected[:, t] += w[:, :, j] @ xn[:, t - lag]
    np.testing.assert_allclose(y.detach().numpy()[0], expected, rtol=0, atol=1e-12)


def test_shift_right() -> None:
    x = torch.arange(1.0, 5.0).view(1, 4)
    assert shift_right(x).tolist() == [[0.0, 1.0, 2.0, 3.0]]


@pytest.mark.parametrize("skip", [None, 5])
@pytest.mark.parametrize("kernel_size", [2, 3])
def test_stack_receptive_field_is_exact(skip: int | None, kernel_size: int) -> None:
    """Output t depends on inputs t - rf + 1 … t exactly (gradient support)."""
    stack = _small_stack(skip, kernel_size, cond_channels=0)
    length = stack.receptive_field + 10
    x = torch.randn(1, 1, length, dtype=DT, requires_grad=True)
    t = length - 3
    stack(x)[0, :, t].sum().backward()
    support = torch.nonzero(x.grad[0, 0]).flatten()
    assert support.min().item() == t - stack.receptive_field + 1
    assert support.max().item() == t


@pytest.mark.parametrize("skip", [None, 5])
@pytest.mark.parametrize("kernel_size", [2, 3])
@pytest.mark.parametrize("cond_repeat", [1, 4, 0])
def test_stack_stream_and_step_equal_forward(skip: int | None, kernel_size: int, cond_repeat: int) -> None:
    """Blockwise streaming and one-sample queues reproduce the full convolutional pass."""
    conditioned = cond_repeat > 0
    repeat = max(cond_repeat, 1)
    stack = _small_stack(skip, kernel_size, cond_channels=3 if conditioned else 0)
    length = 48
    x = torch.randn(2, 1, length, dtype=DT)
    cond = torch.randn(2, 3, length // repeat, dtype=DT) if conditioned else None
    reference = stack(x, cond, repeat)
    with torch.no_grad():
        weights = stack.streaming_weights()
        projected = stack.project_conditioning(cond, weights) if cond is not None else None
        history = stack.init_history(2, DT, torch.device("cpu"))
        blocks = []
        for start, stop in [(0, 4), (4, 8), (8, 28), (28, 48)]:
            block_cond = projected[start // repeat : stop // repeat] if projected is not None else None
            blocks.append(
                stack.stream(x[:, :, start:stop].permute(2, 0, 1), block_cond, repeat, history, weights)
            )
        streamed = torch.cat(blocks, dim=0).permute(1, 2, 0)
        queues = stack.init_queues(2, DT, torch.device("cpu"))
        steps = [
            stack.step(
                x[:, :, t], projected[t // repeat] if projected is not None else None, queues, t, weights
            )
            for t in range(length)
        ]
        stepped = torch.stack(steps, dim=2)
    torch.testing.assert_close(streamed, reference, rtol=0, atol=1e-12)
    torch.testing.assert_close(stepped, reference, rtol=0, atol=1e-12)


def test_block_conditioning_repeat_equals_upsampled() -> None:
    """Projecting frames then repeating equals projecting repeated frames (the fast path's premise)."""
    stack = _small_stack(5, 2)
    x = torch.randn(1, 1, 24, dtype=DT)
    frames = torch.randn(1, 3, 6, dtype=DT)
    torch.testing.assert_close(
        stack(x, frames, 4), stack(x, frames.repeat_interleave(4, dim=2), 1), rtol=0, atol=1e-12
    )


# ----------------------------------------------------------------------------- upsamplers


def test_repeat_upsampler_frame_aligned() -> None:
    hop, frames = 5, 7
    up = RepeatUpsampler(hop_length=hop)
    mel = torch.randn(2, 3, frames)
    out = up(mel)
    assert out.shape == (2, 3, frames * hop)
    for n in range(frames * hop):
        assert torch.equal(out[:, :, n], mel[:, :, n // hop])
    low, repeat = up.forward_factored(mel)
    assert torch.equal(low.repeat_interleave(repeat, dim=2), out)


@pytest.mark.parametrize("overlap", [0, 2, 5])
def test_transposed_upsampler_impulse_alignment(overlap: int) -> None:
    """A frame impulse spreads over exactly [k·hop - overlap, (k+1)·hop + overlap), centred on its span."""
    hop, frames = 8, 6
    up = _randomize(TransposedConvUpsampler(channels=2, hop_length=hop, overlap=overlap).to(DT))
    for k in range(frames):
        mel = torch.zeros(1, 2, frames, dtype=DT)
        mel[0, 0, k] = 1.0
        out = up(mel)
        assert out.shape == (1, 2, frames * hop)
        support = torch.nonzero(out[0, 0]).flatten()
        assert support.min().item() == max(k * hop - overlap, 0)
        assert support.max().item() == min((k + 1) * hop + overlap, frames * hop) - 1
        assert torch.count_nonzero(out[0, 1]) == 0  # depthwise: no leakage across channels
        # The kernel covers its frame symmetrically: taps at k·hop - overlap + i for i < hop + 2·overlap.
        kernel = up.conv.weight[0, 0]
        window = slice(k * hop - overlap, (k + 1) * hop + overlap)
        if k * hop - overlap >= 0 and (k + 1) * hop + overlap <= frames * hop:
            torch.testing.assert_close(out[0, 0, window], kernel, rtol=0, atol=0)


def test_transposed_upsampler_without_overlap_uses_only_its_frame() -> None:
    hop, frames = 4, 5
    up = _randomize(TransposedConvUpsampler(channels=3, hop_length=hop, overlap=0).to(DT))
    mel = torch.randn(1, 3, frames, dtype=DT)
    jacobian = torch.autograd.functional.jacobian(lambda m: up(m)[0], mel)[:, :, 0]  # (C, N, C, F)
    for n in range(frames * hop):
        dependent_frames = torch.nonzero(jacobian[:, n].abs().sum(dim=(0, 1))).flatten().tolist()
        assert dependent_frames == [n // hop]


@pytest.mark.parametrize("overlap", [0, 3])
def test_transposed_upsampler_starts_as_smoothed_repetition(overlap: int) -> None:
    hop, frames = 8, 6
    up = TransposedConvUpsampler(channels=2, hop_length=hop, overlap=overlap).to(DT)
    constant = up(torch.full((1, 2, frames), 2.5, dtype=DT))
    interior = constant[:, :, overlap : frames * hop - overlap]
    # The parameters were initialised in float32 (1/7 is not exact there), hence 1e-7 relative.
    torch.testing.assert_close(interior, torch.full_like(interior, 2.5), rtol=1e-7, atol=0)
    torch.testing.assert_close(up.conv.weight[0, 0], up.initial_kernel(), rtol=1e-7, atol=0)
    if overlap == 0:
        mel = torch.randn(1, 2, frames, dtype=DT)
        torch.testing.assert_close(up(mel), mel.repeat_interleave(hop, dim=2), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- mixture likelihood


def _mixture_params(k: int, n: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, k, n, generator=g)
    means = torch.rand(1, k, n, generator=g) * 2.2 - 1.1  # some means beyond the edges
    log_scales = torch.rand(1, k, n, generator=g) * 9.0 - 12.0  # scales from e^-12 (≪ a bin) to e^-3
    log_scales[0, 0, 0] = 1.0  # one very wide component
    return torch.cat([logits, means, log_scales], dim=1).to(dtype)


@pytest.mark.parametrize("bits", [4, 8, 16])
@pytest.mark.parametrize("components", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_discretized_mixture_sums_to_one(bits: int, components: int, dtype: torch.dtype) -> None:
    """All 2**bits level probabilities sum to one (65,536 levels at 16 bits).

    float64: exact to rounding. float32: the grid's own rounding (6e-8 near ±1) misplaces bin edges by
    up to 2**-24 / (2 / (2**bits - 1)) of a bin, which bounds the error by that fraction (0.2 % at
    16 bits, 8e-6 at 8 bits) times the number of bins under the mass, far less in practice.
    """
    tolerance = 1e-11 if dtype == torch.float64 else 1e-3 if bits == 16 else 2e-6
    params = _mixture_params(components, 6, dtype)
    log_pmf = discretized_mix_logistic_log_pmf(params, bits)
    assert log_pmf.shape == (1, 6, 2**bits)
    total = log_pmf.double().exp().sum(dim=-1)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=tolerance)


@pytest.mark.parametrize("bits", [4, 8])
def test_discretized_pmf_float32_sharp_components(bits: int) -> None:
    """Components with scales far below the bin width (e^-12 … e^-8), off-centre in their bins, keep
    their mass in float32: their bins are 10²–10⁴ scales wide, where subtracting sigmoids or the sinh
    identity alone would lose ~eps·|a| ≈ 1e-3. (At 16 bits float32 cannot resolve the level grid
    itself to better than ~0.2 % of a bin; see the module docstring.)"""
    half = 1.0 / (2**bits - 1)
    levels = torch.linspace(-1.0, 1.0, 2**bits, dtype=DT)
    offsets = torch.tensor([0.3, -0.45, 0.1, -0.2], dtype=DT) * half
    means = torch.stack([levels[[1, 3, 7, 10]] + offsets, levels[[2, 5, 6, 12]] - offsets])  # (K=2, N=4)
    log_scales = torch.tensor([[-12.0, -10.0, -9.0, -8.0], [-11.0, -12.0, -8.5, -10.0]], dtype=DT)
    logits = torch.tensor([[0.0, 1.0, -1.0, 0.5], [0.3, 0.0, 0.0, -0.5]], dtype=DT)
    params = torch.cat([logits, means, log_scales]).unsqueeze(0).float()
    p32 = discretized_mix_logistic_log_pmf(params, bits)[0].double().exp()
    p64 = discretized_mix_logistic_log_pmf(params.double(), bits)[0].exp()
    torch.testing.assert_close(p32, p64, rtol=0, atol=1e-6)


def test_discretized_log_prob_matches_scipy_cdf_differences() -> None:
    """Edge, sub-bin, deep-tail and wide-bin cases against logistic CDF differences in float64."""
    bits = 8
    half = 1.0 / (2**bits - 1)
    levels = np.linspace(-1.0, 1.0, 2**bits)
    x_index = np.array([0, 37, 128, 200, 255])
    # Per time step (columns), two components (rows):
    #   t0 lowest level (the bin reaches -inf); t1 a component of scale e^-9 ≪ bin half-width 0.0039
    #   centred on the level; t2 the dominant component sits at 2.0, 40 scales above the level (deep
    #   left tail, log-probability ≈ -42; the other one is further out); t3 a bin 4 scales wide
    #   straddling the mean; t4 highest level (the bin reaches +inf).
    logits = [[0.5, -0.3, 5.0, 0.0, 2.0], [-0.5, 0.2, -5.0, 0.0, 0.1]]
    means = [[0.3, levels[37], 2.0, levels[200], 0.05], [-0.2, -0.8, 3.0, levels[200] + 0.001, 0.99]]
    log_scales = [[-2.0, -9.0, -3.0, -7.0, -2.0], [-1.5, -2.0, -3.0, -5.0, -6.0]]
    params = torch.tensor([logits[0], logits[1], means[0], means[1], log_scales[0], log_scales[1]], dtype=DT)
    params = params.unsqueeze(0)
    x = torch.from_numpy(levels[x_index]).view(1, 5)
    got = discretized_mix_logistic_log_prob(params, x, bits).numpy()[0]
    weights = np.exp(np.array(logits)) / np.exp(np.array(logits)).sum(0)
    for t, i in enumerate(x_index):
        upper = np.inf if i == 2**bits - 1 else levels[i] + half
        lower = -np.inf if i == 0 else levels[i] - half
        probability = 0.0
        for c in range(2):
            dist = stats.logistic(loc=means[c][t], scale=math.exp(log_scales[c][t]))
            # Survival functions on the right side keep the difference accurate in the upper tail.
            if lower > means[c][t]:
                p = dist.sf(lower) - dist.sf(upper)
            else:
                p = dist.cdf(upper) - dist.cdf(lower)
            probability += weights[c, t] * p
        assert got[t] == pytest.approx(math.log(probability), rel=1e-9, abs=1e-9)
    assert got[2] < -35.0  # the tail case really is in the tail
    # log_prob at a level equals the matching entry of the pmf.
    pmf = discretized_mix_logistic_log_pmf(params, bits).numpy()[0]
    np.testing.assert_allclose(got, pmf[np.arange(5), x_index], rtol=0, atol=1e-12)


def test_nll_gradcheck_and_module() -> None:
    params = _mixture_params(2, 4, DT, seed=1)
    params[:, 4:] = params[:, 4:].clamp(min=-6.0)  # log-scales: keep finite differences well conditioned
    params.requires_grad_(True)
    x = quantize_to_levels(torch.tensor([[-1.0, -0.3, 0.41, 1.0]], dtype=DT), 8)
    assert torch.autograd.gradcheck(lambda p: discretized_mix_logistic_nll(p, x, 8), (params,))
    module = DiscretizedMixLogisticNLL(bits=8, reduction="sum")
    torch.testing.assert_close(module(params, x), -discretized_mix_logistic_log_prob(params, x, 8).sum())


def test_continuous_and_binned_densities_integrate_to_one() -> None:
    params = torch.tensor([[[0.2], [-0.5], [0.1], [0.4], [-2.0], [-3.0]]], dtype=DT)  # K = 2
    for density in (
        lambda v: mix_logistic_log_density(params, v),
        lambda v: mix_logistic_binned_log_density(params, v, 4),
    ):

        def pdf(u: float, density=density) -> float:
            return math.exp(density(torch.tensor([[u]], dtype=DT)).item())

        value = (
            integrate.quad(pdf, -np.inf, -2.0)[0]
            + integrate.quad(pdf, -2.0, 2.0, points=[0.1, 0.4], limit=200)[0]
            + integrate.quad(pdf, 2.0, np.inf)[0]
        )
        assert value == pytest.approx(1.0, abs=1e-8)


def test_sampler_is_on_grid_and_matches_pmf() -> None:
    """200,000 draws at 3 bits against the pmf, every level within 5 binomial standard deviations."""
    bits, draws = 3, 200_000
    params = torch.tensor([[[0.0], [0.7], [-0.4], [0.5], [-1.0], [-1.5]]], dtype=DT).expand(1, 6, draws)
    samples = sample_discretized_mix_logistic(params, bits, torch.Generator().manual_seed(0))
    levels = torch.linspace(-1.0, 1.0, 2**bits, dtype=DT)
    index = torch.round((samples + 1.0) * (2**bits - 1) / 2).long()
    torch.testing.assert_close(samples, levels[index], rtol=0, atol=1e-15)
    counts = torch.bincount(index.flatten(), minlength=2**bits).double() / draws
    pmf = discretized_mix_logistic_log_pmf(params[:, :, :1], bits)[0, 0].exp()
    sigma = (pmf * (1 - pmf) / draws).sqrt()
    assert torch.all((counts - pmf).abs() <= 5 * sigma + 1e-12)


# ----------------------------------------------------------------------------- teacher


def _small_teacher(components: int = 2, upsample: str = "repeat", overlap: int = 0) -> WaveNetTeacher:
    teacher = WaveNetTeacher(
        n_mels=4,
        hop_length=8,
        layers=6,
        dilation_cycle=3,
        kernel_size=3,
        residual_channels=6,
        gate_channels=8,
        skip_channels=5,
        mixture_components=components,
        bits=16,
        upsample=upsample,
        upsample_overlap=overlap,
    ).to(DT)
    return _randomize(teacher, std=0.3)


def test_teacher_output_shape_and_floor() -> None:
    teacher = _small_teacher(components=3)
    mel = torch.randn(2, 4, 5, dtype=DT)
    x = torch.rand(2, 40, dtype=DT) * 2 - 1
    params = teacher(x, mel)
    assert params.shape == (2, 9, 40)
    torch.testing.assert_close(params, teacher(x.unsqueeze(1), mel))
    assert params[:, 6:].min().item() >= teacher.log_scale_min
    with pytest.raises(ValueError):
        teacher(x[:, :39], mel)


def test_teacher_is_causal() -> None:
    """Changing the input at t changes no parameter before t (teacher forcing and mixture_params)."""
    teacher = _small_teacher()
    mel = torch.randn(1, 4, 6, dtype=DT)
    x = torch.rand(1, 48, dtype=DT) * 2 - 1
    t = 20
    changed = x.clone()
    changed[0, t] += 0.5
    a, b = teacher(x, mel), teacher(changed, mel)
    torch.testing.assert_close(a[:, :, :t], b[:, :, :t], rtol=0, atol=0)
    assert (a[:, :, t] - b[:, :, t]).abs().max() > 1e-6
    # mixture_params(x) predicts x_t from x_<t: the change at t shows from t + 1 on.
    a, b = teacher.mixture_params(x, mel), teacher.mixture_params(changed, mel)
    torch.testing.assert_close(a[:, :, : t + 1], b[:, :, : t + 1], rtol=0, atol=0)
    assert (a[:, :, t + 1] - b[:, :, t + 1]).abs().max() > 1e-6


@pytest.mark.parametrize(
    "components,upsample,overlap", [(2, "repeat", 0), (1, "repeat", 0), (2, "transposed", 3)]
)
def test_teacher_incremental_generation_equals_full_forward(
    components: int, upsample: str, overlap: int
) -> None:
    teacher = _small_teacher(components, upsample, overlap)
    mel = torch.randn(2, 4, 6, dtype=DT)
    audio, step_params = teacher.generate(mel, generator=torch.Generator().manual_seed(1), return_params=True)
    assert audio.shape == (2, 48)
    torch.testing.assert_close(audio, quantize_to_levels(audio, 16), rtol=0, atol=0)
    full = teacher.mixture_params(audio, mel)
    torch.testing.assert_close(step_params, full, rtol=0, atol=1e-5)
    assert (step_params - full).abs().max().item() < 1e-10  # float64: rounding only
    again = teacher.generate(mel, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, audio)
