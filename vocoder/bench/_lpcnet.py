"""LPCNet benchmark: synthesis (fast numba path and torch reference loop) and training throughput.

Synthesis: the paper-size model (GRU_A 384, GRU_B 16) with random weights, GRU_A's recurrent matrix
pruned to the final densities 0.05 / 0.05 / 0.2 (update / reset / candidate, ≈ 10 % of its 16×1
blocks), features of the embedded slt utterance, pinned to ONE core (``sched_setaffinity``, one torch
thread, single-threaded numba kernel). The real-time factor is wall-clock synthesis time (frame-rate
network, tables, per-sample loop, de-emphasis; best of ``repeats``) over the audio duration. The torch
loop is timed on ``torch_seconds`` of the same features and extrapolated linearly (its per-sample cost
does not depend on the length).

Training: forward + cross-entropy + backward + Adam step at batch 32 × 2,400 samples (15 frames),
``train_threads`` torch threads, in a fresh subprocess (``python -m vocoder.bench --worker
lpcnet-train``) so that its peak RSS is clean; the throughput is the median over ``train_steps`` timed
steps after one warm-up step.

Targets: fast RTF ≤ 0.15 and ≥ 10× faster than the torch loop; ≥ 22,000 samples/s at ≤ 2.6 GB.
The machine may be shared: wall-clock numbers move with the load of other processes (the report shows
the load average and the CPU times, which move much less).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vocoder.bench._common import Metric, Target, best_time, peak_rss_mb, run_worker
from vocoder.bench._gemm import (
    GEMM_MIN_SECONDS,
    GEMM_QUICK_MIN_SECONDS,
    GEMM_SHAPES,
    best_gemm_gflops,
    gemm_reference,
)
from vocoder.bench._load import MachineProbe, cpu_wall_warning
from vocoder.bench._machine import MachineReport, machine_report

NAME = "lpcnet"
SLT_WAV = Path(__file__).resolve().parents[1] / "data" / "sample" / "slt" / "wav" / "arctic_a0009.wav"
SAMPLE_RATE = 16000
HOP = 160
RTF_TARGET = Target("<=", 0.15)
SPEEDUP_TARGET = Target(">=", 10.0)
# xiph's 8-bit C LPCNet on the Zen 3 machine: RTF 0.054, 320x its torch loop
INT8_RTF_TARGET = Target("<=", 0.054)
INT8_SPEEDUP_TARGET = Target(">=", 320.0)
TRAIN_TARGET = Target(">=", 22000.0)
# target: training at the final density ≥ 3× the dense phase; the dense phase ≥ 60 % of the GEMM rate
TRAIN_SPARSE_TARGET = Target(">=", 3.0)
TRAIN_GEMM_TARGET = Target(">=", 0.6)
TRAIN_RSS_TARGET = Target("<=", 2.6 * 1024)


@dataclass
class LPCNetSettings:
    """Sizes of the LPCNet benchmark (defaults: the figures the targets are stated for).

    Attributes:
        seconds: audio synthesized by the fast path.
        torch_seconds: audio synthesized by the torch loop (extrapolated).
        batch: utterances of the batched fast-path run.
        repeats: fast-path repetitions (the best is kept).
        train_steps: timed training steps (after one warm-up step).
        train_threads: torch threads of the training subprocess.
        train_batch: training batch size.
        train_frames: frames per training sequence (``HOP`` samples each).
        model: :class:`vocoder.models.LPCNet` keyword arguments (empty: the paper size).
        train_in_process: time the training steps in this process instead of a fresh one (saves the
            start-up of a second process in quick runs; the training peak RSS then includes everything
            this process did before).
        quick: tiny sizes, not comparable with the targets.
    """

    seconds: float = 2.0
    torch_seconds: float = 0.1
    batch: int = 4
    repeats: int = 3
    train_steps: int = 3
    train_threads: int = 2
    train_batch: int = 32
    train_frames: int = 15
    model: dict[str, int] = field(default_factory=dict)
    train_in_process: bool = False
    quick: bool = False

    @classmethod
    def quick_settings(cls) -> LPCNetSettings:
        """Tiny sizes for smoke runs (a GRU_A-32 model, 0.25 s of audio, one repeat and thread).

        The training steps (batch 2 × 320 samples) are timed in the same process.
        """
        return cls(
            seconds=0.25,
            torch_seconds=0.02,
            batch=2,
            repeats=1,
            train_steps=1,
            train_threads=1,
            train_batch=2,
            train_frames=2,
            model={
                "frame_channels": 32,
                "pitch_embedding_size": 16,
                "sample_embedding_size": 16,
                "gru_a_size": 32,
                "gru_b_size": 8,
            },
            train_in_process=True,
            quick=True,
        )


@dataclass
class LPCNetSynthesisResult:
    """Synthesis figures: RTF = wall-clock (or CPU) seconds per second of audio."""

    core: int
    density: float
    density_update: float
    density_reset: float
    density_candidate: float
    seconds: float
    fast_rtf: float
    fast_cpu_rtf: float
    batch: int
    fast_batch_rtf: float
    torch_seconds: float
    torch_rtf: float
    torch_cpu_rtf: float
    peak_rss_mb: float
    int8_rtf: float = float("nan")
    int8_cpu_rtf: float = float("nan")
    int8_product: str = ""  # vocoder.layers.int8_isa() of the run: avx512vnni, avx2 or generic
    int8_16x4_rtf: float = float("nan")  # the same network pruned in 16×4 blocks (aligned int8 product)
    # the 16×4 network with output_head=tree (8 tree nodes of the DualFC per sample instead of 256 levels)
    int8_tree_rtf: float = float("nan")
    fast_tree_rtf: float = float("nan")
    # streaming, one frame per push (fast backend unless named): from creating the stream to the first
    # audio, and creation + all pushes + flush over the audio duration
    stream_first_audio_ms: float = float("nan")
    stream_rtf: float = float("nan")
    stream_int8_rtf: float = float("nan")
    stream_delay_ms: float = float("nan")


@dataclass
class LPCNetTrainingResult:
    """Training figures of the fresh training process."""

    samples_per_s: float
    peak_rss_mb: float
    step_s: float
    step_cpu_s: float
    sparse_samples_per_s: float = float("nan")
    sparse_step_s: float = float("nan")
    sparse_density: float = float("nan")
    step_gflop: float = float("nan")
    gemm_gflops: float = float("nan")
    retain_memory: bool = False  # freed memory kept in the process (trainer.retain_memory)

    @property
    def sparse_speedup(self) -> float:
        """Samples/s at GRU_A's final block density over the dense phase's (same process, same run)."""
        return self.sparse_samples_per_s / self.samples_per_s

    @property
    def gemm_fraction(self) -> float:
        """The dense step's GFLOP/s over the machine's best GEMM rate on the step's shapes."""
        return self.step_gflop / self.step_s / self.gemm_gflops


