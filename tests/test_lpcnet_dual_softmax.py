"""LPCNet's 16-bit output head: conditional dual softmax over the linear excitation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from vocoder.dsp import excitation16_decode, excitation16_encode
from vocoder.inference import lpcnet_synthesize
from vocoder.inference._lpcnet_sampling import (
    _sample_dual_softmax,
    synthesize_reference,
    tempered_distribution,
)
from vocoder.models import LPCNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(frame_channels=16, pitch_embedding_size=8, sample_embedding_size=8, gru_a_size=16, gru_b_size=8,
            output_head="dual_softmax")


def _features(batch, frames, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((batch, frames, 20)).astype(np.float32) * 0.5
    features[..., 18] = (rng.uniform(60, 200, (batch, frames)) - 100) / 50
    features[..., 19] = rng.uniform(-0.5, 0.5, (batch, frames))
    return features


def test_excitation16_levels_round_trip():
    values = torch.linspace(-1, 1, 1001, dtype=torch.float64)
    levels = excitation16_encode(values)
    assert levels.min() == 0 and levels.max() == 65535
    assert (excitation16_decode(levels) - values).abs().max() <= 0.5 / 32767.5 + 1e-15
    assert excitation16_encode(torch.tensor([2.0, -3.0])).tolist() == [65535, 0]


def test_dual_softmax_head_shapes_and_normalized_likelihood():
    torch.manual_seed(0)
    model = LPCNet(**TINY)
    assert not hasattr(model, "dual_fc") and model.dual_softmax.num_levels == 65536
    features = torch.from_numpy(_features(2, 5))
    codes = [torch.randint(0, 256, (2, 160)) for _ in range(3)]
    h = model(features, *codes)
    assert h.shape == (2, 160, 8)
    # p over all 65,536 levels of one sample sums to one
    h0 = h[0, 0].expand(65536, 8)
    total = model.dual_softmax.log_prob(h0, torch.arange(65536)).double().exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="output_head"):
        LPCNet(**{**TINY, "output_head": "softmax16"})


def test_dual_softmax_sampling_tempers_the_coarse_distribution():
    torch.manual_seed(1)
    model = LPCNet(**TINY)
    h = torch.randn(1, 8).expand(50_000, 8)
    exponent = torch.full((50_000,), 1.25, dtype=torch.float64)
    uniforms = torch.from_numpy(np.random.default_rng(0).random(50_000))
    with torch.no_grad():
        levels = _sample_dual_softmax(model, h, exponent, uniforms, pdf_floor=0.002)
        coarse_expected = tempered_distribution(model.dual_softmax.coarse_logits(h[:1]).double(),
                                                exponent[:1], 0.002)[0]
    coarse = levels >> 8
    counts = torch.bincount(coarse, minlength=256).double() / len(levels)
    assert (counts - coarse_expected).abs().max().item() < 0.006
    # the fine value follows p(fine | coarse) of the drawn coarse value
    top = int(torch.argmax(counts))
    with torch.no_grad():
        fine_expected = torch.softmax(model.dual_softmax.fine_logits(h[:1], torch.tensor([top])).double(), -1)[0]
    fine = levels[coarse == top] & 255
    fine_counts = torch.bincount(fine, minlength=256).double() / len(fine)
    assert (fine_counts - fine_expected).abs().max().item() < 0.03


def test_dual_softmax_head_synthesizes_on_the_torch_backend_only():
    torch.manual_seed(2)
    model = LPCNet(**TINY).eval()
    features = _features(1, 3)
    result = synthesize_reference(model, features, seed=0)
    assert result.waveform.shape == (1, 480) and np.isfinite(result.waveform).all()
    assert result.excitation.min() >= 0 and result.excitation.max() < 65536
    # s = p + e with e the 16-bit level's value
    np.testing.assert_allclose(result.signal - result.prediction,
                               excitation16_decode(torch.from_numpy(result.excitation)).numpy(), atol=1e-12)
    again = lpcnet_synthesize(model, features[0], backend="torch", seed=0)
    np.testing.assert_array_equal(again, result.waveform[0])
    with pytest.raises(ValueError, match="backend='torch'"):
        lpcnet_synthesize(model, features[0], backend="fast")


@pytest.mark.slow
def test_dual_softmax_recipe_runs_end_to_end(tmp_path):
    out, cache = tmp_path / "exp", tmp_path / "cache"
    args = [sys.executable, "-m", "vocoder.train", "recipe=slt_lpcnet_dual_softmax", "data=sample",
            "model=lpcnet_tiny", f"trainer.out_dir={out}",
            f"data.cache_dir={cache}", "trainer.max_steps=2", "trainer.batch_size=4", "trainer.valid_every=2",
            "trainer.audio_every=2", "trainer.log_every=1", "trainer.progress=log", "loss.example_seconds=0.2"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "excitation_ce" in proc.stdout
    first = float(proc.stdout.split("step 1/2 loss ")[1].split()[0])
    assert 8.0 < first < 12.5  # ≈ ln 65536 = 11.1 nats from a fresh head
    from vocoder.inference import load

    vocoder = load(out / "checkpoints" / "last.pt")
    assert vocoder.backend == "torch"  # the numba synthesizers implement the DualFC head only
    wave = vocoder.synthesize([_features(1, 12)[0]], seed=0)[0]
    assert wave.shape == (12 * 160,) and np.isfinite(wave).all()
