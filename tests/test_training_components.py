"""Noise injection in the μ-law domain, LPCNet teacher-forcing inputs, sampler, EMA, schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vocoder.dsp import mulaw_compress, mulaw_decode, mulaw_encode
from vocoder.dsp._lpc_torch import lpc_predict_torch
from vocoder.training import (
    EMA,
    InverseDecayLR,
    MulawNoiseInjection,
    ResumableSampler,
    lpcnet_training_inputs,
)


def _loop_predict(signal, lpc, hop, history):
    full = np.concatenate([history, signal])
    order = lpc.shape[-1]
    out = np.zeros(len(signal))
    for n in range(len(signal)):
        a = lpc[n // hop]
        out[n] = -sum(a[k] * full[len(history) + n - 1 - k] for k in range(order))
    return out


def test_lpc_predict_torch_matches_loop():
    rng = np.random.default_rng(1)
    signal = rng.standard_normal((2, 50))
    lpc = rng.standard_normal((2, 5, 4)) * 0.3
    history = rng.standard_normal((2, 4))
    got = lpc_predict_torch(torch.from_numpy(signal), torch.from_numpy(lpc), hop_length=10,
                            history=torch.from_numpy(history))
    for b in range(2):
        np.testing.assert_allclose(got[b].numpy(), _loop_predict(signal[b], lpc[b], 10, history[b]), atol=1e-12)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_uniform_noise_statistics_in_code_steps(scale):
    torch.manual_seed(0)
    clean = (torch.rand(8, 20000, dtype=torch.float64) * 2 - 1) * 0.5
    noisy = MulawNoiseInjection(bits=8, scale=scale, distribution="uniform", random_scale=False)(clean)
    delta_codes = (mulaw_compress(noisy) - mulaw_compress(clean)) * 255 / 2
    assert delta_codes.abs().max() <= scale + 1e-9
    assert abs(delta_codes.mean().item()) < 0.01 * scale
    assert delta_codes.std().item() == pytest.approx(scale / math.sqrt(3), rel=0.02)


@pytest.mark.parametrize("distribution,std_factor", [("gaussian", 1.0), ("laplace", 1.0)])
def test_other_distributions_have_unit_std(distribution, std_factor):
    noise = MulawNoiseInjection(scale=1.5, distribution=distribution, random_scale=False).sample_noise(
        torch.Size([4, 50000]), torch.float64, torch.device("cpu"))
    assert noise.std().item() == pytest.approx(1.5 * std_factor, rel=0.03)


def test_noise_is_proportional_to_amplitude():
    torch.manual_seed(0)
    injector = MulawNoiseInjection(bits=8, scale=1.0, distribution="uniform", random_scale=False)
    stds = {}
    for amplitude in (0.01, 0.5):
        clean = torch.full((4, 20000), amplitude, dtype=torch.float64)
        stds[amplitude] = (injector(clean) - clean).std().item()
    # derivative of μ-law expansion: dx/du ∝ (1 + μ|x|)
    expected_ratio = (1 + 255 * 0.5) / (1 + 255 * 0.01)
    assert stds[0.5] / stds[0.01] == pytest.approx(expected_ratio, rel=0.1)


def test_random_scale_varies_per_item():
    torch.manual_seed(0)
    injector = MulawNoiseInjection(scale=2.0, random_scale=True)
    noise = injector.sample_noise(torch.Size([16, 4000]), torch.float64, torch.device("cpu"))
    per_item = noise.abs().amax(dim=1)
    assert per_item.max() <= 2.0 and per_item.std() > 0.2


def test_lpcnet_inputs_without_noise_are_consistent():
    rng = np.random.default_rng(0)
    history, hop, frames, order = 20, 10, 4, 4
    clean = torch.from_numpy(rng.uniform(-0.3, 0.3, (2, history + frames * hop)))
    lpc = torch.from_numpy(rng.uniform(-0.2, 0.2, (2, frames, order)))
    out = lpcnet_training_inputs(clean, clean.clone(), lpc, hop_length=hop, history=history)
    for key in ("signal_in", "prediction", "excitation_in", "target"):
        assert out[key].shape == (2, frames * hop) and out[key].dtype == torch.int64
    # without noise, e_{t-1} fed back equals the previous target excitation
    assert torch.equal(out["excitation_in"][:, 1:], out["target"][:, :-1])
    assert torch.equal(out["signal_in"], mulaw_encode(clean[:, history - 1 : -1]))
    prediction = np.stack([_loop_predict(clean[b, history:].numpy(), lpc[b].numpy(), hop,
                                         clean[b, :history].numpy()) for b in range(2)])
    assert torch.equal(out["prediction"], mulaw_encode(torch.from_numpy(prediction)))
    target = clean[:, history:].numpy() - prediction
    np.testing.assert_allclose(mulaw_decode(out["target"].numpy()), target, atol=0.02)


def test_lpcnet_target_corrects_noise():
    """The target is the clean sample minus the prediction from the noisy past."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    clean = torch.from_numpy(rng.uniform(-0.3, 0.3, (1, 20 + 40)))
    noisy = MulawNoiseInjection(scale=4.0, random_scale=False)(clean)
    lpc = torch.full((1, 4, 4), 0.1, dtype=torch.float64)
    out = lpcnet_training_inputs(clean, noisy, lpc, hop_length=10, history=20)
    prediction = lpc_predict_torch(noisy[:, 20:], lpc, 10, history=noisy[:, 16:20])
    assert torch.equal(out["target"], mulaw_encode(clean[:, 20:] - prediction))
    assert not torch.equal(out["signal_in"], mulaw_encode(clean[:, 19:-1]))


def test_sampler_resume_and_ranks():
    full = ResumableSampler(10, seed=3)
    stream = iter(full)
    items = [next(stream) for _ in range(25)]
    assert sorted(i for i, _ in items[:10]) == list(range(10))
    resumed = ResumableSampler(10, seed=3)
    resumed.set_position(13)
    again = iter(resumed)
    assert [next(again) for _ in range(12)] == items[13:]
    ranks = [ResumableSampler(10, seed=3, rank=r, world_size=2) for r in range(2)]
    firsts = [[i for i, _ in (next(it) for _ in range(5))] for it in map(iter, ranks)]
    assert sorted(firsts[0] + firsts[1]) == list(range(10))


def test_ema_warmup_and_average():
    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.9, warmup=10)
    assert ema.decay_at(1) == pytest.approx(2 / 11)
    model.weight.data.fill_(1.0)
    ema.update(model, step=100)
    assert torch.allclose(ema.model.weight, torch.full((1, 2), 0.1))
    assert not ema.model.weight.requires_grad


def test_inverse_decay_schedule():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = InverseDecayLR(opt, decay=0.5, warmup_steps=0)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0, 1 / 1.5, 1 / 2.0, 1 / 2.5])
