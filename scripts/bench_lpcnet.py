#!/usr/bin/env python
"""Benchmark LPCNet synthesis (fast numba path and torch reference loop) and training throughput.

    python scripts/bench_lpcnet.py
    python scripts/bench_lpcnet.py --seconds 2 --torch-seconds 0.1 --train-steps 3

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

Prints a table, then as the very last line
``fast_rtf=<float> torch_rtf=<float> train_samples_per_s=<float> train_peak_rss_mb=<float>``.
Targets: fast RTF ≤ 0.15 and ≥ 10× faster than the torch loop; ≥ 22,000 samples/s at ≤ 2.6 GB.
The machine is shared: wall-clock numbers move with the load of other processes (the table shows
the load average and the CPU times, which move much less).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SLT_WAV = REPO_ROOT / "vocoder" / "data" / "sample" / "slt" / "wav" / "arctic_a0009.wav"
SAMPLE_RATE = 16000
HOP = 160


def _pin_to_one_core() -> int:
    """Restrict this process to one CPU of its current affinity set; returns it."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def _slt_features(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Features and LPC of the first ``seconds`` of the embedded slt utterance (tiled if shorter)."""
    import soundfile

    from vocoder.dsp import lpcnet_features

    audio, rate = soundfile.read(SLT_WAV, dtype="float64")
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"{SLT_WAV} is {rate} Hz, expected {SAMPLE_RATE}")
    features, lpc = lpcnet_features(audio)
    frames = int(round(seconds * SAMPLE_RATE / HOP))
    rows = np.arange(frames) % features.shape[0]
    return features[rows].astype(np.float64), lpc[rows].astype(np.float64)


def _pruned_model(seed: int = 0):
    import torch

    from vocoder.layers import BlockSparsifier
    from vocoder.models import LPCNet

    torch.manual_seed(seed)
    model = LPCNet().eval()
    sparsifier = BlockSparsifier.for_gru(model.gru_a, start=0, end=1)
    sparsifier.step(1)
    return model, sparsifier.densities()


