"""Block-sparse pruning: cubic schedule, block selection, diagonal, persistence under Adam, resume."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from vocoder.layers import GRU_GATES, BlockSparsifier, SparseTarget

HIDDEN = 64


def _gru() -> nn.GRU:
    torch.manual_seed(0)
    return nn.GRU(8, HIDDEN, batch_first=True)


def _expected_mask(chunk: np.ndarray, density: float, block=(16, 1), diagonal=True) -> np.ndarray:
    """Hand computation: zero the diagonal, 16×1 block L2 norms, keep n − round(n(1 − d)) largest."""
    a = chunk.astype(np.float64).copy()
    square = diagonal and a.shape[0] == a.shape[1]
    if square:
        a[np.arange(a.shape[0]), np.arange(a.shape[0])] = 0.0
    rows, cols = a.shape
    norms = (a.reshape(rows // block[0], block[0], cols // block[1], block[1]) ** 2).sum((1, 3))
    n = norms.size
    keep_count = n - round(n * (1.0 - density))
    keep = np.zeros(n, bool)
    keep[np.argsort(-norms.ravel(), kind="stable")[:keep_count]] = True
    mask = keep.reshape(norms.shape).repeat(block[0], 0).repeat(block[1], 1)
    if square:
        mask |= np.eye(rows, dtype=bool)
    return mask


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 1.0),
        (1999, 1.0),
        (2000, 1.0),
        (2400, 0.2 + 0.8 * (1 - 400 / 38000) ** 3),
        (21000, 0.2 + 0.8 * 0.5**3),
        (39600, 0.2 + 0.8 * (400 / 38000) ** 3),
        (40000, 0.2),
        (100000, 0.2),
    ],
)
def test_schedule_matches_cubic_formula(step, expected):
    sparsifier = BlockSparsifier.for_gru(_gru())
    assert sparsifier.density_at(0.2, step) == pytest.approx(expected, rel=1e-12)


def test_update_steps_follow_interval_and_end():
    sparsifier = BlockSparsifier.for_gru(_gru(), start=10, end=50, interval=15)
    updates = [step for step in range(0, 80) if sparsifier.step(step)]
    # 10, 25, 40 on the interval grid, then once at the end step; never again afterwards
    assert updates == [10, 25, 40, 50]


@pytest.mark.parametrize("step", [100, 130, 170, 200])
def test_masks_match_hand_computation(step):
    gru = _gru()
    targets = {"update": 0.3, "reset": 0.1, "candidate": 0.6}
    sparsifier = BlockSparsifier.for_gru(gru, targets, start=100, end=200, interval=10)
    weight = gru.weight_hh_l0.detach().numpy().copy()
    sparsifier.update_masks(step)
    mask = sparsifier.mask(sparsifier.targets[0]).numpy()
    densities = sparsifier.densities()
    n_blocks = (HIDDEN // 16) * HIDDEN
    # torch's row order is reset, update, candidate
    for index, gate in enumerate(GRU_GATES):
        rows = slice(index * HIDDEN, (index + 1) * HIDDEN)
        density = sparsifier.density_at(targets[gate], step)
        np.testing.assert_array_equal(mask[rows], _expected_mask(weight[rows], density))
        kept = n_blocks - round(n_blocks * (1 - density))
        assert densities[gate] == pytest.approx(kept / n_blocks, abs=1e-12)


def test_diagonal_is_kept_and_excluded_from_norms():
    gru = _gru()
    with torch.no_grad():
        # huge diagonal weights must not make their blocks win the selection
        gru.weight_hh_l0.view(3, HIDDEN, HIDDEN).diagonal(dim1=1, dim2=2).fill_(100.0)
    targets = {"update": 0.05, "reset": 0.05, "candidate": 0.05}
    sparsifier = BlockSparsifier.for_gru(gru, targets, start=0, end=1)
    weight = gru.weight_hh_l0.detach().numpy().copy()
    sparsifier.step(1)
    pruned = gru.weight_hh_l0.detach().numpy()
    for index in range(3):
        rows = slice(index * HIDDEN, (index + 1) * HIDDEN)
        np.testing.assert_array_equal(np.diag(pruned[rows]), np.full(HIDDEN, 100.0, np.float32))
        expected = _expected_mask(weight[rows], 0.05)
        np.testing.assert_array_equal(pruned[rows] != 0, expected)
    assert all(v == pytest.approx(round(0.05 * 256) / 256) for v in sparsifier.densities().values())


def test_pruned_blocks_stay_zero_under_adam():
    torch.manual_seed(0)
    gru = _gru()
    sparsifier = BlockSparsifier.for_gru(gru, start=2, end=6, interval=2)
    optimizer = torch.optim.Adam(gru.parameters(), lr=1e-2)
    x = torch.randn(4, 20, 8)
    mask = sparsifier.mask(sparsifier.targets[0])
    for step in range(1, 12):
        out, _ = gru(x)
        optimizer.zero_grad()
        out.square().mean().backward()
        before = gru.weight_hh_l0.detach().clone()
        optimizer.step()
        sparsifier.step(step)
        if step > 2:
            weight = gru.weight_hh_l0.detach()
            assert torch.all(weight[~mask] == 0)
            # the kept weights did train (Adam moves every entry with a gradient)
            assert torch.any(weight[mask] != before[mask])
    final = sparsifier.densities()
    assert final == pytest.approx({"reset": 0.05, "update": 0.05, "candidate": 0.2}, abs=1 / 256)


def test_state_dict_resume_and_ema_copy():
    gru = _gru()
    sparsifier = BlockSparsifier.for_gru(gru, start=0, end=10, interval=5)
    sparsifier.step(5)
    state = copy.deepcopy(sparsifier.state_dict())
    assert set(state) == {"mask_weight_hh_l0", "last_update"}

    resumed_gru = _gru()
    resumed = BlockSparsifier.for_gru(resumed_gru, start=0, end=10, interval=5)
    resumed.load_state_dict(state)
    assert int(resumed.last_update) == 5
    assert not resumed.step(6)  # not an update step, but the loaded masks are applied
    np.testing.assert_array_equal(resumed_gru.weight_hh_l0.detach().numpy() != 0,
                                  sparsifier.mask(sparsifier.targets[0]).numpy())

    ema = copy.deepcopy(_gru())
    sparsifier.apply_masks_to(ema)
    assert torch.all(ema.weight_hh_l0[~sparsifier.mask(sparsifier.targets[0])] == 0)


def test_generic_linear_target_without_diagonal():
    torch.manual_seed(0)
    layer = nn.Linear(32, 48)
    target = SparseTarget("weight", ("top", "bottom"), (0.5, 0.25), keep_diagonal=True)
    sparsifier = BlockSparsifier(layer, [target], start=0, end=1, block=(8, 2))
    weight = layer.weight.detach().numpy().copy()
    sparsifier.step(1)
    mask = sparsifier.mask(target).numpy()
    # (24, 32) chunks are not square: no diagonal is forced
    np.testing.assert_array_equal(mask[:24], _expected_mask(weight[:24], 0.5, block=(8, 2)))
    np.testing.assert_array_equal(mask[24:], _expected_mask(weight[24:], 0.25, block=(8, 2)))
    assert sparsifier.densities() == {"top": 0.5, "bottom": 0.25}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"block": (24, 1)}, "do not tile"),
        ({"start": 5, "end": 5}, "start < end"),
        ({"interval": 0}, "interval"),
    ],
)
def test_invalid_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BlockSparsifier.for_gru(_gru(), **kwargs)


def test_unknown_gate_name():
    with pytest.raises(ValueError, match="unknown GRU gates"):
        BlockSparsifier.for_gru(_gru(), {"forget": 0.1})


@pytest.mark.parametrize("regrow", [True, False])
def test_a_copy_masked_when_applied_follows_the_modules_trajectory(regrow):
    """EMA with decay 0 is the module itself: masking the copy exactly when :attr:`applied` says keeps
    it equal at every step, also while pruned weights regrow between the pruning steps."""
    from types import SimpleNamespace

    from vocoder.training import LPCNetTask

    gru = _gru()
    copy_ = copy.deepcopy(gru)
    sparsifier = BlockSparsifier.for_gru(gru, {"update": 0.25, "reset": 0.25, "candidate": 0.25},
                                         start=2, end=10, interval=4, regrow=regrow)
    task = SimpleNamespace(sparsifier=sparsifier)
    rng = torch.Generator().manual_seed(0)
    applied = []
    for step in range(1, 14):
        with torch.no_grad():  # an optimizer step that touches every weight (pruned ones regrow)
            for p in gru.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=rng))
        sparsifier.step(step)
        applied.append(sparsifier.applied)
        with torch.no_grad():  # EMA update with decay 0, then the task's masking rule
            for target, source in zip(copy_.parameters(), gru.parameters(), strict=True):
                target.copy_(source)
        LPCNetTask.after_ema_update(task, SimpleNamespace(gru_a=copy_))
        for (name, a), b in zip(gru.named_parameters(), copy_.parameters(), strict=True):
            torch.testing.assert_close(b, a, rtol=0, atol=0, msg=f"{name} at step {step}")
    if regrow:  # masks only at 2, 6 and from the end on (re-selected every step)
        assert applied == [False, True, False, False, False, True, False, False, False, True, True, True, True]
    else:  # held after every step once pruning started
        assert applied == [False] + [True] * 12
    assert (gru.weight_hh_l0 == 0).any()  # it did prune