@dataclass
class LPCNetResult:
    """Everything the LPCNet benchmark measured."""

    settings: LPCNetSettings
    synthesis: LPCNetSynthesisResult
    training: LPCNetTrainingResult
    load_before: float
    load_after: float
    cpu_count: int
    machine: MachineReport = field(default_factory=MachineReport)

    def table(self) -> list[tuple[str, str]]:
        """The ``(name, value)`` rows of ``scripts/bench_lpcnet.py``."""
        s, t, cfg = self.synthesis, self.training, self.settings
        return [
            (
                "machine load average (1 min) before / after",
                f"{self.load_before:.2f} / {self.load_after:.2f} on {self.cpu_count} CPUs",
            ),
            (
                "GRU_A block density (reset/update/candidate)",
                f"{s.density_reset:.3f} / {s.density_update:.3f} / {s.density_candidate:.3f} "
                f"(all {s.density:.3f})",
            ),
            ("fast RTF, 1 utterance, 1 core (wall)", f"{s.fast_rtf:.4f}  ({s.seconds:.2f} s audio)"),
            ("fast RTF, 1 utterance, 1 core (CPU time)", f"{s.fast_cpu_rtf:.4f}"),
            (f"fast RTF per utterance, batch {s.batch} (wall)", f"{s.fast_batch_rtf:.4f}"),
            ("torch loop RTF (wall, extrapolated)", f"{s.torch_rtf:.3f}  (timed on {s.torch_seconds:.2f} s)"),
            ("fast vs torch speed-up", f"{s.torch_rtf / s.fast_rtf:.1f}x"),
            ("int8 RTF, 1 utterance, 1 core (wall)",
             f"{s.int8_rtf:.4f}  ({s.int8_product or '?'} int8 product)"),
            ("int8 RTF, 1 utterance, 1 core (CPU time)", f"{s.int8_cpu_rtf:.4f}"),
            ("int8 vs torch speed-up", f"{s.torch_rtf / s.int8_rtf:.1f}x"),
            ("int8 RTF, GRU_A in 16x4 blocks (wall)",
             f"{s.int8_16x4_rtf:.4f}  ({s.torch_rtf / s.int8_16x4_rtf:.1f}x the torch loop)"),
            ("int8 / fast RTF, 16x4, tree head (wall)",
             f"{s.int8_tree_rtf:.4f} / {s.fast_tree_rtf:.4f}  "
             f"(int8: {s.int8_16x4_rtf / s.int8_tree_rtf:.2f}x the softmax head's speed)"),
            ("stream RTF, 1 frame/push, fast / int8 (wall)",
             f"{s.stream_rtf:.4f} / {s.stream_int8_rtf:.4f}  ({s.stream_rtf / s.fast_rtf:.2f}x / "
             f"{s.stream_int8_rtf / s.int8_rtf:.2f}x offline)"),
            ("stream time to first audio (fast, wall)",
             f"{s.stream_first_audio_ms:.2f} ms  "
             f"(+ the stream's delay of {s.stream_delay_ms:.0f} ms of frames)"),
            (
                f"training samples/s (B={cfg.train_batch} x {cfg.train_frames * HOP}, "
                f"{cfg.train_threads} threads)",
                f"{t.samples_per_s:.0f}  (median step {t.step_s:.2f} s)",
            ),
            ("training CPU time per step (all threads)", f"{t.step_cpu_s:.2f} s"),
            (
                f"training samples/s at GRU_A density {t.sparse_density:.3f}",
                f"{t.sparse_samples_per_s:.0f}  (median step {t.sparse_step_s:.2f} s; "
                f"{t.sparse_speedup:.2f}x the dense phase)",
            ),
            (
                "training GFLOP/s (dense) vs GEMM reference",
                f"{t.step_gflop / t.step_s:.1f} of {t.gemm_gflops:.1f} ({t.gemm_fraction:.2f}; "
                f"{t.step_gflop:.0f} GFLOP per step)",
            ),
            (
                f"training peak RSS ({'this' if cfg.train_in_process else 'fresh'} process)",
                f"{t.peak_rss_mb:.0f} MB" + ("  (freed memory kept: trainer.retain_memory)" if t.retain_memory
                                             else ""),
            ),
        ]

    def summary_line(self) -> str:
        """``fast_rtf= torch_rtf= int8_rtf= fast_vs_torch= int8_vs_torch= int8_16x4_rtf= int8_16x4_vs_torch=
        train_samples_per_s=`` …
        ``train_sparse_samples_per_s= train_sparse_speedup= train_gemm_fraction= train_peak_rss_mb=``
        ``stream_int8_rtf= stream_first_audio_ms= stream_rtf= int8_tree_rtf= fast_tree_rtf=``.

        Followed by `` cpu=<model> isa=<isa> untrusted=<0|1>`` when the machine was described.
        """
        s, t = self.synthesis, self.training
        return (
            f"fast_rtf={s.fast_rtf:.4f} torch_rtf={s.torch_rtf:.4f} int8_rtf={s.int8_rtf:.4f} "
            f"fast_vs_torch={s.torch_rtf / s.fast_rtf:.1f} int8_vs_torch={s.torch_rtf / s.int8_rtf:.1f} "
            f"int8_16x4_rtf={s.int8_16x4_rtf:.4f} int8_16x4_vs_torch={s.torch_rtf / s.int8_16x4_rtf:.1f} "
            f"train_samples_per_s={t.samples_per_s:.1f} "
            f"train_sparse_samples_per_s={t.sparse_samples_per_s:.1f} "
            f"train_sparse_speedup={t.sparse_speedup:.2f} train_gemm_fraction={t.gemm_fraction:.2f} "
            f"train_peak_rss_mb={t.peak_rss_mb:.1f} "
            f"stream_int8_rtf={s.stream_int8_rtf:.4f} stream_first_audio_ms={s.stream_first_audio_ms:.2f} "
            f"stream_rtf={s.stream_rtf:.4f} int8_tree_rtf={s.int8_tree_rtf:.4f} "
            f"fast_tree_rtf={s.fast_tree_rtf:.4f}"
            + self.machine.summary_suffix()
        )

    def lines(self) -> list[str]:
        """Everything ``scripts/bench_lpcnet.py`` prints: the table, then the summary line."""
        rows = self.table()
        width = max(len(name) for name, _ in rows)
        return [
            *(f"{name:<{width}}  {value}" for name, value in rows),
            *self.machine.lines(),
            self.summary_line(),
        ]

    def metrics(self) -> list[Metric]:
        """The figures of the combined ``vocoder-bench`` table."""
        s, t, cfg = self.synthesis, self.training, self.settings
        size = f"GRU_A {cfg.model.get('gru_a_size', 384)}"
        return [
            Metric(NAME, "fast_rtf", f"LPCNet synthesis RTF, {size}, 1 core", s.fast_rtf, "s/s", RTF_TARGET),
            Metric(
                NAME,
                "fast_batch_rtf",
                f"LPCNet synthesis RTF per utterance, batch {s.batch}, 1 core",
                s.fast_batch_rtf,
                "s/s",
            ),
            Metric(NAME, "torch_rtf", "LPCNet torch reference loop RTF (extrapolated)", s.torch_rtf, "s/s"),
            Metric(
                NAME,
                "speedup",
                "LPCNet fast path vs torch loop",
                s.torch_rtf / s.fast_rtf,
                "x",
                SPEEDUP_TARGET,
            ),
            Metric(NAME, "int8_rtf", f"LPCNet int8 synthesis RTF, {size}, 1 core", s.int8_rtf, "s/s",
                   INT8_RTF_TARGET),
            Metric(NAME, "int8_vs_torch", "LPCNet int8 path vs torch loop", s.torch_rtf / s.int8_rtf, "x",
                   INT8_SPEEDUP_TARGET),
            Metric(NAME, "int8_16x4_rtf", f"LPCNet int8 synthesis RTF, {size} pruned in 16x4 blocks, 1 core",
                   s.int8_16x4_rtf, "s/s", INT8_RTF_TARGET),
            Metric(NAME, "int8_tree_rtf", f"LPCNet int8 synthesis RTF, {size} 16x4, output_head=tree, 1 core",
                   s.int8_tree_rtf, "s/s", INT8_RTF_TARGET),
            Metric(NAME, "fast_tree_rtf", f"LPCNet synthesis RTF, {size} 16x4, output_head=tree, 1 core",
                   s.fast_tree_rtf, "s/s", RTF_TARGET),
            Metric(NAME, "stream_rtf", f"LPCNet streaming RTF, one frame per push, {size}, 1 core",
                   s.stream_rtf, "s/s"),
            Metric(NAME, "stream_first_audio_ms", "LPCNet stream: creation to first audio, 1 core",
                   s.stream_first_audio_ms, "ms"),
            Metric(NAME, "synth_peak_rss_mb", "LPCNet synthesis peak RSS", s.peak_rss_mb, "MB"),
            Metric(
                NAME,
                "train_samples_per_s",
                f"LPCNet training, B={cfg.train_batch} x {cfg.train_frames * HOP}, {cfg.train_threads} thr",
                t.samples_per_s,
                "samples/s",
                TRAIN_TARGET,
            ),
            Metric(
                NAME,
                "train_sparse_speedup",
                f"LPCNet training at GRU_A density {t.sparse_density:.2f} vs dense",
                t.sparse_speedup,
                "x",
                TRAIN_SPARSE_TARGET,
            ),
            Metric(
                NAME,
                "train_gemm_fraction",
                "LPCNet dense training GFLOP/s / GEMM reference",
                t.gemm_fraction,
                "of peak",
                TRAIN_GEMM_TARGET,
            ),
            Metric(
                NAME, "train_peak_rss_mb", "LPCNet training peak RSS", t.peak_rss_mb, "MB", TRAIN_RSS_TARGET
            ),
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the worker protocol)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LPCNetResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            settings=LPCNetSettings(**data["settings"]),
            synthesis=LPCNetSynthesisResult(**data["synthesis"]),
            training=LPCNetTrainingResult(**data["training"]),
            load_before=data["load_before"],
            load_after=data["load_after"],
            cpu_count=data["cpu_count"],
            machine=MachineReport.from_dict(data.get("machine")),
        )