def _best_time(function, repeats: int) -> tuple[float, float]:
    """Best wall-clock and CPU time of ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def bench_synthesis(args: argparse.Namespace) -> dict[str, float]:
    core = _pin_to_one_core()
    import numba
    import torch

    from vocoder.inference import pack_lpcnet, synthesize_fast, synthesize_reference

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    model, densities = _pruned_model()
    packed = pack_lpcnet(model, np.float32)
    features, lpc = _slt_features(args.seconds)
    batch_features = np.stack([np.roll(features, 37 * b, axis=0) for b in range(args.batch)])
    batch_lpc = np.stack([np.roll(lpc, 37 * b, axis=0) for b in range(args.batch)])

    synthesize_fast(model, features[None, :20], lpc[None, :20], packed=packed)  # compile / load the cache
    fast_wall, fast_cpu = _best_time(
        lambda: synthesize_fast(model, features[None], lpc[None], seed=0, packed=packed), args.repeats)
    batch_wall, batch_cpu = _best_time(
        lambda: synthesize_fast(model, batch_features, batch_lpc, seed=0, packed=packed), args.repeats)
    torch_frames = max(1, int(round(args.torch_seconds * SAMPLE_RATE / HOP)))
    torch_wall, torch_cpu = _best_time(
        lambda: synthesize_reference(model, features[None, :torch_frames], lpc[None, :torch_frames]), 1)
    duration = features.shape[0] * HOP / SAMPLE_RATE
    torch_duration = torch_frames * HOP / SAMPLE_RATE
    return {
        "core": core,
        "density": packed.density,
        **{f"density_{gate}": value for gate, value in densities.items()},
        "seconds": duration,
        "fast_rtf": fast_wall / duration,
        "fast_cpu_rtf": fast_cpu / duration,
        "batch": args.batch,
        "fast_batch_rtf": batch_wall / (duration * args.batch),
        "torch_seconds": torch_duration,
        "torch_rtf": torch_wall / torch_duration,
        "torch_cpu_rtf": torch_cpu / torch_duration,
    }


def train_worker(args: argparse.Namespace) -> None:
    """Runs in the subprocess: timed training steps; prints one JSON line."""
    import torch
    import torch.nn.functional as F

    from vocoder.models import LPCNet

    torch.set_num_threads(args.train_threads)
    torch.manual_seed(0)
    model = LPCNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch, frames = args.train_batch, args.train_frames
    n_samples = frames * HOP
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(batch, frames + 2 * model.frame_context, 20, generator=generator)
    features[..., 18] = 32 + 224 * torch.rand(batch, frames + 2 * model.frame_context, generator=generator)
    features[..., 19] = torch.rand(batch, frames + 2 * model.frame_context, generator=generator)
    codes = [torch.randint(0, 256, (batch, n_samples), generator=generator) for _ in range(4)]

    def step() -> tuple[float, float]:
        start, start_cpu = time.perf_counter(), time.process_time()
        logits = model(features, *codes[:3])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes[3].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start, time.process_time() - start_cpu

    step()  # warm-up: numba cache load, allocator
    times, cpu_times = zip(*(step() for _ in range(args.train_steps)), strict=True)
    print(json.dumps({
        "step_seconds": times,
        "step_cpu_seconds": cpu_times,
        "samples_per_s": batch * n_samples / statistics.median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def bench_training(args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--train-worker",
               "--train-threads", str(args.train_threads), "--train-steps", str(args.train_steps),
               "--train-batch", str(args.train_batch), "--train-frames", str(args.train_frames)]
    environment = dict(os.environ, OMP_NUM_THREADS=str(args.train_threads))
    completed = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    if completed.returncode != 0:
        raise RuntimeError(f"training worker failed:\n{completed.stderr}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"train_samples_per_s": result["samples_per_s"], "train_peak_rss_mb": result["peak_rss_mb"],
            "train_step_s": statistics.median(result["step_seconds"]),
            "train_step_cpu_s": statistics.median(result["step_cpu_seconds"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="audio synthesized by the fast path")
    parser.add_argument("--torch-seconds", type=float, default=0.1,
                        help="audio synthesized by the torch loop")
    parser.add_argument("--batch", type=int, default=4, help="utterances of the batched fast-path run")
    parser.add_argument("--repeats", type=int, default=3, help="fast-path repetitions (best is kept)")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--train-threads", type=int, default=2)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--train-frames", type=int, default=15)
    parser.add_argument("--train-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_worker:
        train_worker(args)
        return 0

    load_before = os.getloadavg()[0]
    training = bench_training(args)  # first: the synthesis part pins this process to one core
    synthesis = bench_synthesis(args)
    load_after = os.getloadavg()[0]
    rows = [
        ("machine load average (1 min) before / after", f"{load_before:.2f} / {load_after:.2f} "
                                                         f"on {os.cpu_count()} CPUs"),
        ("GRU_A block density (reset/update/candidate)",
         f"{synthesis['density_reset']:.3f} / {synthesis['density_update']:.3f} / "
         f"{synthesis['density_candidate']:.3f} (all {synthesis['density']:.3f})"),
        ("fast RTF, 1 utterance, 1 core (wall)",
         f"{synthesis['fast_rtf']:.4f}  ({synthesis['seconds']:.2f} s audio)"),
        ("fast RTF, 1 utterance, 1 core (CPU time)", f"{synthesis['fast_cpu_rtf']:.4f}"),
        (f"fast RTF per utterance, batch {synthesis['batch']} (wall)", f"{synthesis['fast_batch_rtf']:.4f}"),
        ("torch loop RTF (wall, extrapolated)",
         f"{synthesis['torch_rtf']:.3f}  (timed on {synthesis['torch_seconds']:.2f} s)"),
        ("fast vs torch speed-up", f"{synthesis['torch_rtf'] / synthesis['fast_rtf']:.1f}x"),
        (f"training samples/s (B={args.train_batch} x {args.train_frames * HOP}, "
         f"{args.train_threads} threads)", f"{training['train_samples_per_s']:.0f}  "
                                            f"(median step {training['train_step_s']:.2f} s)"),
        ("training CPU time per step (all threads)", f"{training['train_step_cpu_s']:.2f} s"),
        ("training peak RSS (fresh process)", f"{training['train_peak_rss_mb']:.0f} MB"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"fast_rtf={synthesis['fast_rtf']:.4f} torch_rtf={synthesis['torch_rtf']:.4f} "
          f"train_samples_per_s={training['train_samples_per_s']:.1f} "
          f"train_peak_rss_mb={training['train_peak_rss_mb']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
