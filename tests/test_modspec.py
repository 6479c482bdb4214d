"""Modulation spectrum: closed-form DFT references, nnmnkwii parity, gradchecks, ModSpec loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vocoder.losses import ModSpecLoss, log_modspec, modspec

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "loss" / "terms"


def dft_power(y: np.ndarray, n: int, norm: str | None) -> np.ndarray:
    """|sum_t y[t] exp(-2πi f t / n)|² for f = 0..n//2 from the DFT definition (first n frames only)."""
    T = min(y.shape[0], n)
    f = np.arange(n // 2 + 1)[:, None]
    t = np.arange(T)[None, :]
    spectrum = np.exp(-2j * np.pi * f * t / n) @ y[:T]
    scale = {None: 1.0, "backward": 1.0, "ortho": 1.0 / np.sqrt(n), "forward": 1.0 / n}[norm]
    return np.abs(spectrum * scale) ** 2


@pytest.mark.parametrize("T, n", [(10, 16), (16, 16), (25, 16), (7, 9), (50, 2048)])
@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
def test_modspec_matches_dft_definition(T, n, norm):
    y = torch.randn(3, T, 4, dtype=torch.float64)
    out = modspec(y, n=n, norm=norm)
    assert out.shape == (3, n // 2 + 1, 4) and out.dtype == torch.float64
    for b in range(3):
        np.testing.assert_allclose(out[b].numpy(), dft_power(y[b].numpy(), n, norm), rtol=1e-10, atol=1e-10)
        # batched and single FFTs may take different SIMD/threading paths (pocketfft/MKL plans differ
        # in the last bits on AMD Zen 3 vs Intel AVX-512), so equal up to float64 rounding, not bits
        scale = float(out[b].abs().max())
        torch.testing.assert_close(modspec(y[b], n=n, norm=norm), out[b], rtol=1e-12, atol=1e-12 * scale)


def test_modspec_parseval():
    # With norm="ortho" and n >= T the full DFT preserves energy; the one-sided rfft counts every bin
    # except DC and Nyquist (n even) twice.
    n, y = 64, torch.randn(40, 3, dtype=torch.float64)
    ms = modspec(y, n=n, norm="ortho")
    energy = ms[0] + 2.0 * ms[1:-1].sum(0) + ms[-1]
    torch.testing.assert_close(energy, y.square().sum(0), rtol=1e-12, atol=1e-12)


def test_modspec_float32_and_validation():
    y = torch.randn(30, 2)
    out = modspec(y, n=32)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), dft_power(y.double().numpy(), 32, None), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        modspec(torch.randn(3), n=8)


def test_log_modspec_floor():
    for dtype in (torch.float32, torch.float64):
        zeros = torch.zeros(2, 5, 3, dtype=dtype)
        out = log_modspec(zeros, n=8)
        assert torch.isfinite(out).all()
        assert torch.all(out == torch.log(torch.tensor(torch.finfo(dtype).tiny, dtype=dtype)))
    y = torch.randn(12, 3, dtype=torch.float64)
    torch.testing.assert_close(log_modspec(y, n=16), modspec(y, n=16).log())
    assert torch.all(log_modspec(torch.zeros(4, 1, dtype=torch.float64), n=8, floor=1e-3) == np.log(1e-3))


@pytest.mark.parametrize("fn", [modspec, log_modspec])
@pytest.mark.parametrize("T, n", [(6, 10), (9, 8)])
@pytest.mark.parametrize("norm", [None, "ortho"])
def test_modspec_gradcheck(fn, T, n, norm):
    y = torch.randn(2, T, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: fn(x, n=n, norm=norm), (y,))
    assert torch.autograd.gradcheck(lambda x: fn(x[0], n=n, norm=norm), (y,))


def test_modspec_gradgradcheck():
    y = torch.randn(2, 6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: log_modspec(x, n=8), (y,))


# ----------------------------------------------------------------------------- nnmnkwii parity


@pytest.mark.parametrize("T, n", [(20, 32), (33, 64), (40, 2048)])
@pytest.mark.parametrize("norm", [None, "ortho"])
def test_modspec_matches_nnmnkwii(T, n, norm):
    preprocessing = pytest.importorskip("nnmnkwii.preprocessing")
    autograd = pytest.importorskip("nnmnkwii.autograd")
    y = torch.randn(T, 5, dtype=torch.float64)
    np.testing.assert_allclose(
        modspec(y, n=n, norm=norm).numpy(), preprocessing.modspec(y.numpy(), n=n, norm=norm), rtol=1e-12
    )
    # nnmnkwii's autograd version (hand-written backward, float32 gradients).
    grad_seed = torch.randn(n // 2 + 1, 5, dtype=torch.float64)
    y_ref = y.clone().requires_grad_(True)
    ms_ref = autograd.modspec(y_ref, n=n, norm=norm)
    ms_ref.backward(grad_seed)
    y_ours = y.clone().requires_grad_(True)
    ms = modspec(y_ours, n=n, norm=norm)
    ms.backward(grad_seed)
    torch.testing.assert_close(ms, ms_ref, rtol=1e-12, atol=1e-12)
    scale = y_ours.grad.abs().max()
    torch.testing.assert_close(y_ours.grad / scale, y_ref.grad.double() / scale, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- ModSpec loss


@pytest.mark.parametrize("log", [True, False])
@pytest.mark.parametrize("num_bins", [None, 5])
def test_modspec_loss_lengths_match_per_sequence(log, num_bins):
    lengths = [30, 12, 3]
    B, T, D, n = 3, 30, 4, 64
    generated = torch.randn(B, T, D, dtype=torch.float64)
    natural = torch.randn(B, T, D, dtype=torch.float64)
    for b, length in enumerate(lengths):
        generated[b, length:] = float("nan")
        natural[b, length:] = float("inf")
    loss = ModSpecLoss(n=n, log=log, num_bins=num_bins)(generated, natural, lengths=torch.tensor(lengths))
    bins = num_bins or n // 2 + 1
    total = 0.0
    for b, length in enumerate(lengths):
        g = dft_power(generated[b, :length].numpy(), n, None)[:bins]
        r = dft_power(natural[b, :length].numpy(), n, None)[:bins]
        if log:
            g, r = np.log(g), np.log(r)
        total += float(((g - r) ** 2).sum())
    assert loss.item() == pytest.approx(total / (B * bins * D), rel=1e-9)


def test_modspec_loss_zero_for_identical_and_gradcheck():
    loss_fn = ModSpecLoss(n=16, log=True)
    natural = torch.randn(2, 10, 3, dtype=torch.float64)
    assert loss_fn(natural, natural.clone()).item() == 0.0
    generated = torch.randn(2, 10, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda g: loss_fn(g, natural, lengths=[10, 6]), (generated,))
    ortho = ModSpecLoss(n=16, log=False, norm="ortho")
    assert torch.autograd.gradcheck(lambda g: ortho(g, natural), (generated,))


def test_modspec_loss_validation():
    with pytest.raises(ValueError, match="exceed"):
        ModSpecLoss(n=8)(torch.randn(1, 9, 2), torch.randn(1, 9, 2))
    with pytest.raises(ValueError, match="mismatch"):
        ModSpecLoss(n=16)(torch.randn(1, 9, 2), torch.randn(1, 8, 2))
    with pytest.raises(ValueError, match="num_bins"):
        ModSpecLoss(n=16, num_bins=10)
    with pytest.raises(ValueError, match="norm"):
        ModSpecLoss(norm="unit")
    with pytest.raises(ValueError, match="lengths"):
        ModSpecLoss(n=16)(torch.randn(2, 9, 2), torch.randn(2, 9, 2), lengths=[9])


def test_modspec_config_instantiates():
    loss_fn = instantiate(OmegaConf.load(CONFIGS / "modspec.yaml"))
    assert isinstance(loss_fn, ModSpecLoss)
    assert (loss_fn.n, loss_fn.log, loss_fn.norm, loss_fn.num_bins) == (2048, True, None, None)
    a, b = torch.randn(2, 40, 3), torch.randn(2, 40, 3)
    torch.testing.assert_close(loss_fn(a, b), (log_modspec(a) - log_modspec(b)).square().mean())
