"""IAF student parallel synthesis vs WaveNet teacher autoregressive generation, and their training speed.

Synthesis (:func:`run_iaf_synthesis`, ``scripts/bench_iaf.py``): both models use their DEFAULT
configurations (:class:`vocoder.models.IAFStudent`, :class:`vocoder.models.WaveNetTeacher`) with random
weights — speed does not depend on training — and run on the CPU with ``threads`` torch threads under
``torch.inference_mode``. The conditioning is the log-mel of the embedded slt utterance
(``vocoder/data/sample/slt``), computed with the project's feature settings.

* Student: :meth:`IAFStudent.synthesize` on the whole utterance (eager, and TorchScript-compiled), with
  one exact time segment per thread (``segments=threads``, what ``vocoder-synth`` does); a reference row
  shows ``threads`` intra-op threads on one segment.
* Teacher: :meth:`WaveNetTeacher.generate` on the first ``teacher_frames`` frames only. Its cost per
  sample does not depend on the position in the utterance (fixed-size layer queues), so the RTF of this
  segment is the RTF of the whole utterance; the report says so and shows the extrapolated time.

Every timing is repeated and the best and the median are kept; the summary reports the best wall-clock
RTF at ``threads`` threads (the run least disturbed by other processes on a shared machine). RTF =
wall-clock time / audio duration; CPU-RTF is the process CPU time per audio second, which on a loaded
machine shows the work done apart from waiting (with several threads it also counts OpenMP
spin-waiting). Single-thread rows of both models are added for reference: on a machine shared with
other jobs, intra-op threads mostly wait for each other (worst for the teacher's tiny per-sample
operations), so the speed-up is also given between the single-thread runs. Targets: student RTF ≤ 0.15,
≥ 20× faster than the teacher.

OpenMP's wait policy is read when torch loads its runtime, so it has to be set in the environment before
``import torch``: ``scripts/bench_iaf.py`` and ``vocoder-bench`` set ``OMP_WAIT_POLICY=PASSIVE`` unless it
is already set (spinning workers burn the cores the other worker needs on a shared machine: measured
under load, student 2-thread RTF 4.1 with spinning vs 0.6 without).

Training (:func:`run_iaf_training`, ``vocoder-bench`` only): the recipes ``slt_wavenet``, ``slt_iaf`` and
``slt_iaf_distill`` (teacher: the checkpoint of the ``slt_wavenet`` run) trained on the embedded kathleen
sample corpus through the real trainer (:mod:`vocoder.bench._training`), each in a fresh process.
"""

from __future__ import annotations

import inspect
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vocoder.bench._common import Metric, Target, peak_rss_mb, run_worker
from vocoder.bench._gemm import (
    GEMM_MIN_SECONDS,
    GEMM_QUICK_MIN_SECONDS,
    GEMM_SHAPES,
    best_gemm_gflops,
    gemm_reference,
)
from vocoder.bench._load import MachineProbe, cpu_wall_warning
from vocoder.bench._machine import MachineReport, machine_report
from vocoder.bench._training import RecipeTrainingResult, prepare_recipe_data, train_recipe

