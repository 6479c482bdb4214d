"""Benchmark ``vocoder.losses.mlpg`` (banded Cholesky) against a dense ``torch.linalg.solve`` MLPG.

Both variants build the same normal equations ``A = sum_k W_kᵀ P_k W_k``, ``b = sum_k W_kᵀ P_k mu_k`` from
(B, T, D) means and per-frame variances. The dense one expands each (sequence, static dim) system to a
full T×T matrix, solves it with ``torch.linalg.solve`` and back-propagates through the solve and the
assembly with autograd; the banded one is the library function. The time is forward + backward of
``sum(y * g)`` w.r.t. means and variances. Prints a table, then ``mlpg_ms=<float> dense_ms=<float>``.
Before the last line: the machine (CPU model, vector ISA, BLAS libraries, threads), the load during the run
(``WARNING`` lines when other processes used more than 0.3 of each CPU or CPU time / wall time is far from
the thread count), and the machine's own float32 GEMM rates at 1 and 2 threads measured in the same run
(:mod:`vocoder.bench._machine`). The last line ends with
``cpu=<model> isa=<avx2|avx512|amx> untrusted=<0|1>``.
The measuring code is :func:`vocoder.bench.run_mlpg` (also run by ``vocoder-bench``).

    python scripts/bench_mlpg.py                      # T=2000, static_dim=60, 3 windows, batch 8
    python scripts/bench_mlpg.py --frames 500 --repeats 5
    python scripts/bench_mlpg.py --quick              # T=64, static_dim=4, batch 2, 1 thread (smoke run)
"""

from __future__ import annotations

import argparse

from vocoder.bench import MLPGSettings, measure_gemm_reference, run_mlpg

SIZE_OPTIONS = ("frames", "static_dim", "batch", "threads", "repeats", "dense_repeats")


def main(argv: list[str] | None = None) -> None:
    defaults = MLPGSettings()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=None, help=f"default {defaults.frames}")
    parser.add_argument("--static-dim", type=int, default=None, help=f"default {defaults.static_dim}")
    parser.add_argument("--batch", type=int, default=None, help=f"default {defaults.batch}")
    parser.add_argument("--threads", type=int, default=None, help=f"default {defaults.threads}")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed runs of the banded MLPG (median; default {defaults.repeats})",
    )
    parser.add_argument(
        "--dense-repeats",
        type=int,
        default=None,
        help=f"timed runs of the dense MLPG (median; default {defaults.dense_repeats})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes (smoke test); options given explicitly still apply"
    )
    args = parser.parse_args(argv)

    settings = MLPGSettings.quick_settings() if args.quick else MLPGSettings()
    for name in SIZE_OPTIONS:
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    result = run_mlpg(settings)
    result.machine.gemm = measure_gemm_reference(args.quick)  # the machine's own GEMM rates, this run
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()
