#!/usr/bin/env python
"""Benchmark feature preparation (load + log-mel + LPCNet features + cache writes) on a corpus.

    python scripts/bench_features.py                     # ../shared/data/kathleen_arctic, 2 workers
    python scripts/bench_features.py --limit 200 --workers 2
    python scripts/bench_features.py --root /path/to/cmu_us_slt_arctic
    python scripts/bench_features.py --quick             # 4 utterances in-process (smoke run)

Prepares into a temporary cache (deleted afterwards), prints a table, and as the very last line
``features_xrt=<float> peak_rss_mb=<float>``. Targets: >= 100x real time, <= 1 GB.
Before the last line: the machine (CPU model, vector ISA, BLAS libraries, threads), the load during the run
(``WARNING`` lines when other processes used more than 0.3 of each CPU or CPU time / wall time is far from
the thread count), and the machine's own float32 GEMM rates at 1 and 2 threads measured in the same run
(:mod:`vocoder.bench._machine`). The last line ends with
``cpu=<model> isa=<avx2|avx512|amx> untrusted=<0|1>``.

Peak RSS is the parent's peak plus ``workers`` times the largest worker's peak (from
``getrusage``): an upper bound, since forked workers share the parent's pages copy-on-write.
The measuring code is :func:`vocoder.bench.run_features` (also run by ``vocoder-bench``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO_ROOT / ".." / "shared" / "data" / "kathleen_arctic"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="corpus in the ARCTIC layout (default: ../shared/data/kathleen_arctic; with "
        "--quick the embedded sample when that is absent)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (0: in-process; default 2, 0 with --quick)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="first N utterances only (default all, 4 with --quick)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny run (smoke test): the numbers are not comparable with the targets",
    )
    args = parser.parse_args(argv)

    from vocoder.bench import measure_gemm_reference, resolve_root, run_features
    from vocoder.bench._features import QUICK_LIMIT
    from vocoder.data import DataError

    fallback = False
    if args.root is not None:
        root = args.root
    elif args.quick:
        root, fallback = resolve_root(None)
    else:
        root = DEFAULT_ROOT
    workers = args.workers if args.workers is not None else (0 if args.quick else 2)
    limit = args.limit if args.limit is not None else (QUICK_LIMIT if args.quick else None)
    try:
        result = run_features(root, workers=workers, limit=limit, fallback=fallback, quick=args.quick)
    except DataError as error:
        print(f"bench_features: error: {error}", file=sys.stderr)
        return 2
    result.machine.gemm = measure_gemm_reference(args.quick)  # the machine's own GEMM rates, this run
    print("\n".join(result.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
