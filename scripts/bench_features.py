#!/usr/bin/env python
"""Benchmark feature preparation (load + log-mel + LPCNet features + cache writes) on a corpus.

    python scripts/bench_features.py                     # ../shared/data/kathleen_arctic, 2 workers
    python scripts/bench_features.py --limit 200 --workers 2
    python scripts/bench_features.py --root /path/to/cmu_us_slt_arctic

Prepares into a temporary cache (deleted afterwards), prints a table, and as the very last line
``features_xrt=<float> peak_rss_mb=<float>``. Targets: >= 100x real time, <= 1 GB.

Peak RSS is the parent's peak plus ``workers`` times the largest worker's peak (from
``getrusage``): an upper bound, since forked workers share the parent's pages copy-on-write.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO_ROOT / ".." / "shared" / "data" / "kathleen_arctic"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="corpus in the ARCTIC layout")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (0: in-process)")
    parser.add_argument("--limit", type=int, default=None, help="first N utterances only")
    args = parser.parse_args(argv)

    from vocoder.data import DataError, FeatureSettings, prepare_corpus

    root = args.root.resolve()
    with tempfile.TemporaryDirectory(prefix="bench_features_") as cache_dir:
        started = time.perf_counter()
        try:
            result = prepare_corpus(
                root,
                cache_dir,
                FeatureSettings(),
                n_eval=1,
                n_dev=1,
                num_workers=args.workers,
                limit=args.limit,
                progress=False,
            )
        except DataError as error:
            print(f"bench_features: error: {error}", file=sys.stderr)
            return 2
        wall = time.perf_counter() - started
        cache_mb = sum(p.stat().st_size for p in Path(cache_dir).rglob("*") if p.is_file()) / 2**20
    # ru_maxrss is in KiB on Linux; RUSAGE_CHILDREN holds the largest terminated (joined) worker
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peak_mb = parent_mb + max(args.workers, 0) * worker_mb
    xrt = result.computed_seconds / wall
    utterances = result.computed + len(result.skipped)
    rows = [
        ("corpus", str(root)),
        ("utterances", f"{utterances} ({len(result.skipped)} skipped)"),
        ("audio", f"{result.computed_seconds / 60:.2f} min"),
        ("workers", str(args.workers)),
        ("wall", f"{wall:.2f} s"),
        ("speed", f"{xrt:.1f}x real time"),
        ("cache size", f"{cache_mb:.1f} MB"),
        ("peak RSS parent", f"{parent_mb:.0f} MB"),
        ("peak RSS largest worker", f"{worker_mb:.0f} MB"),
        ("peak RSS total (bound)", f"{peak_mb:.0f} MB"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"features_xrt={xrt:.2f} peak_rss_mb={peak_mb:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
