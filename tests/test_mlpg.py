"""MLPG: dense float64 references, nnmnkwii parity, gradchecks, padding, MGE loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vocoder.losses import (
    MGELoss,
    delta_windows,
    mlpg,
    unit_variance_mlpg,
    unit_variance_mlpg_matrix,
)
from vocoder.losses._mlpg import _banded_spd_solve

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "loss" / "terms"

WINDOWS = {
    "3tap": delta_windows(width=1),
    "5tap": delta_windows(width=2),
    "static_delta": delta_windows(width=1, order=1),
    # Asymmetric extents and a window wider than the others (bandwidth 3, edge 2).
    "asymmetric": [
        (0, 0, np.array([1.0])),
        (1, 2, np.array([0.3, -1.0, 0.2, 0.5])),
        (1, 0, np.array([-1.0, 1.0])),
    ],
}


# ----------------------------------------------------------------------------- references


def window_matrix(left: int, coeffs: np.ndarray, T: int) -> np.ndarray:
    """Truncated T×T window matrix, written out element by element."""
    W = np.zeros((T, T))
    for t in range(T):
        for m, c in enumerate(coeffs):
            col = t + m - left
            if 0 <= col < T:
                W[t, col] = c
    return W


def edge_mask(windows, T: int) -> np.ndarray:
    """(K, T) 0/1 weights: dynamic windows lose max(left, right) frames at both ends."""
    edge = max(max(left, right) for left, right, _ in windows)
    mask = np.ones((len(windows), T))
    mask[1:, :edge] = 0.0
    mask[1:, max(T - edge, 0) :] = 0.0
    return mask


def dense_mlpg(means: np.ndarray, variances: np.ndarray, windows) -> np.ndarray:
    """(WᵀPW)⁻¹WᵀPμ per static dim with the stacked (K·T, T) window matrix, in float64."""
    T, D = means.shape
    K = len(windows)
    sd = D // K
    W = np.concatenate([window_matrix(left, np.asarray(c), T) for left, _, c in windows], axis=0)
    mask = edge_mask(windows, T)
    out = np.zeros((T, sd))
    for d in range(sd):
        mu = np.concatenate([means[:, k * sd + d] for k in range(K)])
        prec = np.concatenate([mask[k] / variances[:, k * sd + d] for k in range(K)])
        WtP = W.T * prec[None, :]
        out[:, d] = np.linalg.solve(WtP @ W, WtP @ mu)
    return out


def dense_unit_matrix(windows, T: int) -> np.ndarray:
    W = np.concatenate([window_matrix(left, np.asarray(c), T) for left, _, c in windows], axis=0)
    prec = edge_mask(windows, T).reshape(-1)
    WtP = W.T * prec[None, :]
    return np.linalg.solve(WtP @ W, WtP)


def random_inputs(B: int, T: int, D: int, dtype=torch.float64):
    means = torch.randn(B, T, D, dtype=dtype)
    variances = torch.rand(B, T, D, dtype=dtype) * 2.0 + 0.2
    return means, variances


# ----------------------------------------------------------------------------- windows


def test_delta_windows_values():
    static, delta, accel = delta_windows(width=1)
    assert static[:2] == (0, 0) and np.array_equal(static[2], [1.0])
    assert delta[:2] == (1, 1) and np.allclose(delta[2], [-0.5, 0.0, 0.5], atol=1e-15)
    assert accel[:2] == (1, 1) and np.allclose(accel[2], [1.0, -2.0, 1.0], atol=1e-15)
    _, delta5, accel5 = delta_windows(width=2)
    assert np.allclose(delta5[2], [-0.2, -0.1, 0.0, 0.1, 0.2], atol=1e-15)
    assert np.allclose(accel5[2], np.array([2.0, -1.0, -2.0, -1.0, 2.0]) / 7.0, atol=1e-15)
    assert len(delta_windows(order=0)) == 1 and len(delta_windows(order=1)) == 2


@pytest.mark.parametrize("width", [1, 2, 3])
def test_delta_windows_differentiate_quadratics(width):
    T = 20
    t = np.arange(T, dtype=np.float64)
    a, b, c = 0.3, -1.1, 2.0
    y = a * t**2 + b * t + c
    _, delta, accel = delta_windows(width=width)
    interior = slice(width, T - width)
    slope = window_matrix(delta[0], delta[2], T) @ y
    curvature = window_matrix(accel[0], accel[2], T) @ y
    np.testing.assert_allclose(slope[interior], (2 * a * t + b)[interior])
    np.testing.assert_allclose(curvature[interior], 2 * a)


@pytest.mark.parametrize("bad", [[], [(1, 1, np.array([1.0, 2.0]))], [(-1, 0, np.array([1.0]))]])
def test_invalid_windows_raise(bad):
    with pytest.raises(ValueError):
        mlpg(torch.zeros(4, 3, dtype=torch.float64), None, bad)


def test_invalid_shapes_raise():
    windows = WINDOWS["3tap"]
    with pytest.raises(ValueError, match="multiple"):
        mlpg(torch.zeros(5, 7), None, windows)
    with pytest.raises(ValueError, match="broadcast"):
        mlpg(torch.zeros(5, 6), torch.ones(4, 6), windows)
    with pytest.raises(ValueError, match="lengths"):
        mlpg(torch.zeros(5, 6), None, windows, lengths=torch.tensor([5]))


# ----------------------------------------------------------------------------- forward values


@pytest.mark.parametrize("name", list(WINDOWS))
@pytest.mark.parametrize("T", [1, 2, 5, 23])
@pytest.mark.parametrize("variance_kind", ["per_frame", "global"])
def test_mlpg_matches_dense_reference(name, T, variance_kind):
    windows = WINDOWS[name]
    D = 3 * len(windows)
    means, variances = random_inputs(2, T, D)
    if variance_kind == "global":
        variances = variances[0, 0]  # (D,) for all frames
    out = mlpg(means, variances, windows)
    assert out.shape == (2, T, 3) and out.dtype == torch.float64
    for b in range(2):
        var_b = variances.expand(T, D) if variance_kind == "global" else variances[b]
        ref = dense_mlpg(means[b].numpy(), var_b.numpy(), windows)
        np.testing.assert_allclose(out[b].numpy(), ref, rtol=0, atol=1e-10)
        # The unbatched call gives the same result.
        single = mlpg(means[b], variances if variance_kind == "global" else variances[b], windows)
        np.testing.assert_allclose(single.numpy(), ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", list(WINDOWS))
def test_mlpg_recovers_consistent_trajectories(name):
    # If the means are exactly W y for some y, then y has zero weighted error for ANY precisions, so it is
    # the MLPG solution whatever the variances are.
    windows = WINDOWS[name]
    T, sd = 30, 4
    y = torch.randn(T, sd, dtype=torch.float64).cumsum(0)
    means = torch.cat([torch.from_numpy(window_matrix(w[0], w[2], T)) @ y for w in windows], dim=1)
    variances = torch.rand(T, sd * len(windows), dtype=torch.float64) * 10 + 1e-3
    torch.testing.assert_close(mlpg(means, variances, windows), y, rtol=0, atol=1e-9)


def test_float32_matches_float64():
    windows = WINDOWS["3tap"]
    means, variances = random_inputs(3, 200, 12)
    ref = mlpg(means, variances, windows)
    out = mlpg(means.float(), variances.float(), windows)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- padding / lengths


@pytest.mark.parametrize("name", ["3tap", "5tap", "asymmetric"])
def test_lengths_match_per_sequence(name):
    windows = WINDOWS[name]
    lengths = [19, 9, 4, 1]
    B, T, D = len(lengths), max(lengths), 2 * len(windows)
    means, variances = random_inputs(B, T, D)
    for b, n in enumerate(lengths):  # garbage that must not leak: NaN means, zero variances
        means[b, n:] = float("nan")
        variances[b, n:] = 0.0
    means.requires_grad_(True)
    variances.requires_grad_(True)
    out = mlpg(means, variances, windows, lengths=torch.tensor(lengths))
    weights = torch.randn_like(out)
    out.mul(weights).sum().backward()
    assert torch.isfinite(out).all()
    assert torch.isfinite(means.grad).all() and torch.isfinite(variances.grad).all()
    for b, n in enumerate(lengths):
        m = means.detach()[b, :n].clone().requires_grad_(True)
        v = variances.detach()[b, :n].clone().requires_grad_(True)
        single = mlpg(m, v, windows)
        single.mul(weights[b, :n]).sum().backward()
        torch.testing.assert_close(out[b, :n].detach(), single.detach(), rtol=0, atol=1e-12)
        assert torch.all(out[b, n:] == 0)
        torch.testing.assert_close(means.grad[b, :n], m.grad, rtol=0, atol=1e-12)
        torch.testing.assert_close(variances.grad[b, :n], v.grad, rtol=0, atol=1e-12)
        assert torch.all(means.grad[b, n:] == 0) and torch.all(variances.grad[b, n:] == 0)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("name", ["3tap", "5tap", "asymmetric"])
@pytest.mark.parametrize(
    "case, fast_mode",
    [("unbatched", True), ("batched", True), ("global_variance", True), ("lengths", False)],
)
def test_mlpg_gradcheck(name, case, fast_mode):
    # Full Jacobians for the padded-batch case (which exercises everything); random projections
    # (gradcheck's fast mode) for the others to keep the file quick.
    windows = WINDOWS[name]
    T, D = 9, 2 * len(windows)
    means, variances = random_inputs(2, T, D)
    lengths = None
    if case == "unbatched":
        means, variances = means[0], variances[0]
    elif case == "global_variance":
        variances = variances[0, 0]
    elif case == "lengths":
        lengths = torch.tensor([T, 6])
    means.requires_grad_(True)
    variances.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda m, v: mlpg(m, v, windows, lengths=lengths),
        (means, variances),
        eps=1e-6,
        atol=1e-7,
        fast_mode=fast_mode,
    )


def test_mlpg_gradgradcheck():
    windows = WINDOWS["3tap"]
    means, variances = random_inputs(2, 6, 6)
    means.requires_grad_(True)
    variances.requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda m, v: mlpg(m, v, windows), (means, variances))


@pytest.mark.parametrize("w", [1, 2, 4])
def test_banded_solve_matches_dense_and_gradcheck(w):
    T, N = 11, 3
    bands = torch.randn(T, w + 1, N, dtype=torch.float64) * 0.3
    bands[:, 0] = bands[:, 0].abs() + 2.0 * w  # diagonally dominant, hence SPD
    for j in range(1, w + 1):
        bands[:j, j] = 0.0
    rhs = torch.randn(T, N, dtype=torch.float64)
    x = _banded_spd_solve(bands, rhs)
    for n in range(N):
        A = torch.zeros(T, T, dtype=torch.float64)
        for j in range(w + 1):
            A += torch.diag(bands[j:, j, n], -j)
            if j:
                A += torch.diag(bands[j:, j, n], j)
        torch.testing.assert_close(x[:, n], torch.linalg.solve(A, rhs[:, n]), rtol=0, atol=1e-12)
    # Only the in-matrix band entries are free parameters.
    inside = (torch.arange(T)[:, None] >= torch.arange(w + 1)[None, :])[:, :, None].double()

    def solve(b, r):
        return _banded_spd_solve(b * inside, r)

    inputs = (bands.requires_grad_(True), rhs.requires_grad_(True))
    assert torch.autograd.gradcheck(solve, inputs)
    assert torch.autograd.gradgradcheck(solve, inputs)


# ----------------------------------------------------------------------------- unit variance


@pytest.mark.parametrize("name", list(WINDOWS))
@pytest.mark.parametrize("T", [1, 4, 16])
def test_unit_variance_matrix_matches_dense(name, T):
    windows = WINDOWS[name]
    R = unit_variance_mlpg_matrix(windows, T, dtype=torch.float64)
    assert R.shape == (T, len(windows) * T)
    np.testing.assert_allclose(R.numpy(), dense_unit_matrix(windows, T), rtol=0, atol=1e-10)
    assert unit_variance_mlpg_matrix(windows, T).dtype == torch.get_default_dtype()


@pytest.mark.parametrize("name", ["3tap", "5tap"])
def test_unit_variance_mlpg_layouts_match_mlpg(name):
    windows = WINDOWS[name]
    B, T, K, sd = 2, 12, len(windows), 3
    R = unit_variance_mlpg_matrix(windows, T, dtype=torch.float64)
    means = torch.randn(B, T, K * sd, dtype=torch.float64)
    ref = mlpg(means, None, windows)
    reshaped = means.reshape(B, T, K, sd).transpose(1, 2).reshape(B, K * T, sd)
    torch.testing.assert_close(unit_variance_mlpg(R, means), ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(unit_variance_mlpg(R, reshaped), ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(unit_variance_mlpg(R, means[1]), ref[1], rtol=0, atol=1e-10)
    torch.testing.assert_close(unit_variance_mlpg(R.numpy(), reshaped[1]), ref[1], rtol=0, atol=1e-10)
    means.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m: unit_variance_mlpg(R, m), (means,))
    with pytest.raises(ValueError, match="rows"):
        unit_variance_mlpg(R, means[:, :5])


# ----------------------------------------------------------------------------- nnmnkwii parity


@pytest.fixture
def nnmnkwii_modules():
    paramgen = pytest.importorskip("nnmnkwii.paramgen")
    autograd = pytest.importorskip("nnmnkwii.autograd")
    return paramgen, autograd


@pytest.mark.parametrize("name", list(WINDOWS))
@pytest.mark.parametrize("T", [1, 3, 4, 40])
@pytest.mark.parametrize("variance_kind", ["per_frame", "global"])
def test_paramgen_mlpg_matches_nnmnkwii(nnmnkwii_modules, name, T, variance_kind):
    paramgen, _ = nnmnkwii_modules
    windows = WINDOWS[name]
    D = 4 * len(windows)
    rng = np.random.default_rng(1)
    means = rng.standard_normal((T, D))
    variances = rng.uniform(0.2, 2.0, (T, D) if variance_kind == "per_frame" else (D,))
    ref = paramgen.mlpg(means, variances, windows)
    out = mlpg(torch.from_numpy(means), torch.from_numpy(variances), windows)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["3tap", "5tap", "asymmetric"])
def test_autograd_mlpg_matches_nnmnkwii(nnmnkwii_modules, name):
    _, autograd = nnmnkwii_modules
    windows = WINDOWS[name]
    T, D = 25, 3 * len(windows)
    means = torch.randn(T, D)
    variances = torch.rand(T, D) + 0.3
    grad_out = torch.randn(T, 3)

    m_ref = means.clone().requires_grad_(True)
    y_ref = autograd.mlpg(m_ref, variances, windows)
    y_ref.backward(grad_out)

    m = means.double().requires_grad_(True)
    y = mlpg(m, variances.double(), windows)
    y.backward(grad_out.double())
    torch.testing.assert_close(y.float(), y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.grad.float(), m_ref.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(WINDOWS))
@pytest.mark.parametrize("T", [3, 5, 30])
def test_unit_variance_matrix_matches_nnmnkwii(nnmnkwii_modules, name, T):
    paramgen, _ = nnmnkwii_modules
    windows = WINDOWS[name]
    ref = paramgen.unit_variance_mlpg_matrix(windows, T)
    out = unit_variance_mlpg_matrix(windows, T, dtype=torch.float64)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("layout", ["2d", "reshaped", "batched", "batched_reshaped"])
def test_unit_variance_mlpg_matches_nnmnkwii(nnmnkwii_modules, layout):
    paramgen, autograd = nnmnkwii_modules
    windows = WINDOWS["3tap"]
    B, T, K, sd = 2, 15, 3, 4
    R = torch.from_numpy(paramgen.unit_variance_mlpg_matrix(windows, T))
    means = torch.randn(B, T, K * sd)
    if layout in ("reshaped", "batched_reshaped"):
        means = means.reshape(B, T, K, sd).transpose(1, 2).reshape(B, K * T, sd)
    if layout in ("2d", "reshaped"):
        means = means[0]
    grad_seed = torch.randn(B, T, sd) if means.dim() == 3 else torch.randn(T, sd)

    m_ref = means.clone().requires_grad_(True)
    y_ref = autograd.unit_variance_mlpg(R, m_ref)
    y_ref.backward(grad_seed)
    m = means.clone().requires_grad_(True)
    y = unit_variance_mlpg(R, m)
    y.backward(grad_seed)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(m.grad, m_ref.grad)


# ----------------------------------------------------------------------------- MGE loss


def test_mge_loss_matches_dense_reference_with_lengths():
    windows = WINDOWS["3tap"]
    lengths = [14, 7, 3]
    B, T, sd = 3, 14, 2
    predicted, variances = random_inputs(B, T, 3 * sd)
    target = torch.randn(B, T, sd, dtype=torch.float64)
    for b, n in enumerate(lengths):
        predicted[b, n:] = float("nan")
        target[b, n:] = float("nan")
    loss = MGELoss(windows)(predicted, target, lengths=torch.tensor(lengths), variances=variances)
    sq, count = 0.0, 0
    for b, n in enumerate(lengths):
        ref = dense_mlpg(predicted[b, :n].numpy(), variances[b, :n].numpy(), windows)
        sq += float(((ref - target[b, :n].numpy()) ** 2).sum())
        count += n * sd
    assert loss.item() == pytest.approx(sq / count, rel=1e-10)
    total = MGELoss(windows, reduction="sum")(predicted, target, lengths=lengths, variances=variances)
    assert total.item() == pytest.approx(sq, rel=1e-10)


def test_mge_loss_unit_variance_and_gradcheck():
    windows = WINDOWS["5tap"]
    predicted = torch.randn(2, 7, 6, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 7, 2, dtype=torch.float64)
    expected = (mlpg(predicted, torch.ones(6, dtype=torch.float64), windows) - target).square().mean()
    loss_fn = MGELoss(windows)
    torch.testing.assert_close(loss_fn(predicted, target), expected)
    assert torch.autograd.gradcheck(lambda p: loss_fn(p, target, lengths=torch.tensor([7, 5])), (predicted,))
    with pytest.raises(ValueError, match="target"):
        loss_fn(predicted, target[..., :1])
    with pytest.raises(ValueError, match="reduction"):
        MGELoss(windows, reduction="max")


def test_mge_config_instantiates():
    loss_fn = instantiate(OmegaConf.load(CONFIGS / "mge.yaml"))
    assert isinstance(loss_fn, MGELoss)
    expected = delta_windows(width=1)
    assert len(loss_fn.windows) == len(expected)
    for (left, right, coeffs), (el, er, ec) in zip(loss_fn.windows, expected, strict=True):
        assert (left, right) == (el, er)
        np.testing.assert_allclose(coeffs, ec, atol=1e-15)
    predicted = torch.randn(2, 10, 9)
    target = torch.randn(2, 10, 3)
    torch.testing.assert_close(loss_fn(predicted, target), MGELoss(expected)(predicted, target))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mlpg_cuda_matches_cpu():
    windows = WINDOWS["3tap"]
    means, variances = random_inputs(3, 50, 9, dtype=torch.float32)
    lengths = torch.tensor([50, 31, 7])
    m = means.cuda().requires_grad_(True)
    v = variances.cuda().requires_grad_(True)
    out = mlpg(m, v, windows, lengths=lengths.cuda())
    out.square().sum().backward()
    m_cpu = means.clone().requires_grad_(True)
    v_cpu = variances.clone().requires_grad_(True)
    ref = mlpg(m_cpu, v_cpu, windows, lengths=lengths)
    ref.square().sum().backward()
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(m.grad.cpu(), m_cpu.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(v.grad.cpu(), v_cpu.grad, rtol=1e-4, atol=1e-5)
