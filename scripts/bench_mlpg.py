"""Benchmark ``vocoder.losses.mlpg`` (banded Cholesky) against a dense ``torch.linalg.solve`` MLPG.

Both variants build the same normal equations ``A = sum_k W_kᵀ P_k W_k``, ``b = sum_k W_kᵀ P_k mu_k`` from
(B, T, D) means and per-frame variances. The dense one expands each (sequence, static dim) system to a
full T×T matrix, solves it with ``torch.linalg.solve`` and back-propagates through the solve and the
assembly with autograd; the banded one is the library function. The time is forward + backward of
``sum(y * g)`` w.r.t. means and variances. Prints a table, then ``mlpg_ms=<float> dense_ms=<float>``.

    python scripts/bench_mlpg.py                      # T=2000, static_dim=60, 3 windows, batch 8
    python scripts/bench_mlpg.py --frames 500 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch

from vocoder.losses import WindowSpec, delta_windows, mlpg
from vocoder.losses._mlpg import _mlpg_system, _prepare_mlpg_inputs


def dense_from_bands(bands: torch.Tensor) -> torch.Tensor:
    """Full symmetric (T, T) matrix from lower bands (w + 1, T) with ``bands[j, s] = A[s, s - j]``."""
    A = torch.diag(bands[0])
    for j in range(1, bands.shape[0]):
        A = A + torch.diag(bands[j, j:], -j) + torch.diag(bands[j, j:], j)
    return A


def dense_forward_backward(
    means: torch.Tensor, variances: torch.Tensor, windows: Sequence[WindowSpec], grad_out: torch.Tensor
) -> tuple[torch.Tensor, float, float]:
    """Dense MLPG of (B, T, D) means; gradients of ``sum(y * grad_out)`` land in the inputs' ``.grad``.

    Each (sequence, static dim) system gets its own ``torch.linalg.solve`` call on one T×T matrix: memory
    stays bounded (all 480 benchmark matrices at once would need ~8 GB) and MKL's batched LU is avoided,
    which with torch 2.13's MKL fails ("Parameter 6 was incorrect on entry to SLASWP") for batches of
    matrices of size ≥ 256 when torch uses more than one thread.

    Returns:
        Output (B, T, static_dim), forward seconds, backward seconds.
    """
    start = time.perf_counter()
    m, v, wins, _ = _prepare_mlpg_inputs(means, variances, windows, None)
    B, T, D = m.shape
    static_dim = D // len(wins)
    bands, rhs = _mlpg_system(m, v, wins, None)  # (T, w + 1, N), (T, N)
    # The dense solves run system by system on detached leaves whose gradients are then pushed through
    # the shared assembly graph in one go.
    bands_leaf = bands.detach().requires_grad_(True)
    rhs_leaf = rhs.detach().requires_grad_(True)
    g = grad_out.permute(1, 0, 2).reshape(T, B * static_dim)
    forward_s = time.perf_counter() - start
    backward_s = 0.0
    outputs = []
    for n in range(B * static_dim):
        start = time.perf_counter()
        y = torch.linalg.solve(dense_from_bands(bands_leaf[:, :, n].t()), rhs_leaf[:, n])
        forward_s += time.perf_counter() - start
        start = time.perf_counter()
        y.backward(g[:, n])
        backward_s += time.perf_counter() - start
        outputs.append(y.detach())
    start = time.perf_counter()
    torch.autograd.backward([bands, rhs], [bands_leaf.grad, rhs_leaf.grad])
    backward_s += time.perf_counter() - start
    y = torch.stack(outputs, dim=1).reshape(T, B, static_dim).permute(1, 0, 2)
    return y, forward_s, backward_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--static-dim", type=int, default=60)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the banded MLPG (median)")
    parser.add_argument("--dense-repeats", type=int, default=1, help="timed runs of the dense MLPG (median)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    windows = delta_windows(width=1)
    B, T, D = args.batch, args.frames, len(windows) * args.static_dim
    means0 = torch.randn(B, T, D)
    variances0 = torch.rand(B, T, D) + 0.5
    grad_out = torch.randn(B, T, args.static_dim)

    def banded_run() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, float]:
        m = means0.clone().requires_grad_(True)
        v = variances0.clone().requires_grad_(True)
        start = time.perf_counter()
        y = mlpg(m, v, windows)
        mid = time.perf_counter()
        y.backward(grad_out)
        end = time.perf_counter()
        return y.detach(), m.grad, v.grad, mid - start, end - mid

    def dense_run() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, float]:
        m = means0.clone().requires_grad_(True)
        v = variances0.clone().requires_grad_(True)
        y, fwd, bwd = dense_forward_backward(m, v, windows, grad_out)
        return y, m.grad, v.grad, fwd, bwd

    banded_run()  # warm-up
    banded = [banded_run() for _ in range(args.repeats)]
    dense = [dense_run() for _ in range(args.dense_repeats)]

    def summary(runs: list[tuple]) -> tuple[float, float, float]:
        fwd = statistics.median(r[3] for r in runs) * 1e3
        bwd = statistics.median(r[4] for r in runs) * 1e3
        total = statistics.median(r[3] + r[4] for r in runs) * 1e3
        return fwd, bwd, total

    (y_b, gm_b, gv_b, *_), (y_d, gm_d, gv_d, *_) = banded[-1], dense[-1]
    b_fwd, b_bwd, b_total = summary(banded)
    d_fwd, d_bwd, d_total = summary(dense)
    print(
        f"MLPG forward+backward: B={B} T={T} static_dim={args.static_dim} windows={len(windows)} float32 "
        f"CPU threads={args.threads}; median of {args.repeats} banded / {args.dense_repeats} dense runs"
    )
    print(f"{'implementation':<28}{'forward ms':>12}{'backward ms':>13}{'total ms':>12}")
    print(f"{'banded Cholesky (mlpg)':<28}{b_fwd:>12.1f}{b_bwd:>13.1f}{b_total:>12.1f}")
    print(f"{'dense torch.linalg.solve':<28}{d_fwd:>12.1f}{d_bwd:>13.1f}{d_total:>12.1f}")
    print(f"speed-up: {d_total / b_total:.1f}x")
    print(
        "max |banded - dense|: "
        f"y {float((y_b - y_d).abs().max()):.2e}, "
        f"d/dmeans {float((gm_b - gm_d).abs().max()):.2e}, "
        f"d/dvariances {float((gv_b - gv_d).abs().max()):.2e}"
    )
    print(f"mlpg_ms={b_total:.3f} dense_ms={d_total:.3f}")


if __name__ == "__main__":
    main()