@contextlib.contextmanager
def one_core() -> Iterator[int]:
    """Run the block on one CPU of the current affinity set, one torch and one numba thread.

    Yields:
        The CPU the process is pinned to. Affinity and thread counts are restored afterwards.
    """
    import numba
    import torch

    affinity = os.sched_getaffinity(0)
    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    core = min(affinity)
    os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        yield core
    finally:
        numba.set_num_threads(numba_threads)
        torch.set_num_threads(torch_threads)
        os.sched_setaffinity(0, affinity)


def slt_features(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Features and LPC of the first ``seconds`` of the embedded slt utterance (tiled if shorter).

    Args:
        seconds: audio duration wanted.

    Returns:
        ``(features (F, 20), lpc (F, 16))`` float64, ``F = round(seconds · 100)``.
    """
    import soundfile

    from vocoder.dsp import lpcnet_features

    audio, rate = soundfile.read(SLT_WAV, dtype="float64")
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"{SLT_WAV} is {rate} Hz, expected {SAMPLE_RATE}")
    features, lpc = lpcnet_features(audio)
    frames = int(round(seconds * SAMPLE_RATE / HOP))
    rows = np.arange(frames) % features.shape[0]
    return features[rows].astype(np.float64), lpc[rows].astype(np.float64)


def pruned_model(model_kwargs: dict[str, int] | None = None, seed: int = 0, block: tuple[int, int] = (16, 1)):
    """A random-weight LPCNet with GRU_A pruned to its final densities.

    Args:
        model_kwargs: :class:`vocoder.models.LPCNet` keyword arguments (None: the paper size).
        seed: torch seed of the weights.
        block: pruned block shape (``loss.sparsify.block``).

    Returns:
        ``(model in eval mode, densities by gate name)``.
    """
    import torch

    from vocoder.layers import BlockSparsifier
    from vocoder.models import LPCNet

    torch.manual_seed(seed)
    model = LPCNet(**(model_kwargs or {})).eval()
    sparsifier = BlockSparsifier.for_gru(model.gru_a, start=0, end=1, block=block)
    sparsifier.step(1)
    return model, sparsifier.densities()


def bench_synthesis(settings: LPCNetSettings) -> LPCNetSynthesisResult:
    """Time the fast path (one utterance and a batch) and the torch loop on one core.

    Args:
        settings: sizes (``seconds``, ``torch_seconds``, ``batch``, ``repeats``, ``model``).

    Returns:
        The synthesis figures.
    """
    from vocoder.inference import (
        pack_lpcnet,
        pack_lpcnet_int8,
        synthesize_fast,
        synthesize_int8,
        synthesize_reference,
    )
    from vocoder.layers import int8_isa

    with one_core() as core:
        model, densities = pruned_model(settings.model)
        packed = pack_lpcnet(model, np.float32)
        features, lpc = slt_features(settings.seconds)
        batch_features = np.stack([np.roll(features, 37 * b, axis=0) for b in range(settings.batch)])
        batch_lpc = np.stack([np.roll(lpc, 37 * b, axis=0) for b in range(settings.batch)])

        synthesize_fast(model, features[None, :20], lpc[None, :20], packed=packed)  # compile / load the cache
        fast_wall, fast_cpu = best_time(
            lambda: synthesize_fast(model, features[None], lpc[None], seed=0, packed=packed), settings.repeats
        )
        packed_int8 = pack_lpcnet_int8(model, np.float32)
        synthesize_int8(model, features[None, :20], lpc[None, :20], packed=packed_int8)  # compile / load
        int8_wall, int8_cpu = best_time(
            lambda: synthesize_int8(model, features[None], lpc[None], seed=0, packed=packed_int8),
            settings.repeats,
        )
        model4, _ = pruned_model(settings.model, block=(16, 4))
        packed_16x4 = pack_lpcnet_int8(model4, np.float32)
        if not packed_16x4.a_aligned:
            raise RuntimeError("16x4 pruning did not give the aligned int8 layout")
        synthesize_int8(model4, features[None, :20], lpc[None, :20], packed=packed_16x4)
        int8_16x4_wall, _ = best_time(
            lambda: synthesize_int8(model4, features[None], lpc[None], seed=0, packed=packed_16x4),
            settings.repeats,
        )
        # the same weights (seed, block) read as xiph's tree head: 8 nodes' DualFC rows per sample
        tree_model, _ = pruned_model({**(settings.model or {}), "output_head": "tree"}, block=(16, 4))
        packed_tree = pack_lpcnet_int8(tree_model, np.float32)
        synthesize_int8(tree_model, features[None, :20], lpc[None, :20], packed=packed_tree)
        int8_tree_wall, _ = best_time(
            lambda: synthesize_int8(tree_model, features[None], lpc[None], seed=0, packed=packed_tree),
            settings.repeats,
        )
        packed_fast_tree = pack_lpcnet(tree_model, np.float32)
        synthesize_fast(tree_model, features[None, :20], lpc[None, :20], packed=packed_fast_tree)
        fast_tree_wall, _ = best_time(
            lambda: synthesize_fast(tree_model, features[None], lpc[None], seed=0, packed=packed_fast_tree),
            settings.repeats,
        )
        batch_wall, _ = best_time(
            lambda: synthesize_fast(model, batch_features, batch_lpc, seed=0, packed=packed), settings.repeats
        )
        stream_fast = bench_stream(model, "fast", features, settings.repeats)
        stream_int8 = bench_stream(model, "int8", features, settings.repeats)
        torch_frames = max(1, int(round(settings.torch_seconds * SAMPLE_RATE / HOP)))
        torch_wall, torch_cpu = best_time(
            lambda: synthesize_reference(model, features[None, :torch_frames], lpc[None, :torch_frames]), 1
        )
    duration = features.shape[0] * HOP / SAMPLE_RATE
    torch_duration = torch_frames * HOP / SAMPLE_RATE
    return LPCNetSynthesisResult(
        core=core,
        density=packed.density,
        density_update=densities["update"],
        density_reset=densities["reset"],
        density_candidate=densities["candidate"],
        seconds=duration,
        fast_rtf=fast_wall / duration,
        fast_cpu_rtf=fast_cpu / duration,
        batch=settings.batch,
        fast_batch_rtf=batch_wall / (duration * settings.batch),
        torch_seconds=torch_duration,
        torch_rtf=torch_wall / torch_duration,
        torch_cpu_rtf=torch_cpu / torch_duration,
        int8_rtf=int8_wall / duration,
        int8_product=int8_isa(),
        int8_cpu_rtf=int8_cpu / duration,
        int8_16x4_rtf=int8_16x4_wall / duration,
        int8_tree_rtf=int8_tree_wall / duration,
        fast_tree_rtf=fast_tree_wall / duration,
        stream_first_audio_ms=1000.0 * stream_fast["first_audio_s"],
        stream_rtf=stream_fast["seconds"] / duration,
        stream_int8_rtf=stream_int8["seconds"] / duration,
        stream_delay_ms=stream_fast["delay_ms"],
        peak_rss_mb=peak_rss_mb(),
    )


def bench_stream(model, backend: str, features: np.ndarray, repeats: int) -> dict[str, float]:
    """Stream ``features`` one frame per push (in the calling thread; best of ``repeats``).

    The clock starts before the stream is created (its weights packed: what a new utterance costs a
    server that holds the loaded model); the predictor of every frame is derived from its cepstrum
    inside the pushes.

    Returns:
        ``first_audio_s`` (until the first non-empty audio), ``seconds`` (creation, all pushes and the
        flush) and ``delay_ms`` (the stream's look-ahead).
    """
    from vocoder.inference import LPCNetStream

    frames = features[:, :20].astype(np.float32)
    LPCNetStream(model, SAMPLE_RATE, backend=backend).push(frames[:4])  # compile / load the caches
    best_first, best_total, delay_ms = float("inf"), float("inf"), float("nan")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        stream = LPCNetStream(model, SAMPLE_RATE, backend=backend, seed=0)
        delay_ms = stream.delay_ms
        first = None
        for frame in frames:
            audio = stream.push(frame[None])
            if first is None and len(audio):
                first = time.perf_counter() - start
        stream.flush()
        total = time.perf_counter() - start
        best_first = min(best_first, first if first is not None else total)
        best_total = min(best_total, total)
    return {"first_audio_s": best_first, "seconds": best_total, "delay_ms": delay_ms}


def training_step_gflop(model_kwargs: dict[str, int] | None, batch: int, frames: int) -> float:
    """GFLOP (multiply and add counted apart) of the matrix products of one dense training step.

    Forward, input gradients and weight gradients (3× the forward) of GRU_A's recurrent product,
    GRU_B's input and recurrent products, the DualFC, the frame projections and the frame-rate
    network; elementwise work is not counted.
    """
    from vocoder.models import LPCNet

    config = LPCNet(**(model_kwargs or {})).config
    a, b = config["gru_a_size"], config["gru_b_size"]
    channels, levels = config["frame_channels"], 2 ** config["mulaw_bits"]
    n_features, kernel = config["n_features"], config["conv_kernel_size"]
    samples = batch * frames * HOP
    frame_rows = batch * frames
    per_sample = a * 3 * a + a * 3 * b + b * 3 * b + 2 * b * levels
    per_frame = channels * 3 * (a + b) + 2 * channels * channels + kernel * channels * (
        n_features - 1 + config["pitch_embedding_size"] + channels)
    return 3 * 2 * (samples * per_sample + frame_rows * per_frame) / 1e9


def measure_training(
    threads: int, steps: int, batch: int, frames: int, model_kwargs: dict[str, int] | None = None,
    sparse_steps: int = 0, retain_memory: bool = False,
) -> dict[str, Any]:
    """Timed LPCNet training steps in this process (run it in a fresh process for a clean peak RSS).

    One step is forward + cross-entropy + backward + Adam on random features (pitch period in its
    valid range) and random μ-law codes; one warm-up step is not timed.

    Args:
        threads: torch threads.
        steps: timed steps.
        batch: batch size.
        frames: frames per sequence (``HOP`` samples each).
        model_kwargs: :class:`vocoder.models.LPCNet` keyword arguments (None: the paper size).
        sparse_steps: then prune GRU_A to its final block densities (0.05 / 0.05 / 0.2) and time this
            many more steps with the block-sparse recurrence (after one warm-up step), masks
            re-applied after every step as in training.
        retain_memory: first keep freed memory in the process, as the trainer does on CPU
            (:func:`vocoder.training.retain_freed_memory`; changes this process's allocator for good).

    Returns:
        ``step_seconds`` and ``step_cpu_seconds`` (lists), ``samples_per_s`` (batch · samples over the
        median step), ``peak_rss_mb`` and ``retain_memory`` (whether it was in effect).
    """
    import torch

    retained = False
    if retain_memory:
        from vocoder.training import retain_freed_memory

        retained = retain_freed_memory()

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return {**_timed_training_steps(steps, batch, frames, model_kwargs, sparse_steps),
                "retain_memory": retained}
    finally:
        torch.set_num_threads(previous_threads)


def _timed_training_steps(
    steps: int, batch: int, frames: int, model_kwargs: dict[str, int] | None, sparse_steps: int = 0
) -> dict[str, Any]:
    """:func:`measure_training` at the current torch thread count."""
    import torch
    import torch.nn.functional as F

    from vocoder.models import LPCNet

    torch.manual_seed(0)
    model = LPCNet(**(model_kwargs or {}))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_samples = frames * HOP
    generator = torch.Generator().manual_seed(0)
    n_frames = frames + 2 * model.frame_context
    features = torch.randn(batch, n_frames, model.n_features, generator=generator)
    features[..., -2] = 32 + 224 * torch.rand(batch, n_frames, generator=generator)  # pitch period
    features[..., -1] = torch.rand(batch, n_frames, generator=generator)  # pitch correlation
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
    times, cpu_times = zip(*(step() for _ in range(max(1, steps))), strict=True)
    result = {
        "step_seconds": list(times),
        "step_cpu_seconds": list(cpu_times),
        "samples_per_s": batch * n_samples / statistics.median(times),
        "step_gflop": training_step_gflop(model_kwargs, batch, frames),
    }
    if sparse_steps > 0:
        from vocoder.layers import BlockSparsifier

        sparsifier = BlockSparsifier.for_gru(model.gru_a, start=0, end=1)
        sparsifier.step(1)
        model.set_gru_a_mask(sparsifier.mask(sparsifier.targets[0]))

        def sparse_step() -> tuple[float, float]:
            seconds = step()
            sparsifier.apply_masks()  # what the sparsifier does after every optimizer step
            return seconds

        sparse_step()  # warm-up: the sparse kernels' cache
        sparse_times = [sparse_step()[0] for _ in range(sparse_steps)]
        densities = sparsifier.densities()
        result.update(
            sparse_step_seconds=sparse_times,
            sparse_samples_per_s=batch * n_samples / statistics.median(sparse_times),
            sparse_density=sum(densities.values()) / len(densities),
        )
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def bench_training(settings: LPCNetSettings) -> LPCNetTrainingResult:
    """Run :func:`measure_training` in a fresh process (``OMP_NUM_THREADS`` = ``train_threads``).

    Args:
        settings: sizes (``train_threads``, ``train_steps``, ``train_batch``, ``train_frames``, ``model``);
            with ``train_in_process`` the steps are timed in this process.

    Returns:
        The training figures.
    """
    params = {
        "threads": settings.train_threads,
        "steps": settings.train_steps,
        "batch": settings.train_batch,
        "frames": settings.train_frames,
        "model_kwargs": settings.model,
        "sparse_steps": settings.train_steps,
        # the trainer's CPU default; not in this process (it would change the caller's allocator)
        "retain_memory": not settings.train_in_process,
    }
    if settings.train_in_process:
        result = measure_training(**params)
    else:
        result = run_worker("lpcnet-train", params, env={"OMP_NUM_THREADS": str(settings.train_threads)})
    return LPCNetTrainingResult(
        samples_per_s=result["samples_per_s"],
        peak_rss_mb=result["peak_rss_mb"],
        step_s=statistics.median(result["step_seconds"]),
        step_cpu_s=statistics.median(result["step_cpu_seconds"]),
        sparse_samples_per_s=result["sparse_samples_per_s"],
        sparse_step_s=statistics.median(result["sparse_step_seconds"]),
        sparse_density=result["sparse_density"],
        step_gflop=result["step_gflop"],
        retain_memory=bool(result["retain_memory"]),
    )


def run_lpcnet(settings: LPCNetSettings | None = None) -> LPCNetResult:
    """The whole LPCNet benchmark: training (in a subprocess) first, then synthesis on one core.

    Args:
        settings: sizes (None: the defaults the targets are stated for).

    Returns:
        The measurements.

    Raises:
        vocoder.bench.BenchmarkError: the training subprocess failed.
    """
    settings = settings or LPCNetSettings()
    load_before = os.getloadavg()[0]
    with MachineProbe(max(1, settings.train_threads)) as probe:
        training = bench_training(settings)
        # the machine's own GEMM rate on the training step's shapes, at its thread count
        shapes = {name: GEMM_SHAPES[name] for name in ("lpcnet_gru_a_step", "lpcnet_gru_a_input")}
        rates = gemm_reference(shapes, threads=(settings.train_threads,),
                               min_seconds=GEMM_QUICK_MIN_SECONDS if settings.quick else GEMM_MIN_SECONDS)
        training.gemm_gflops = best_gemm_gflops(rates, settings.train_threads)
        synthesis = bench_synthesis(settings)
    load_after = os.getloadavg()[0]
    checks = [
        cpu_wall_warning("LPCNet fast synthesis RTF (1 core)", synthesis.fast_cpu_rtf, synthesis.fast_rtf, 1),
        cpu_wall_warning(
            f"LPCNet training samples/s ({settings.train_threads} threads)",
            training.step_cpu_s,
            training.step_s,
            settings.train_threads,
        ),
    ]
    machine = machine_report(probe, max(1, settings.train_threads), checks)
    return LPCNetResult(settings, synthesis, training, load_before, load_after, os.cpu_count() or 1, machine)


def worker(params: dict[str, Any]) -> dict[str, Any]:
    """``vocoder-bench`` worker: :func:`run_lpcnet` with :class:`LPCNetSettings` ``params``."""
    return run_lpcnet(LPCNetSettings(**params)).to_dict()


def train_worker(params: dict[str, Any]) -> dict[str, Any]:
    """``vocoder-bench`` worker: :func:`measure_training` with ``params``."""
    return measure_training(**params)
