#!/usr/bin/env python
"""Benchmark LPCNet synthesis (fast numba path and torch reference loop) and training throughput.

    python scripts/bench_lpcnet.py
    python scripts/bench_lpcnet.py --seconds 2 --torch-seconds 0.1 --train-steps 3
    python scripts/bench_lpcnet.py --quick    # GRU_A-32, 0.25 s, 1 repeat, training in-process (smoke run)

Synthesis: the paper-size model (GRU_A 384, GRU_B 16) with random weights, GRU_A's recurrent matrix
pruned to the final densities 0.05 / 0.05 / 0.2 (update / reset / candidate, ≈ 10 % of its 16×1
blocks), features of the embedded slt utterance, pinned to ONE core (``sched_setaffinity``, one
torch thread, single-threaded numba kernel). The real-time factor is wall-clock synthesis time
(frame-rate network, tables, per-sample loop, de-emphasis; best of ``--repeats``) over the audio
duration. The torch loop is timed on ``--torch-seconds`` of the same features and extrapolated
linearly (its per-sample cost does not depend on the length).

Training: forward + cross-entropy + backward + Adam step at batch 32 × 2,400 samples (15 frames),
``--train-threads`` torch threads, in a fresh subprocess so that its peak RSS is clean; the
throughput is the median over ``--train-steps`` timed steps after one warm-up step.

Streaming: the same model and features through :class:`vocoder.inference.LPCNetStream` one frame per
push (fast and int8 backends, the predictor derived from the cepstra inside the pushes), timed from
creating the stream: ``stream_first_audio_ms`` until its first audio (on top of the stream's delay
of 2 frames), ``stream_rtf`` / ``stream_int8_rtf`` for the whole utterance.

Tree head: the same random weights pruned in 16×4 blocks (as ``int8_16x4``) with
``model.output_head=tree``, int8 and fast backends (``int8_tree_rtf``, ``fast_tree_rtf``): per sample
only the 8 visited tree nodes' DualFC rows are computed instead of all 512.

Prints a table, then as the very last line ``fast_rtf=<float> torch_rtf=<float> …
train_samples_per_s=<float> … train_peak_rss_mb=<float> stream_int8_rtf=<float>
stream_first_audio_ms=<float> stream_rtf=<float> int8_tree_rtf=<float> fast_tree_rtf=<float>``.
Targets: fast RTF ≤ 0.15 and ≥ 10× faster than the torch loop; ≥ 22,000 samples/s at ≤ 2.6 GB.
Before the last line: the machine (CPU model, vector ISA, BLAS libraries, threads), the load during the run
(``WARNING`` lines when other processes used more than 0.3 of each CPU or CPU time / wall time is far from
the thread count), and the machine's own float32 GEMM rates at 1 and 2 threads measured in the same run
(:mod:`vocoder.bench._machine`). The last line ends with
``cpu=<model> isa=<avx2|avx512|amx> untrusted=<0|1>``.
The machine is shared: wall-clock numbers move with the load of other processes (the table shows
the load average and the CPU times, which move much less). The measuring code is
:func:`vocoder.bench.run_lpcnet` (also run by ``vocoder-bench``).
"""

from __future__ import annotations

import argparse
import sys

from vocoder.bench import LPCNetSettings, measure_gemm_reference, run_lpcnet

SIZE_OPTIONS = (
    "seconds",
    "torch_seconds",
    "batch",
    "repeats",
    "train_steps",
    "train_threads",
    "train_batch",
    "train_frames",
)


def main(argv: list[str] | None = None) -> int:
    defaults = LPCNetSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"audio synthesized by the fast path (default {defaults.seconds})",
    )
    parser.add_argument(
        "--torch-seconds",
        type=float,
        default=None,
        help=f"audio synthesized by the torch loop (default {defaults.torch_seconds})",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help=f"utterances of the batched fast-path run (default {defaults.batch})",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"fast-path repetitions, the best is kept (default {defaults.repeats})",
    )
    parser.add_argument(
        "--train-steps", type=int, default=None, help=f"timed training steps (default {defaults.train_steps})"
    )
    parser.add_argument("--train-threads", type=int, default=None, help=f"default {defaults.train_threads}")
    parser.add_argument("--train-batch", type=int, default=None, help=f"default {defaults.train_batch}")
    parser.add_argument("--train-frames", type=int, default=None, help=f"default {defaults.train_frames}")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny model and sizes (smoke test); options given explicitly still apply",
    )
    args = parser.parse_args(argv)

    settings = LPCNetSettings.quick_settings() if args.quick else LPCNetSettings()
    for name in SIZE_OPTIONS:
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    result = run_lpcnet(settings)
    result.machine.gemm = measure_gemm_reference(args.quick)  # the machine's own GEMM rates, this run
    print("\n".join(result.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