NAME = "iaf"
SAMPLE_WAV = Path(__file__).resolve().parents[1] / "data" / "sample" / "slt" / "wav" / "arctic_a0009.wav"
KATHLEEN_ROOT = Path(__file__).resolve().parents[1] / "data" / "sample" / "kathleen"
RTF_TARGET = Target("<=", 0.15)
SPEEDUP_TARGET = Target(">=", 20.0)
def _inplace_addmm_flop(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of ``self.addmm_(a, b)``: ``2·m·k·n`` (torch's FlopCounterMode counts out-of-place addmm only)."""
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


def student_flops_per_audio_second(student, mel: torch.Tensor, features, chunk_frames: int = 8,
                                   frames: int = 20) -> float:
    """Floating-point operations of the student's synthesis per audio second (torch's FLOP counter over
    the first ``frames`` frames, in-place products included)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    # the blockwise synthesis accumulates most products in place (addmm_), which torch's counter
    # has no formula for: without this mapping it sees 11 of the ~27 GFLOP per audio second
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.addmm_: _inplace_addmm_flop})
    frames = min(frames, mel.shape[2])
    with torch.inference_mode(), counter:
        student.synthesize(mel[:, :, :frames], 0, chunk_frames, 1)
    return counter.get_total_flops() / (frames * features.hop_length / features.sample_rate)


# target: the student's achieved GFLOP/s ≥ 60 % of the machine's best GEMM rate on its shape
GEMM_FRACTION_TARGET = Target(">=", 0.6)
#: (short name, recipe) of the training benchmarks, in run order (the distillation needs the teacher)
TRAINING_RECIPES = (("wavenet", "slt_wavenet"), ("iaf", "slt_iaf"), ("iaf_distill", "slt_iaf_distill"))


@dataclass
class IAFSettings:
    """Sizes of the IAF / WaveNet benchmark (defaults: the figures the targets are stated for).

    Attributes:
        threads: torch threads of the main rows.
        repeats: timed student runs.
        teacher_frames: frames generated by the teacher.
        teacher_repeats: timed teacher runs.
        chunk_frames: student block size in frames.
        student: :class:`vocoder.models.IAFStudent` keyword arguments (empty: the default size).
        teacher: :class:`vocoder.models.WaveNetTeacher` keyword arguments (empty: the default size).
        utterance_frames: synthesize the first N frames of the utterance only (None: all of it).
        train_threads: torch threads of the training runs.
        train_steps: timed training steps per recipe (after as many warm-up steps).
        train_limit: utterances of the embedded sample corpus prepared for training (None: all 40).
        train_overrides: extra ``vocoder-train`` overrides per training name (``wavenet``, ``iaf``,
            ``iaf_distill``), e.g. smaller models in quick mode.
        train_in_process: train the recipes one after the other in this process instead of one fresh
            process each (saves three process start-ups in quick runs; the peak RSS figures then include
            everything this process did before).
        quick: tiny sizes, not comparable with the targets.
    """

    threads: int = 2
    repeats: int = 5
    teacher_frames: int = 10
    teacher_repeats: int = 2
    chunk_frames: int = 8
    student: dict[str, Any] = field(default_factory=dict)
    teacher: dict[str, Any] = field(default_factory=dict)
    utterance_frames: int | None = None
    train_threads: int = 2
    train_steps: int = 5
    train_limit: int | None = None
    train_overrides: dict[str, list[str]] = field(default_factory=dict)
    train_in_process: bool = False
    quick: bool = False

    @classmethod
    def quick_settings(cls) -> IAFSettings:
        """Tiny sizes for smoke runs (small networks, 0.25 s of audio, one repeat and thread).

        The training runs in the same process, on 3 utterances, one warm-up and one timed step each.
        """
        tiny_student = [
            "model.flow_layers=[2,2]",
            "model.dilation_cycle=2",
            "model.residual_channels=8",
            "model.gate_channels=16",
        ]
        return cls(
            threads=1,
            repeats=1,
            teacher_frames=2,
            teacher_repeats=1,
            chunk_frames=8,
            student={"flow_layers": [2, 2], "dilation_cycle": 2, "residual_channels": 8, "gate_channels": 16},
            teacher={
                "layers": 4,
                "dilation_cycle": 4,
                "residual_channels": 8,
                "gate_channels": 16,
                "skip_channels": 8,
                "mixture_components": 2,
            },
            utterance_frames=25,
            train_threads=1,
            train_steps=1,
            train_limit=3,
            train_overrides={
                "wavenet": [
                    "model.layers=4",
                    "model.dilation_cycle=4",
                    "model.residual_channels=8",
                    "model.gate_channels=16",
                    "model.skip_channels=8",
                    "model.mixture_components=2",
                    "trainer.batch_size=2",
                ],
                "iaf": [*tiny_student, "trainer.batch_size=2"],
                "iaf_distill": [*tiny_student, "trainer.batch_size=2"],
            },
            train_in_process=True,
            quick=True,
        )


@dataclass
class TimingRow:
    """One timed configuration: wall-clock and CPU seconds of every timed run."""

    name: str
    audio_seconds: float
    wall: list[float]
    cpu: list[float]

    @property
    def rtf(self) -> float:
        """Best wall-clock seconds per audio second."""
        return min(self.wall) / self.audio_seconds


@dataclass
class IAFSynthesisResult:
    """What the synthesis benchmark measured, and the text of ``scripts/bench_iaf.py``."""

    utterance: str
    seconds: float
    segment_seconds: float
    threads: int
    repeats: int
    teacher_frames: int
    teacher_repeats: int
    chunk_frames: int
    torch_version: str
    omp_wait_policy: str | None
    rows: list[TimingRow]
    student_config: str
    teacher_config: str
    teacher_receptive_field: int
    peak_rss_mb: float
    machine: MachineReport = field(default_factory=MachineReport)
    #: GFLOP (torch's FLOP counter: convolutions and matrix products) per audio second of the student
    student_gflop_per_second: float = float("nan")
    #: the machine's best float32 GEMM rate on the student's shape at ``threads`` threads (same run)
    gemm_gflops: float = float("nan")
    #: streaming, one frame per push at ``threads`` threads: best time from creating a stream to its first
    #: audio
    stream_first_audio_ms: float = float("nan")
    #: the stream's look-ahead (the upsampler's), in ms
    stream_delay_ms: float = float("nan")
    #: onnxruntime's version ("" when it is not installed: no ONNX row)
    onnxruntime_version: str = ""

    @property
    def student_gemm_fraction(self) -> float:
        """The student's achieved GFLOP/s at ``threads`` threads over the best reference GEMM rate."""
        return self.student_gflop_per_second / self.student_rtf / self.gemm_gflops

    @property
    def student_rtf(self) -> float:
        """Best eager student RTF at ``threads`` threads."""
        return self.rows[0].rtf

    @property
    def student_script_rtf(self) -> float:
        """Best TorchScript student RTF at ``threads`` threads."""
        return self.rows[1].rtf

    @property
    def student_rtf_1(self) -> float:
        """Best eager student RTF at one thread."""
        return self.rows[2].rtf

    @property
    def teacher_rtf(self) -> float:
        """Best teacher RTF at ``threads`` threads."""
        return self.rows[3].rtf

    @property
    def teacher_rtf_1(self) -> float:
        """Best teacher RTF at one thread."""
        return self.rows[4].rtf

    def _row(self, prefix: str) -> TimingRow | None:
        return next((row for row in self.rows if row.name.startswith(prefix)), None)

    @property
    def stream_rtf(self) -> float:
        """Best RTF of the student streamed one frame per push at ``threads`` threads."""
        row = self._row("IAF student stream")
        return row.rtf if row else float("nan")

    @property
    def student_onnx_rtf(self) -> float:
        """Best RTF of the student's ONNX graph in onnxruntime (CPU) at ``threads`` threads."""
        row = self._row("IAF student onnxruntime")
        return row.rtf if row else float("nan")

    def summary_line(self) -> str:
        """``student_rtf= student_onnx_rtf= student_gemm_fraction= teacher_rtf= stream_first_audio_ms=
        stream_rtf= cpu=<model> isa=<isa> untrusted=<0|1>``."""
        return (
            f"student_rtf={self.student_rtf:.4f} student_onnx_rtf={self.student_onnx_rtf:.4f} "
            f"student_gemm_fraction={self.student_gemm_fraction:.2f} "
            f"teacher_rtf={self.teacher_rtf:.4f} stream_first_audio_ms={self.stream_first_audio_ms:.2f} "
            f"stream_rtf={self.stream_rtf:.4f}"
            + self.machine.summary_suffix()
        )

    def lines(self) -> list[str]:
        """Everything ``scripts/bench_iaf.py`` prints, the summary line last."""
        n = self.threads
        out = [
            f"utterance: {self.utterance}, {self.seconds:.2f} s; torch {self.torch_version}; student block "
            f"{self.chunk_frames} frames; {self.repeats} student / {self.teacher_repeats} teacher repeats; "
            f"OMP_WAIT_POLICY={self.omp_wait_policy}",
            f"{'model':36s} {'audio s':>7s} {'best s':>8s} {'median s':>9s} {'RTF best':>9s} "
            f"{'RTF median':>10s} {'CPU-RTF':>8s}",
        ]
        for row in self.rows:
            best, median, audio = min(row.wall), statistics.median(row.wall), row.audio_seconds
            out.append(
                f"{row.name:36s} {audio:7.2f} {best:8.3f} {median:9.3f} {best / audio:9.4f} "
                f"{median / audio:10.4f} {min(row.cpu) / audio:8.4f}"
            )
        out.append(f"student: {self.student_config}")
        out.append(f"teacher: {self.teacher_config}, receptive field {self.teacher_receptive_field} samples")
        out.append(
            f"teacher timed on the first {self.teacher_frames} frames ({self.segment_seconds:.2f} s) "
            "and extrapolated: "
            f"per-sample cost is position-independent, so the whole {self.seconds:.2f} s utterance "
            f"would take ~{self.teacher_rtf * self.seconds:.1f} s"
        )
        out.append(
            f"student speed-up over teacher: {self.teacher_rtf / self.student_rtf:.0f}x at {n} threads, "
            f"{self.teacher_rtf_1 / self.student_rtf_1:.0f}x at 1 thread "
            "(targets: student RTF <= 0.15, >= 20x)"
        )
        out.append(
            f"student stream: one frame per push, first audio {self.stream_first_audio_ms:.1f} ms after "
            f"creating it (+ its delay of {self.stream_delay_ms:.0f} ms of frames), "
            f"RTF {self.stream_rtf:.4f}; "
            + (f"onnxruntime {self.onnxruntime_version} (the parallel pass over the whole utterance, "
               f"{n} intra-op threads): RTF {self.student_onnx_rtf:.4f} vs PyTorch {self.student_rtf:.4f}"
               if self.onnxruntime_version else "onnxruntime not installed: no ONNX row")
        )
        out.append(
            f"student arithmetic: {self.student_gflop_per_second:.1f} GFLOP per audio second, "
            f"{self.student_gflop_per_second / self.student_rtf:.1f} GFLOP/s at {n} threads = "
            f"{self.student_gemm_fraction:.2f} of the best GEMM rate ({self.gemm_gflops:.1f} GFLOP/s)"
        )
        out.extend(self.machine.lines())
        out.append(self.summary_line())
        return out

    def metrics(self) -> list[Metric]:
        """The synthesis figures of the combined ``vocoder-bench`` table."""
        n = self.threads
        return [
            Metric(
                NAME,
                "student_rtf",
                f"IAF student synthesis RTF, eager, {n} thr",
                self.student_rtf,
                "s/s",
                RTF_TARGET,
            ),
            Metric(
                NAME,
                "student_gemm_fraction",
                f"IAF student GFLOP/s / best GEMM rate, {n} thr",
                self.student_gemm_fraction,
                "of peak",
                GEMM_FRACTION_TARGET,
            ),
            Metric(
                NAME,
                "student_script_rtf",
                f"IAF student synthesis RTF, TorchScript, {n} thr",
                self.student_script_rtf,
                "s/s",
            ),
            Metric(
                NAME,
                "student_rtf_1thr",
                "IAF student synthesis RTF, eager, single-thread reference",
                self.student_rtf_1,
                "s/s",
            ),
            Metric(
                NAME,
                "teacher_rtf",
                f"WaveNet teacher synthesis RTF, {n} thr (extrapolated)",
                self.teacher_rtf,
                "s/s",
            ),
            Metric(
                NAME,
                "teacher_rtf_1thr",
                "WaveNet teacher synthesis RTF, single-thread reference",
                self.teacher_rtf_1,
                "s/s",
            ),
            Metric(
                NAME,
                "speedup",
                f"IAF student vs WaveNet teacher, {n} thr",
                self.teacher_rtf / self.student_rtf,
                "x",
                SPEEDUP_TARGET,
            ),
            Metric(NAME, "student_onnx_rtf", f"IAF student synthesis RTF, onnxruntime, {n} thr",
                   self.student_onnx_rtf, "s/s"),
            Metric(NAME, "stream_rtf", f"IAF student streaming RTF, one frame per push, {n} thr",
                   self.stream_rtf, "s/s"),
            Metric(NAME, "stream_first_audio_ms", "IAF student stream: creation to first audio",
                   self.stream_first_audio_ms, "ms"),
            Metric(NAME, "synth_peak_rss_mb", "IAF + WaveNet synthesis peak RSS", self.peak_rss_mb, "MB"),
        ]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IAFSynthesisResult:
        """Inverse of :func:`dataclasses.asdict`."""
        return cls(
            **{
                **data,
                "rows": [TimingRow(**row) for row in data["rows"]],
                "machine": MachineReport.from_dict(data.get("machine")),
            }
        )


@dataclass
class IAFResult:
    """Synthesis and training figures of the ``iaf`` benchmark of ``vocoder-bench``."""

    settings: IAFSettings
    synthesis: IAFSynthesisResult
    training: list[RecipeTrainingResult]

    def summary_line(self) -> str:
        """The last line of ``scripts/bench_iaf.py`` (``student_rtf=... teacher_rtf=...``)."""
        return self.synthesis.summary_line()

    def metrics(self) -> list[Metric]:
        """The figures of the combined ``vocoder-bench`` table."""
        metrics = self.synthesis.metrics()
        for run in self.training:
            what = f"{run.model} training ({run.recipe}, B={run.batch_size}, {run.threads} thr)"
            metrics.append(
                Metric(NAME, f"{run.name}_train_samples_per_s", what, run.samples_per_s, "samples/s")
            )
            metrics.append(
                Metric(
                    NAME,
                    f"{run.name}_train_peak_rss_mb",
                    f"{run.model} training peak RSS ({run.recipe})",
                    run.peak_rss_mb,
                    "MB",
                )
            )
        return metrics

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the worker protocol)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IAFResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            settings=IAFSettings(**data["settings"]),
            synthesis=IAFSynthesisResult.from_dict(data["synthesis"]),
            training=[RecipeTrainingResult(**run) for run in data["training"]],
        )


