"""Benchmark of :func:`vocoder.losses.mlpg` (banded Cholesky) against a dense ``torch.linalg.solve`` MLPG.

Both variants build the same normal equations ``A = sum_k W_kᵀ P_k W_k``, ``b = sum_k W_kᵀ P_k mu_k`` from
(B, T, D) means and per-frame variances. The dense one expands each (sequence, static dim) system to a
full T×T matrix, solves it with ``torch.linalg.solve`` and back-propagates through the solve and the
assembly with autograd; the banded one is the library function. The time is forward + backward of
``sum(y * g)`` w.r.t. means and variances (medians over the timed runs).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from vocoder.bench._common import Metric, peak_rss_mb
from vocoder.bench._load import MachineProbe
from vocoder.bench._machine import MachineReport, machine_report

if TYPE_CHECKING:  # torch is imported where it is used: ``vocoder-bench`` itself never needs it
    import torch

    from vocoder.losses import WindowSpec

NAME = "mlpg"


@dataclass
class MLPGSettings:
    """Sizes of the MLPG benchmark (defaults: T = 2000, 60 static dims, 3 windows, batch 8).

    Attributes:
        frames: T.
        static_dim: static feature dimensions.
        batch: sequences.
        threads: torch threads.
        repeats: timed runs of the banded MLPG (median).
        dense_repeats: timed runs of the dense MLPG (median).
        quick: tiny sizes (smoke runs).
    """

    frames: int = 2000
    static_dim: int = 60
    batch: int = 8
    threads: int = 2
    repeats: int = 5
    dense_repeats: int = 1
    quick: bool = False

    @classmethod
    def quick_settings(cls) -> MLPGSettings:
        """Tiny sizes: T = 64, 4 static dims, batch 2, one thread, one dense run."""
        return cls(frames=64, static_dim=4, batch=2, threads=1, repeats=2, dense_repeats=1, quick=True)


@dataclass
class MLPGResult:
    """Forward / backward / total milliseconds of both implementations and their largest differences."""

    settings: MLPGSettings
    windows: int
    banded_forward_ms: float
    banded_backward_ms: float
    banded_ms: float
    dense_forward_ms: float
    dense_backward_ms: float
    dense_ms: float
    max_diff_y: float
    max_diff_means: float
    max_diff_variances: float
    peak_rss_mb: float
    machine: MachineReport = field(default_factory=MachineReport)

    def summary_line(self) -> str:
        """``mlpg_ms=<float> dense_ms=<float>`` (+ `` cpu=... isa=... untrusted=...``)."""
        return f"mlpg_ms={self.banded_ms:.3f} dense_ms={self.dense_ms:.3f}" + self.machine.summary_suffix()

    def lines(self) -> list[str]:
        """Everything ``scripts/bench_mlpg.py`` prints, the summary line last."""
        cfg = self.settings
        return [
            f"MLPG forward+backward: B={cfg.batch} T={cfg.frames} static_dim={cfg.static_dim} "
            f"windows={self.windows} float32 CPU threads={cfg.threads}; "
            f"median of {cfg.repeats} banded / {cfg.dense_repeats} dense runs",
            f"{'implementation':<28}{'forward ms':>12}{'backward ms':>13}{'total ms':>12}",
            f"{'banded Cholesky (mlpg)':<28}{self.banded_forward_ms:>12.1f}{self.banded_backward_ms:>13.1f}"
            f"{self.banded_ms:>12.1f}",
            f"{'dense torch.linalg.solve':<28}{self.dense_forward_ms:>12.1f}{self.dense_backward_ms:>13.1f}"
            f"{self.dense_ms:>12.1f}",
            f"speed-up: {self.dense_ms / self.banded_ms:.1f}x",
            "max |banded - dense|: "
            f"y {self.max_diff_y:.2e}, d/dmeans {self.max_diff_means:.2e}, "
            f"d/dvariances {self.max_diff_variances:.2e}",
            *self.machine.lines(),
            self.summary_line(),
        ]

    def metrics(self) -> list[Metric]:
        """The figures of the combined ``vocoder-bench`` table."""
        cfg = self.settings
        size = f"B={cfg.batch} T={cfg.frames} D={cfg.static_dim}x{self.windows}, {cfg.threads} thr"
        return [
            Metric(NAME, "mlpg_ms", f"MLPG banded forward+backward, {size}", self.banded_ms, "ms"),
            Metric(NAME, "dense_ms", f"MLPG dense solve forward+backward, {size}", self.dense_ms, "ms"),
            Metric(NAME, "speedup", "MLPG banded vs dense", self.dense_ms / self.banded_ms, "x"),
            Metric(NAME, "peak_rss_mb", "MLPG benchmark peak RSS", self.peak_rss_mb, "MB"),
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the worker protocol)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLPGResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            **{
                **data,
                "settings": MLPGSettings(**data["settings"]),
                "machine": MachineReport.from_dict(data.get("machine")),
            }
        )


def dense_from_bands(bands: torch.Tensor) -> torch.Tensor:
    """Full symmetric matrix from lower bands.

    Args:
        bands: (w + 1, T) with ``bands[j, s] = A[s, s - j]``.

    Returns:
        (T, T) symmetric banded matrix.
    """
    import torch

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

    Args:
        means: (B, T, D) leaf tensor requiring grad, D = windows · static_dim.
        variances: (B, T, D) leaf tensor requiring grad.
        windows: the delta windows.
        grad_out: (B, T, static_dim) upstream gradient.

    Returns:
        Output (B, T, static_dim), forward seconds, backward seconds.
    """
    import torch

    from vocoder.losses import mlpg_banded_system

    start = time.perf_counter()
    B, T, D = means.shape
    static_dim = D // len(windows)
    bands, rhs = mlpg_banded_system(means, variances, windows)  # (T, w + 1, N), (T, N)
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


