"""Block-sparse GRU training recurrence: values and gradients vs the dense ones with the mask applied."""

import numpy as np
import pytest
import torch
from torch import nn

from vocoder.layers import BlockSparsifier, gru_sequence, live_blocks, sparse_gru_sequence


def _pruned_gru(hidden: int, densities: dict[str, float], seed: int = 0) -> tuple[nn.GRU, torch.Tensor]:
    """A float64 GRU and its 16×1 block keep-mask; the pruned weights are left NON-zero on purpose."""
    torch.manual_seed(seed)
    gru = nn.GRU(6, hidden).double()
    sparsifier = BlockSparsifier.for_gru(gru, densities, start=0, end=1)
    sparsifier.update_masks(1)
    return gru, sparsifier.mask(sparsifier.targets[0]).clone()


def _inputs(gru: nn.GRU, steps: int, batch: int, seed: int = 1) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    hidden = gru.hidden_size
    gates = torch.randn(steps, batch, 3 * hidden, dtype=torch.float64, generator=generator)
    h0 = 0.5 * torch.randn(batch, hidden, dtype=torch.float64, generator=generator)
    weight = gru.weight_hh_l0.detach().clone() * 2.0
    bias = torch.randn(3 * hidden, dtype=torch.float64, generator=generator)
    return tuple(t.requires_grad_(True) for t in (gates, h0, weight, bias))


def _value_and_grads(function, tensors, upstream):
    for t in tensors:
        t.grad = None
    out = function(*tensors)
    (out * upstream).sum().backward()
    return out.detach(), [t.grad.clone() for t in tensors]


