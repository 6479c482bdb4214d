"""LPCNet's ``tree`` output head: xiph's binary tree of bit decisions over the μ-law code."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vocoder.data import FeatureSettings
from vocoder.dsp import lpc_from_cepstrum
from vocoder.inference import LPCNetVocoder, load, lpcnet_synthesize, synthesize_fast
from vocoder.inference._lpcnet_sampling import TREE_FLOOR, sample_tree, synthesize_reference
from vocoder.layers import tree_log_likelihood, tree_log_pdf, tree_node_table
from vocoder.models import LPCNet
from vocoder.training import LPCNetTask

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(frame_channels=16, pitch_embedding_size=8, sample_embedding_size=8, gru_a_size=32, gru_b_size=8)


def _features(batch: int, frames: int, seed: int = 0) -> np.ndarray:
    """Plausible raw LPCNet features (xiph's layout for the pitch), correlations up to 0.5 (tempered)."""
    rng = np.random.default_rng(seed)
    features = np.zeros((batch, frames, 20))
    features[..., :18] = rng.normal(0.0, 1.0, (batch, frames, 18))
    features[..., 0] += 8.0
    features[..., 18] = (rng.uniform(32.0, 256.0, (batch, frames)) - 100.0) / 50.0
    features[..., 19] = rng.uniform(-0.5, 0.5, (batch, frames))
    return features


def _tree_model(dtype: torch.dtype = torch.float64, head: str = "tree") -> LPCNet:
    torch.manual_seed(0)
    model = LPCNet(**TINY, output_head=head).to(dtype).eval()
    with torch.no_grad():
        model.dual_fc.scale.mul_(4.0)  # decisions away from ½, some past the floor: a lively distribution
        model.dual_fc.weight.mul_(3.0)
        model.gru_a.weight_hh_l0.mul_(3.0)
    model.set_normalization(torch.tensor([8.0] + [0.0] * 19), torch.ones(20))
    return model


def _xiph_tree_to_pdf(logits: torch.Tensor) -> torch.Tensor:
    """xiph's ``tree_to_pdf`` (training_tf2/lpcnet.py): the product of each level's interleaved
    ``[1 − p, p]`` pairs, each repeated over the codes below its node."""
    p = torch.sigmoid(logits)
    levels = logits.shape[-1]
    pdf = torch.ones_like(p)
    width = 1
    while width < levels:
        level_p = p[..., width : 2 * width]
        pairs = torch.stack([1 - level_p, level_p], -1).flatten(-2)  # (..., 2·width)
        pdf = pdf * pairs.repeat_interleave(levels // (2 * width), dim=-1)
        width *= 2
    return pdf


def test_node_table_by_hand():
    nodes, bits = tree_node_table(3)
    # code 5 = 0b101: root (node 1) bit 1, node 2|1 = 3 bit 0, node 4|0b10 = 6 bit 1
    assert nodes[5].tolist() == [1, 3, 6] and bits[5].tolist() == [1, 0, 1]
    assert nodes[0].tolist() == [1, 2, 4] and nodes[7].tolist() == [1, 3, 7]
    assert int(nodes.min()) == 1 and int(nodes.max()) == 7  # node 0 unused
    x = torch.randn(8, dtype=torch.float64)
    expected = torch.sigmoid(x[1]) * torch.sigmoid(-x[3]) * torch.sigmoid(x[6])
    assert tree_log_likelihood(x, torch.tensor(5)).exp().item() == pytest.approx(expected.item(), rel=1e-14)
    with pytest.raises(ValueError, match="power-of-two"):
        tree_log_pdf(torch.zeros(6))


def test_tree_pdf_sums_to_one_and_equals_xiph_product_form():
    logits = 4.0 * torch.randn(3, 5, 256, dtype=torch.float64)
    pdf = tree_log_pdf(logits).exp()
    torch.testing.assert_close(pdf.sum(-1), torch.ones(3, 5, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(pdf, _xiph_tree_to_pdf(logits), rtol=1e-10, atol=1e-300)


def test_log_likelihood_is_log_pdf_at_target_and_gradcheck():
    logits = 3.0 * torch.randn(4, 7, 256, dtype=torch.float64)
    target = torch.randint(0, 256, (4, 7))
    expected = tree_log_pdf(logits).gather(-1, target[..., None])[..., 0]
    torch.testing.assert_close(tree_log_likelihood(logits, target), expected, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(tree_log_likelihood(logits, target),
                               torch.log(_xiph_tree_to_pdf(logits)).gather(-1, target[..., None])[..., 0],
                               rtol=1e-10, atol=1e-10)
    small = torch.randn(3, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: tree_log_likelihood(x, torch.tensor([0, 9, 15])), (small,))
    # only the target's 8 nodes get a gradient
    x = torch.randn(256, dtype=torch.float64, requires_grad=True)
    tree_log_likelihood(x, torch.tensor(200)).backward()
    assert set(torch.nonzero(x.grad).flatten().tolist()) == set(tree_node_table(8)[0][200].tolist())


def test_sample_tree_is_the_inverse_cdf_of_the_floored_tempered_tree():
    """Every u ∈ [0, 1) maps to one code, monotonically; each code's share of u is its probability
    under the tree with p1 = clip(σ(α·logit), f, 1 − f) at each node."""
    torch.manual_seed(3)
    logits = 4.0 * torch.randn(256, dtype=torch.float64)
    alpha = 1.2
    n = 2**16
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    codes = sample_tree(logits.expand(n, 256), torch.full((n,), alpha, dtype=torch.float64), u)
    assert bool(torch.all(codes[1:] >= codes[:-1]))  # inverse CDF: monotone in u
    p1 = torch.sigmoid(alpha * logits).clamp(TREE_FLOOR, 1 - TREE_FLOOR)
    pdf = tree_log_pdf(torch.log(p1) - torch.log1p(-p1)).exp()  # the floored tree's pdf
    counts = torch.bincount(codes, minlength=256).double()
    assert float((counts - n * pdf).abs().max()) <= 1.0 + 1e-6  # contiguous intervals: ±1 grid point
    assert float(pdf.min()) >= TREE_FLOOR**8 * 0.999  # the floor keeps every code reachable
    # the extremes of u stay in range
    edge = sample_tree(logits.expand(2, 256), torch.ones(2, dtype=torch.float64),
                       torch.tensor([0.0, float(np.nextafter(1.0, 0.0))], dtype=torch.float64))
    assert edge.tolist()[0] >= 0 and edge.tolist()[1] <= 255


@pytest.fixture(scope="module")
def tree_model() -> LPCNet:
    return _tree_model()


def test_fast_backend_equals_torch_reference_sample_for_sample(tree_model):
    features = _features(5, 3, seed=1)  # 5 utterances: lockstep groups of 4 and 1
    lpc = lpc_from_cepstrum(features[..., :18], order=16)
    expected = synthesize_reference(tree_model, features, lpc=lpc, seed=4)
    assert len(np.unique(expected.excitation)) > 30  # not degenerate
    result = synthesize_fast(tree_model, features, lpc=lpc, seed=4, dtype=np.float64)
    np.testing.assert_array_equal(result.excitation, expected.excitation)
    np.testing.assert_allclose(result.signal, expected.signal, rtol=0, atol=1e-12)
    threaded = synthesize_fast(tree_model, features, lpc=lpc, seed=4, dtype=np.float64, threads=2)
    np.testing.assert_array_equal(threaded.excitation, expected.excitation)
    # the same weights read as softmax logits sample differently: the head really is the tree
    softmax = _tree_model(head="dualfc")
    softmax.load_state_dict(tree_model.state_dict())
    assert not np.array_equal(synthesize_fast(softmax, features, lpc=lpc, seed=4).excitation,
                              result.excitation)
    # float32 (the fast mode) runs and stays in range
    model32 = _tree_model(torch.float32)
    wave = lpcnet_synthesize(model32, features[0], seed=4, backend="fast")
    assert wave.shape == (480,) and wave.dtype == np.float32 and np.abs(wave).max() <= 1.0


@pytest.fixture(scope="module")
def tree_checkpoint(tmp_path_factory) -> Path:
    model = _tree_model(torch.float32)
    config = {"model": {"_target_": "vocoder.models.LPCNet", **TINY, "output_head": "tree"},
              "data": {"features": dataclasses.asdict(FeatureSettings())}}
    path = tmp_path_factory.mktemp("ckpt") / "tree.pt"
    torch.save({"model": model.state_dict(), "ema": model.state_dict(), "optimizer": {}, "step": 1,
                "config": config}, path)
    return path


@pytest.mark.parametrize("backend", ["fast", "int8", "int8_xiph"])
def test_tree_stream_equals_offline(tree_checkpoint, backend):
    vocoder = load(tree_checkpoint, backend=backend)
    assert isinstance(vocoder, LPCNetVocoder) and vocoder.model.output_head == "tree"
    assert vocoder.backend == backend  # the tree head runs on the numba synthesizers
    frames = _features(1, 9, seed=5)[0].astype(np.float32)
    offline = vocoder.synthesize([frames], seed=3)[0]
    stream, pieces, first = vocoder.stream(seed=3), [], 0
    for size in (1, 0, 3, 2, 3):
        pieces.append(stream.push(frames[first : first + size]))
        first += size
    pieces.append(stream.flush())
    np.testing.assert_array_equal(np.concatenate(pieces), offline)


def _batch(batch: int, frames: int, history: int, seed: int) -> dict[str, torch.Tensor]:
    """A training batch as :class:`vocoder.data.LPCNetSegments` gives it (features with two frames of
    context on each side, LPC per frame, a pre-emphasized waveform with its history)."""
    rng = np.random.default_rng(seed)
    features = _features(batch, frames + 4, seed)
    lpc = lpc_from_cepstrum(features[:, 2:-2, :18], order=16)
    n = history + frames * 160
    t = np.arange(n)
    signal = 0.3 * np.sin(2 * np.pi * 0.013 * t)[None] * rng.uniform(0.5, 1.0, (batch, 1))
    signal = signal + 0.01 * rng.standard_normal((batch, n))
    return {"features": torch.from_numpy(features).float(), "lpc": torch.from_numpy(lpc).float(),
            "signal": torch.from_numpy(signal).float()}


def test_training_steps_with_the_tree_head_lower_the_loss(tmp_path):
    stats = {"features_mean": np.zeros(20, np.float32), "features_std": np.ones(20, np.float32),
             "mel_mean": np.zeros(80, np.float32), "mel_std": np.ones(80, np.float32)}
    np.savez(tmp_path / "stats.npz", **stats)
    torch.manual_seed(0)
    model = LPCNet(**TINY, output_head="tree")
    task = LPCNetTask(model, str(tmp_path), FeatureSettings(), frames=2, sparsify={"enabled": False})
    batch = _batch(4, 2, task.history, seed=2)
    before = float(task.validation_step(model, batch)["excitation_ce"])
    assert before == pytest.approx(8 * math.log(2), rel=0.1)  # a fresh tree: ≈ ½ at every node
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(8):
        loss = task.training_step(batch, step)["excitation_ce"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = float(task.validation_step(model, batch)["excitation_ce"])
    assert after < before - 0.1