def utterance_mel(settings) -> Any:
    """Log-mel (1, n_mels, F) of the embedded slt utterance, F = samples // hop.

    Args:
        settings: :class:`vocoder.data.FeatureSettings` of the analysis.

    Returns:
        A float32 tensor (1, n_mels, F).
    """
    import soundfile as sf
    import torch

    from vocoder.dsp import log_mel_spectrogram

    audio, rate = sf.read(SAMPLE_WAV, dtype="float32")
    if rate != settings.sample_rate:
        raise RuntimeError(f"{SAMPLE_WAV} is {rate} Hz, expected {settings.sample_rate}")
    wave = torch.from_numpy(audio)
    frames = wave.shape[0] // settings.hop_length
    mel = log_mel_spectrogram(
        wave,
        settings.sample_rate,
        settings.n_fft,
        settings.hop_length,
        settings.win_length,
        settings.n_mels,
        settings.fmin,
        settings.fmax,
        floor=settings.mel_floor,
    )
    return mel[:, :frames].unsqueeze(0).contiguous()


def time_runs(fn: Callable[[], object], repeats: int, threads: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process-CPU seconds of ``repeats`` calls (after one warm-up) at ``threads`` threads.

    Args:
        fn: the work to time.
        repeats: timed calls.
        threads: torch intra-op threads during the calls (restored afterwards).

    Returns:
        ``(wall seconds, cpu seconds)``, one entry per timed call.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fn()
        wall, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    finally:
        torch.set_num_threads(previous)
    return wall, cpu


def _constructor_settings(cls: type, given: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments a model was built with: its constructor's defaults updated with ``given``."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(cls).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    return {**defaults, **given}


def _parameters(model) -> str:
    return f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M"


def describe_student(student, kwargs: dict[str, Any]) -> str:
    """One line on an IAF student's size, from the arguments it was built with (public API only)."""
    from vocoder.layers import wavenet_dilations
    from vocoder.models import IAFStudent

    cfg = _constructor_settings(IAFStudent, kwargs)
    layers = [int(n) for n in cfg["flow_layers"]]
    nets = len(layers) * (2 if cfg["separate_networks"] else 1)
    max_dilation = max(wavenet_dilations(layers[0], cfg["dilation_cycle"]))
    return (
        f"{len(layers)} flows {layers} layers, dil 1..{max_dilation}, "
        f"k={cfg['kernel_size']}, {cfg['residual_channels']} res/{cfg['gate_channels']} gate/"
        f"{cfg['skip_channels'] or 'no'} skip ch, {nets} WaveNets, {_parameters(student)} params"
    )


def describe_teacher(teacher, kwargs: dict[str, Any]) -> str:
    """One line on a WaveNet teacher's size, from the arguments it was built with (public API only)."""
    from vocoder.layers import wavenet_dilations
    from vocoder.models import WaveNetTeacher

    cfg = _constructor_settings(WaveNetTeacher, kwargs)
    return (
        f"{cfg['layers']} layers, dil 1..{max(wavenet_dilations(cfg['layers'], cfg['dilation_cycle']))}, "
        f"k={cfg['kernel_size']}, {cfg['residual_channels']} res/{cfg['gate_channels']} "
        f"gate/{cfg['skip_channels']} skip ch, {cfg['mixture_components']} logistics, "
        f"{_parameters(teacher)} params"
    )


def run_iaf_synthesis(settings: IAFSettings | None = None) -> IAFSynthesisResult:
    """Time student synthesis (eager, TorchScript, 1 thread) and teacher generation.

    Args:
        settings: sizes (None: the defaults the targets are stated for).

    Returns:
        The measurements, with the machine, its load during the run and a CPU/wall check of the main
        student row (``machine``).
    """
    settings = settings or IAFSettings()
    with MachineProbe(settings.threads) as probe:
        result = _measure_iaf_synthesis(settings)
        rates = gemm_reference({"iaf_conv": GEMM_SHAPES["iaf_conv"]}, threads=(result.threads,),
                               min_seconds=GEMM_QUICK_MIN_SECONDS if settings.quick else GEMM_MIN_SECONDS)
        result.gemm_gflops = best_gemm_gflops(rates, result.threads)
    student = result.rows[0]
    check = cpu_wall_warning("IAF student RTF", min(student.cpu), min(student.wall), result.threads)
    result.machine = machine_report(probe, result.threads, [check])
    return result


def _measure_iaf_synthesis(settings: IAFSettings) -> IAFSynthesisResult:
    """:func:`run_iaf_synthesis` without the machine report."""
    import torch

    from vocoder.data import FeatureSettings
    from vocoder.models import IAFStudent, WaveNetTeacher

    settings = settings or IAFSettings()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        torch.manual_seed(0)
        features = FeatureSettings()
        mel = utterance_mel(features)
        if settings.utterance_frames is not None:
            mel = mel[:, :, : settings.utterance_frames].contiguous()
        seconds = mel.shape[2] * features.hop_length / features.sample_rate

        student_kwargs = {"n_mels": features.n_mels, "hop_length": features.hop_length, **settings.student}
        student = IAFStudent(**student_kwargs).eval()
        with torch.no_grad():
            # The flows' output convolutions start at zero (the untrained student is the identity x = z);
            # small random weights give realistic, non-trivial flows (speed is unaffected).
            for name, parameter in student.named_parameters():
                if name.endswith("weight") and not parameter.any():
                    parameter.normal_(0.0, 0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still supported
            scripted = torch.jit.script(student)
        teacher_kwargs = {"n_mels": features.n_mels, "hop_length": features.hop_length, **settings.teacher}
        teacher = WaveNetTeacher(**teacher_kwargs).eval()

        segment = mel[:, :, : settings.teacher_frames]
        segment_seconds = segment.shape[2] * features.hop_length / features.sample_rate
        generator = torch.Generator().manual_seed(0)
        n, chunk = settings.threads, settings.chunk_frames
        student_gflop_per_second = student_flops_per_audio_second(student, mel, features, chunk) / 1e9
        with torch.inference_mode():
            # the synthesis path of vocoder-synth: one exact time segment per thread
            eager = time_runs(lambda: student.synthesize(mel, 0, chunk, n), settings.repeats, n)
            script = time_runs(lambda: scripted.synthesize(mel, 0, chunk, n), settings.repeats, n)
            eager_1 = time_runs(lambda: student.synthesize(mel, 0, chunk), settings.repeats, 1)
            # reference: one segment, torch's intra-op threads share every product
            intra = time_runs(lambda: student.synthesize(mel, 0, chunk, 1), settings.repeats, n)
            teacher_n = time_runs(
                lambda: teacher.generate(segment, generator=generator), settings.teacher_repeats, n
            )
            teacher_1 = time_runs(
                lambda: teacher.generate(segment, generator=generator), settings.teacher_repeats, 1
            )
        stream = time_stream(student, mel, features.sample_rate, settings.repeats, n)
        onnx = time_onnxruntime(student, mel, settings.repeats, n)
    finally:
        torch.set_num_threads(previous_threads)

    segment_name = f"WaveNet teacher, {segment_seconds:.2f} s"
    rows = [
        TimingRow(f"IAF student eager, {n} thr/{n} seg", seconds, *eager),
        TimingRow(f"IAF student TorchScript, {n} thr/{n} seg", seconds, *script),
        TimingRow("IAF student eager, 1 thr", seconds, *eager_1),
        TimingRow(f"{segment_name}, {n} thr", segment_seconds, *teacher_n),
        TimingRow(f"{segment_name}, 1 thr", segment_seconds, *teacher_1),
        TimingRow(f"IAF student eager, {n} thr/1 seg", seconds, *intra),
        TimingRow(f"IAF student stream, {n} thr", seconds, stream["wall"], stream["cpu"]),
    ]
    if onnx is not None:
        rows.append(TimingRow(f"IAF student onnxruntime, {n} thr", seconds, onnx["wall"], onnx["cpu"]))
    return IAFSynthesisResult(
        utterance=SAMPLE_WAV.name,
        seconds=seconds,
        segment_seconds=segment_seconds,
        threads=n,
        repeats=settings.repeats,
        teacher_frames=settings.teacher_frames,
        teacher_repeats=settings.teacher_repeats,
        chunk_frames=chunk,
        torch_version=torch.__version__,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        rows=rows,
        student_config=describe_student(student, settings.student),
        teacher_config=describe_teacher(teacher, settings.teacher),
        teacher_receptive_field=int(teacher.receptive_field),
        peak_rss_mb=peak_rss_mb(),
        student_gflop_per_second=student_gflop_per_second,
        stream_first_audio_ms=1000.0 * min(stream["first"]),
        stream_delay_ms=stream["delay_ms"],
        onnxruntime_version=onnx["version"] if onnx is not None else "",
    )


def time_stream(student, mel, sample_rate: int, repeats: int, threads: int) -> dict[str, Any]:
    """Stream ``mel`` (1, n_mels, F) through the student one frame per push, ``repeats`` times.

    The clock starts before the stream is created (its weights rearranged: what a new utterance costs
    a server that holds the loaded model).

    Returns:
        ``wall`` and ``cpu`` seconds of the creation, all pushes and the flush, ``first`` seconds until
        the first audio (one entry per run), and ``delay_ms``.
    """
    import torch

    from vocoder.inference import IAFStream

    frames = mel[0].t().contiguous().numpy()
    zeros, ones = torch.zeros(mel.shape[1]), torch.ones(mel.shape[1])

    def run() -> tuple[float, float, float, float]:
        start, start_cpu = time.perf_counter(), time.process_time()
        stream = IAFStream(student, zeros, ones, sample_rate, seed=0, threads=threads)
        first = None
        for frame in frames:
            if len(stream.push(frame[None])) and first is None:
                first = time.perf_counter() - start
        stream.flush()
        wall = time.perf_counter() - start
        return wall, time.process_time() - start_cpu, wall if first is None else first, stream.delay_ms

    run()  # warm-up
    runs = [run() for _ in range(max(1, repeats))]
    return {"wall": [r[0] for r in runs], "cpu": [r[1] for r in runs], "first": [r[2] for r in runs],
            "delay_ms": runs[0][3]}


def time_onnxruntime(student, mel, repeats: int, threads: int) -> dict[str, Any] | None:
    """Time the student's ONNX graph (:class:`vocoder.inference.ONNXIAFSynthesizer`) in onnxruntime.

    The session runs on the CPU with ``threads`` intra-op threads and one inter-op thread, on the
    same log-mel (identity normalization) and the student's seeded noise.

    Returns:
        ``wall`` and ``cpu`` seconds per run and onnxruntime's ``version``; None when onnx or
        onnxruntime is not installed.
    """
    import torch

    try:
        import onnxruntime
    except ImportError:
        return None
    from vocoder.inference import ONNXIAFSynthesizer, onnx_bytes

    module = ONNXIAFSynthesizer(student, torch.zeros(mel.shape[1]), torch.ones(mel.shape[1]))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx_bytes(module, 16000), options,
                                           providers=["CPUExecutionProvider"])
    inputs = {"mel": mel.transpose(1, 2).contiguous().numpy(), "noise": student.sample_noise(mel, 0).numpy()}
    session.run(None, inputs)  # warm-up
    wall, cpu = [], []
    for _ in range(max(1, repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        session.run(None, inputs)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"wall": wall, "cpu": cpu, "version": onnxruntime.__version__}


def run_iaf_training(settings: IAFSettings | None = None) -> list[RecipeTrainingResult]:
    """Training throughput of the WaveNet teacher, the IAF student and its distillation.

    The embedded kathleen sample corpus is prepared once into a temporary folder; every recipe then
    trains in a fresh process (:func:`vocoder.bench._training.train_recipe`), the distillation with the
    checkpoint the teacher's run wrote. Everything is deleted afterwards.

    Args:
        settings: sizes (``train_threads``, ``train_steps``, ``train_limit``, ``train_overrides``,
            ``train_in_process``).

    Returns:
        One result per recipe of :data:`TRAINING_RECIPES`.

    Raises:
        vocoder.bench.BenchmarkError: a training process failed (one line).
    """
    settings = settings or IAFSettings()
    results: list[RecipeTrainingResult] = []
    with tempfile.TemporaryDirectory(prefix="bench_iaf_training_") as tmp:
        data = [
            f"data.root={KATHLEEN_ROOT}",
            f"data.cache_dir={Path(tmp) / 'cache'}",
            "data.num_workers=0",
            "data.splits.n_eval=1" if settings.train_limit is not None else "data.splits.n_eval=4",
            "data.splits.n_dev=1" if settings.train_limit is not None else "data.splits.n_dev=4",
            f"data.limit={'null' if settings.train_limit is None else settings.train_limit}",
        ]
        prepare_recipe_data(TRAINING_RECIPES[0][1], data)
        teacher_checkpoint = ""
        for name, recipe in TRAINING_RECIPES:
            overrides = [*data, *settings.train_overrides.get(name, [])]
            if name == "iaf_distill":
                overrides.append(f"loss.teacher_checkpoint={teacher_checkpoint}")
            params = {
                "name": name,
                "recipe": recipe,
                "overrides": overrides,
                "threads": settings.train_threads,
                "steps": settings.train_steps,
                "out_dir": str(Path(tmp) / name),
            }
            if settings.train_in_process:
                result = train_recipe(**params)
            else:
                result = RecipeTrainingResult(
                    **run_worker("train-recipe", params, env={"OMP_NUM_THREADS": str(settings.train_threads)})
                )
            if name == "wavenet":
                teacher_checkpoint = result.checkpoint
            results.append(result)
    return results


def run_iaf(settings: IAFSettings | None = None) -> IAFResult:
    """The ``iaf`` benchmark of ``vocoder-bench``: synthesis in this process, then the training runs.

    Args:
        settings: sizes (None: the defaults the targets are stated for).

    Returns:
        The measurements.
    """
    settings = settings or IAFSettings()
    synthesis = run_iaf_synthesis(settings)
    return IAFResult(settings, synthesis, run_iaf_training(settings))


def worker(params: dict[str, Any]) -> dict[str, Any]:
    """``vocoder-bench`` worker: :func:`run_iaf` with :class:`IAFSettings` ``params``."""
    return run_iaf(IAFSettings(**params)).to_dict()