def test_live_blocks_drop_diagonal_and_pruned_blocks():
    mask = torch.zeros(96, 32, dtype=torch.bool)
    mask[torch.arange(96), torch.arange(96) % 32] = True  # diagonal only: no block stored
    mask[16:32, 5] = True
    mask[80:96, 0] = True
    row_ptr, col_idx = live_blocks(mask)
    assert row_ptr.tolist() == [0, 0, 1, 1, 1, 1, 2] and col_idx.tolist() == [5, 0]
    with pytest.raises(ValueError, match="3H, H"):
        live_blocks(torch.ones(40, 20, dtype=torch.bool))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("hidden", "densities", "batch"), [
    (32, {"update": 0.3, "reset": 0.2, "candidate": 0.5}, 7),   # batch 7: groups of 4, 2 and 1 rows
    (48, {"update": 0.05, "reset": 0.05, "candidate": 0.2}, 4),  # LPCNet's final densities
    (16, {"update": 1.0, "reset": 1.0, "candidate": 1.0}, 3),    # nothing pruned
])
def test_sparse_recurrence_equals_dense_with_mask(hidden, densities, batch, threads):
    gru, mask = _pruned_gru(hidden, densities)
    tensors = _inputs(gru, steps=70, batch=batch)  # 70·B samples: several weight-gradient tiles
    upstream = torch.randn(70, batch, hidden, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        sparse, sparse_grads = _value_and_grads(
            lambda x, h, w, b: sparse_gru_sequence(x, h, w, b, mask), tensors, upstream)
    finally:
        torch.set_num_threads(before)
    dense, dense_grads = _value_and_grads(lambda x, h, w, b: gru_sequence(x, h, w * mask, b), tensors,
                                          upstream)
    torch.testing.assert_close(sparse, dense, rtol=0, atol=1e-13)
    for sparse_grad, dense_grad in zip(sparse_grads, dense_grads, strict=True):
        torch.testing.assert_close(sparse_grad, dense_grad, rtol=0, atol=1e-12)
    # the weight gradient is the dense one with the mask applied: exactly zero where pruned
    masked = (tensors[2] * mask).detach().requires_grad_(True)
    full_grad = _value_and_grads(gru_sequence, [tensors[0], tensors[1], masked, tensors[3]], upstream)[1][2]
    assert torch.all(sparse_grads[2][~mask] == 0)
    torch.testing.assert_close(sparse_grads[2], full_grad * mask, rtol=0, atol=1e-12)


def test_dense_weight_grad_option():
    """Pruned weights that may regrow get their full gradient; everything else is unchanged."""
    gru, mask = _pruned_gru(32, {"update": 0.2, "reset": 0.2, "candidate": 0.4})
    tensors = _inputs(gru, steps=9, batch=5)
    upstream = torch.randn(9, 5, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    sparse, grads = _value_and_grads(
        lambda x, h, w, b: sparse_gru_sequence(x, h, w, b, mask, dense_weight_grad=True), tensors, upstream)
    masked = (tensors[2] * mask).detach().requires_grad_(True)
    dense, dense_grads = _value_and_grads(gru_sequence, [tensors[0], tensors[1], masked, tensors[3]],
                                          upstream)
    torch.testing.assert_close(sparse, dense, rtol=0, atol=1e-13)
    for grad, dense_grad in zip(grads, dense_grads, strict=True):
        torch.testing.assert_close(grad, dense_grad, rtol=0, atol=1e-12)
    assert torch.any(grads[2][~mask] != 0)


def test_sparse_recurrence_matches_nn_gru_float32():
    gru, mask = _pruned_gru(32, {"update": 0.25, "reset": 0.25, "candidate": 0.25}, seed=3)
    gru = gru.float()
    with torch.no_grad():
        gru.weight_hh_l0.mul_(mask)  # what the sparsifier holds between steps
    x = torch.randn(30, 5, 6)
    h0 = torch.randn(1, 5, 32)
    expected, _ = gru(x, h0)
    expected.square().sum().backward()
    expected_grad = gru.weight_hh_l0.grad.clone()
    gru.zero_grad()
    gates = x @ gru.weight_ih_l0.t() + gru.bias_ih_l0
    out = sparse_gru_sequence(gates, h0[0], gru.weight_hh_l0, gru.bias_hh_l0, mask)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    out.square().sum().backward()
    torch.testing.assert_close(gru.weight_hh_l0.grad, expected_grad * mask, rtol=1e-4, atol=1e-5)


def test_sparse_recurrence_is_deterministic():
    gru, mask = _pruned_gru(32, {"update": 0.2, "reset": 0.2, "candidate": 0.2})
    tensors = _inputs(gru, steps=20, batch=6)
    upstream = torch.ones(20, 6, 32, dtype=torch.float64)

    def run():
        return _value_and_grads(lambda x, h, w, b: sparse_gru_sequence(x, h, w, b, mask), tensors, upstream)

    first, second = run(), run()
    assert torch.equal(first[0], second[0])
    assert all(torch.equal(a, b) for a, b in zip(first[1], second[1], strict=True))
    np.testing.assert_array_equal(first[1][2].numpy() != 0, (first[1][2] * mask).numpy() != 0)


def test_lpcnet_training_with_the_mask_equals_dense_training_masked():
    """LPCNet.set_gru_a_mask: same loss and gradients as the dense model, pruned weights' grads zero."""
    from vocoder.models import LPCNet

    torch.manual_seed(0)
    model = LPCNet(gru_a_size=32, gru_b_size=16, frame_channels=24, sample_embedding_size=16,
                   pitch_embedding_size=8).double()
    sparsifier = BlockSparsifier.for_gru(model.gru_a, {"update": 0.25, "reset": 0.25, "candidate": 0.25},
                                         start=0, end=1)
    sparsifier.step(1)  # prunes and masks the weights, as training does after every step
    mask = sparsifier.mask(sparsifier.targets[0])
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(3, 2 + 2 * model.frame_context, 20, dtype=torch.float64, generator=generator)
    codes = [torch.randint(0, 256, (3, 320), generator=generator) for _ in range(4)]

    def loss_and_grads():
        model.zero_grad()
        logits = model(features, *codes[:3])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), codes[3].reshape(-1))
        loss.backward()
        return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}

    dense_loss, dense_grads = loss_and_grads()
    model.set_gru_a_mask(mask)
    sparse_loss, sparse_grads = loss_and_grads()
    model.eval()  # evaluation ignores the mask (dense weights)
    with torch.no_grad():
        torch.testing.assert_close(model(features, *codes[:3]), model.train()(features, *codes[:3]))
    model.set_gru_a_mask(None)
    torch.testing.assert_close(sparse_loss, dense_loss, rtol=0, atol=1e-13)
    for name, grad in dense_grads.items():
        expected = grad * mask if name == "gru_a.weight_hh_l0" else grad
        torch.testing.assert_close(sparse_grads[name], expected, rtol=0, atol=1e-12, msg=name)
    assert torch.any(dense_grads["gru_a.weight_hh_l0"][~mask] != 0)
    assert torch.all(sparse_grads["gru_a.weight_hh_l0"][~mask] == 0)


def test_thread_ranges_cover_everything_once_and_errors_reach_the_caller():
    from vocoder.layers import run_in_threads, split_range

    for size, workers in [(1, 4), (5, 2), (7, 3), (16, 4), (3, 8)]:
        chunks = split_range(size, workers)
        assert len(chunks) == min(size, workers)
        assert [i for first, last in chunks for i in range(first, last)] == list(range(size))
    seen = []
    run_in_threads(lambda first, last: seen.extend(range(first, last)), split_range(10, 3))
    assert sorted(seen) == list(range(10))

    def fail(first, last):
        if first > 0:
            raise ValueError(f"chunk {first}")

    with pytest.raises(ValueError, match="chunk"):
        run_in_threads(fail, split_range(6, 3))
