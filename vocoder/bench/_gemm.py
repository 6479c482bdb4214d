"""The machine's own float32 GEMM rate on shapes like the models': a speed reference measured in the same run.

:func:`gemm_reference` times torch (MKL) and numpy (OpenBLAS) products on :data:`GEMM_SHAPES` at 1 and 2
threads; :func:`gemm_fraction` expresses a model's achieved GFLOP/s as a fraction of the best of them,
a speed figure that carries over between CPUs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

#: ``(m, k, n)`` of the reference GEMMs ``(m × k) · (k × n)``, float32, by name
GEMM_SHAPES: dict[str, tuple[int, int, int]] = {
    # LPCNet GRU_A 384: the recurrent product of one training time step at batch 32 (3 gates)
    "lpcnet_gru_a_step": (32, 384, 3 * 384),
    # LPCNet GRU_A 384: the input product over a block of B·T = 4096 samples (384 + 128 inputs)
    "lpcnet_gru_a_input": (4096, 512, 3 * 384),
    # IAF student: a 64 → 128 (gate) 1×1 convolution over 1,280 samples
    "iaf_conv": (1280, 64, 128),
    "square_1024": (1024, 1024, 1024),
}
#: the reference rates' thread counts
GEMM_THREADS = (1, 2)


@dataclass(frozen=True)
class GemmRate:
    """A measured float32 GEMM rate: ``(m × k) · (k × n)`` with ``backend`` on ``threads`` threads."""

    backend: str
    name: str
    m: int
    k: int
    n: int
    threads: int
    gflops: float

    @property
    def flops(self) -> int:
        """Floating-point operations of one product (``2·m·k·n``)."""
        return 2 * self.m * self.k * self.n


def _best_seconds(call: Callable[[], object], min_seconds: float) -> float:
    """Best seconds per call over a few timed chunks of about ``min_seconds / 4`` each."""
    call()  # warm-up: allocation, library initialization
    count, elapsed = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(count):
            call()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds / 4 or count >= 1 << 20:
            break
        count *= 2
    best = elapsed / count
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(count):
            call()
        best = min(best, (time.perf_counter() - start) / count)
    return best


def gemm_rate(
    m: int, k: int, n: int, threads: int, backend: str = "torch", min_seconds: float = 0.2
) -> float:
    """GFLOP/s of a float32 ``(m × k) · (k × n)`` product (best of a few timed chunks).

    Args:
        m, k, n: the sizes.
        threads: threads of the BLAS (torch intra-op threads, or numpy's BLAS threads via threadpoolctl);
            restored afterwards.
        backend: ``torch`` (``torch.mm``: MKL in the x86 wheels) or ``numpy`` (``numpy.matmul``: OpenBLAS
            in the wheels).
        min_seconds: about how long to time it.

    Raises:
        ValueError: an unknown backend.
    """
    flops = 2.0 * m * k * n
    if backend == "torch":
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            generator = torch.Generator().manual_seed(0)
            a = torch.randn(m, k, generator=generator)
            b = torch.randn(k, n, generator=generator)
            out = torch.empty(m, n)
            seconds = _best_seconds(lambda: torch.mm(a, b, out=out), min_seconds)
        finally:
            torch.set_num_threads(previous)
    elif backend == "numpy":
        import numpy as np
        from threadpoolctl import threadpool_limits

        rng = np.random.default_rng(0)
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        with threadpool_limits(limits=threads, user_api="blas"):
            seconds = _best_seconds(lambda: np.matmul(a, b, out=out), min_seconds)
    else:
        raise ValueError(f"unknown GEMM backend {backend!r} (choose torch or numpy)")
    return flops / seconds / 1e9


def gemm_reference(
    shapes: Mapping[str, tuple[int, int, int]] | None = None,
    threads: Sequence[int] = GEMM_THREADS,
    backends: Sequence[str] = ("torch", "numpy"),
    min_seconds: float = 0.2,
) -> list[GemmRate]:
    """The machine's float32 GEMM rates on shapes like the models', for each backend and thread count.

    Args:
        shapes: ``name → (m, k, n)`` (None: :data:`GEMM_SHAPES`).
        threads: thread counts to measure at.
        backends: ``torch`` and/or ``numpy``.
        min_seconds: about how long each rate is timed.

    Returns:
        One :class:`GemmRate` per backend, shape and thread count.
    """
    shapes = GEMM_SHAPES if shapes is None else shapes
    return [
        GemmRate(backend, name, m, k, n, count, gemm_rate(m, k, n, count, backend, min_seconds))
        for backend in backends
        for count in threads
        for name, (m, k, n) in shapes.items()
    ]


def best_gemm_gflops(rates: Iterable[GemmRate], threads: int, backend: str | None = None) -> float:
    """The best reference rate at ``threads`` threads (of ``backend``, or any); NaN without one."""
    values = [r.gflops for r in rates if r.threads == threads and (backend is None or r.backend == backend)]
    return max(values) if values else math.nan


def gemm_fraction(
    flops: float, seconds: float, rates: Iterable[GemmRate], threads: int, backend: str | None = None
) -> float:
    """A model's achieved GFLOP/s as a fraction of the machine's best reference GEMM rate.

    Args:
        flops: floating-point operations the model did (multiply and add counted apart).
        seconds: the wall-clock seconds it took.
        rates: :func:`gemm_reference` of the same run.
        threads: the model's threads (compared with the reference at the same count).
        backend: compare with this backend's rates only (None: the best of all).

    Returns:
        ``(flops / seconds) / best`` (NaN when there is no reference at ``threads``).
    """
    best = best_gemm_gflops(rates, threads, backend)
    if not (seconds > 0 and best > 0):
        return math.nan
    return flops / seconds / 1e9 / best


def gemm_lines(rates: Sequence[GemmRate]) -> list[str]:
    """The reference rates as a table: one row per backend and shape, one column per thread count."""
    if not rates:
        return []
    counts = sorted({r.threads for r in rates})
    by_key = {(r.backend, r.name, r.threads): r for r in rates}
    rows = list(dict.fromkeys((r.backend, r.name, r.m, r.k, r.n) for r in rates))
    head = f"{'float32 GEMM reference, GFLOP/s':<52}" + "".join(f"{f'{c} thr':>9}" for c in counts)
    out = [head]
    for backend, name, m, k, n in rows:
        label = f"{backend} {name} ({m}x{k})·({k}x{n})"
        cells = "".join(
            f"{by_key[(backend, name, c)].gflops:>9.1f}" if (backend, name, c) in by_key else f"{'-':>9}"
            for c in counts
        )
        out.append(f"{label:<52}{cells}")
    return out


#: seconds each reference rate is timed: full runs, and ``--quick`` smoke runs
GEMM_MIN_SECONDS = 0.2
GEMM_QUICK_MIN_SECONDS = 0.02


def measure_gemm_reference(quick: bool = False) -> list[GemmRate]:
    """:func:`gemm_reference` on :data:`GEMM_SHAPES` at 1 and 2 threads, torch and numpy (a few seconds;
    ``quick``: about a second, rates only indicative)."""
    return gemm_reference(min_seconds=GEMM_QUICK_MIN_SECONDS if quick else GEMM_MIN_SECONDS)