def run_mlpg(settings: MLPGSettings | None = None) -> MLPGResult:
    """Time banded and dense MLPG forward + backward on random float32 inputs.

    Args:
        settings: sizes (None: the defaults).

    Returns:
        The measurements (medians) and the largest output / gradient differences between the two.
    """
    import torch

    from vocoder.losses import delta_windows, mlpg

    settings = settings or MLPGSettings()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    probe = MachineProbe(settings.threads).__enter__()
    try:
        torch.manual_seed(0)
        windows = delta_windows(width=1)
        B, T, D = settings.batch, settings.frames, len(windows) * settings.static_dim
        means0 = torch.randn(B, T, D)
        variances0 = torch.rand(B, T, D) + 0.5
        grad_out = torch.randn(B, T, settings.static_dim)

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
        banded = [banded_run() for _ in range(settings.repeats)]
        dense = [dense_run() for _ in range(settings.dense_repeats)]
    finally:
        probe.__exit__(None, None, None)
        torch.set_num_threads(previous_threads)

    def summary(runs: list[tuple]) -> tuple[float, float, float]:
        fwd = statistics.median(r[3] for r in runs) * 1e3
        bwd = statistics.median(r[4] for r in runs) * 1e3
        total = statistics.median(r[3] + r[4] for r in runs) * 1e3
        return fwd, bwd, total

    (y_b, gm_b, gv_b, *_), (y_d, gm_d, gv_d, *_) = banded[-1], dense[-1]
    b_fwd, b_bwd, b_total = summary(banded)
    d_fwd, d_bwd, d_total = summary(dense)
    return MLPGResult(
        settings=settings,
        windows=len(windows),
        banded_forward_ms=b_fwd,
        banded_backward_ms=b_bwd,
        banded_ms=b_total,
        dense_forward_ms=d_fwd,
        dense_backward_ms=d_bwd,
        dense_ms=d_total,
        max_diff_y=float((y_b - y_d).abs().max()),
        max_diff_means=float((gm_b - gm_d).abs().max()),
        max_diff_variances=float((gv_b - gv_d).abs().max()),
        peak_rss_mb=peak_rss_mb(),
        machine=machine_report(probe, settings.threads),
    )


def worker(params: dict[str, Any]) -> dict[str, Any]:
    """``vocoder-bench`` worker: :func:`run_mlpg` with :class:`MLPGSettings` ``params``."""
    return run_mlpg(MLPGSettings(**params)).to_dict()
