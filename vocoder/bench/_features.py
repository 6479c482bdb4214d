"""Feature preparation benchmark: load + log-mel + LPCNet features + cache writes on a corpus.

:func:`run_features` prepares a corpus (ARCTIC layout) into a temporary cache, deleted afterwards, with
:func:`vocoder.data.prepare_corpus` (what ``vocoder-prepare`` runs) and reports the speed in multiples
of real time (seconds of audio computed per wall-clock second). Targets: >= 100x real time, <= 1 GB.

After the preparation, the same utterances (at most :data:`PROFILE_UTTERANCES`) are run once more
stage by stage in this process on one thread — audio load, :func:`vocoder.data.compute_features`
(log-mel + LPCNet features + LPC), of which :func:`vocoder.dsp.lpcnet_features` alone, and the cache
entry's ``npz`` serialization (in memory) — which shows where a worker's time goes, and gives the
LPCNet features' own speed (``lpcnet_features_xrt``: the scope of xiph's ``dump_data``, which computes
neither a log-mel nor a cache).

Peak RSS is the parent's peak plus ``workers`` times the largest worker's peak (from ``getrusage``): an
upper bound, since forked workers share the parent's pages copy-on-write. ``getrusage(RUSAGE_CHILDREN)``
covers every terminated child of the process, so the figure is meant for a fresh process
(``scripts/bench_features.py`` or a ``vocoder-bench`` worker).
"""

from __future__ import annotations

import io
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vocoder.bench._common import Metric, Target
from vocoder.bench._load import MachineProbe
from vocoder.bench._machine import MachineReport, machine_report

NAME = "features"
XRT_TARGET = Target(">=", 100.0)
# target: xiph's C feature extraction, 294x real time per core on a Zen 3 machine
XRT_PER_WORKER_TARGET = Target(">=", 290.0)
RSS_TARGET = Target("<=", 1024.0)
#: the full corpus next to a development checkout (``<checkout>/../shared/data/kathleen_arctic``)
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kathleen_arctic"
#: the embedded 40-utterance kathleen corpus shipped inside the package
SAMPLE_ROOT = Path(__file__).resolve().parents[1] / "data" / "sample" / "kathleen"
#: utterances prepared in quick mode
QUICK_LIMIT = 4
#: utterances of the one-thread stage profile (the first ones of the run)
PROFILE_UTTERANCES = 100
#: the stages of the profile, in order (``lpcnet_features`` is part of ``compute_features``)
STAGES = ("load", "compute_features", "lpcnet_features", "serialize")


def resolve_root(root: str | Path | None) -> tuple[Path, bool]:
    """The corpus to benchmark: ``root`` if given, else the full corpus, else the embedded sample.

    Args:
        root: an explicit corpus directory, or None for the default.

    Returns:
        ``(absolute corpus directory, whether the embedded sample replaced an absent default corpus)``.
    """
    if root is not None:
        return Path(root).resolve(), False
    if (DEFAULT_ROOT / "wav").is_dir():
        return DEFAULT_ROOT.resolve(), False
    return SAMPLE_ROOT.resolve(), True


@dataclass
class FeaturesResult:
    """What one feature-preparation benchmark measured.

    Attributes:
        root: corpus directory.
        workers: worker processes (0: in-process).
        limit: first N utterances only (None: all).
        utterances: utterances computed or skipped.
        skipped: unusable files left out.
        audio_seconds: audio computed.
        wall_seconds: wall-clock time of the preparation.
        cache_mb: size of the cache written.
        parent_rss_mb: peak RSS of the preparing process.
        worker_rss_mb: peak RSS of the largest (joined) worker process.
        fallback: the embedded sample replaced an absent default corpus.
        quick: tiny sizes (``--quick``): not comparable with the targets.
        machine: where it ran and the machine load during the run.
        stage_seconds: one-thread seconds of each of :data:`STAGES` over the profiled utterances
            (empty: not profiled).
        stage_audio_seconds: audio of the profiled utterances.
    """

    root: str
    workers: int
    limit: int | None
    utterances: int
    skipped: int
    audio_seconds: float
    wall_seconds: float
    cache_mb: float
    parent_rss_mb: float
    worker_rss_mb: float
    fallback: bool = False
    quick: bool = False
    machine: MachineReport = field(default_factory=MachineReport)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_audio_seconds: float = 0.0

    @property
    def xrt(self) -> float:
        """Seconds of audio prepared per wall-clock second."""
        return self.audio_seconds / self.wall_seconds

    @property
    def peak_rss_mb(self) -> float:
        """Upper bound of the peak RSS of the parent and all workers together (MiB)."""
        return self.parent_rss_mb + max(self.workers, 0) * self.worker_rss_mb

    @property
    def lpcnet_features_xrt(self) -> float:
        """Real-time factor of :func:`vocoder.dsp.lpcnet_features` alone on one thread (nan: not profiled)."""
        seconds = self.stage_seconds.get("lpcnet_features", 0.0)
        return self.stage_audio_seconds / seconds if seconds > 0 else float("nan")

    def _profile_rows(self) -> list[tuple[str, str]]:
        if not self.stage_seconds:
            return []
        seconds = self.stage_seconds
        total = seconds["load"] + seconds["compute_features"] + seconds["serialize"]
        share = {name: 100.0 * value / total for name, value in seconds.items()}
        mel_and_rest = share["compute_features"] - share["lpcnet_features"]
        return [
            ("profile, 1 thread", f"{self.stage_audio_seconds / total:.1f}x real time over "
                                  f"{self.stage_audio_seconds / 60:.2f} min: load {share['load']:.0f} %, "
                                  f"LPCNet features {share['lpcnet_features']:.0f} %, log-mel "
                                  f"{mel_and_rest:.0f} %, npz {share['serialize']:.0f} %"),
            ("LPCNet features alone", f"{self.lpcnet_features_xrt:.1f}x real time (1 thread)"),
        ]

    def table(self) -> list[tuple[str, str]]:
        """The ``(name, value)`` rows of ``scripts/bench_features.py``."""
        return [
            ("corpus", self.root),
            ("utterances", f"{self.utterances} ({self.skipped} skipped)"),
            ("audio", f"{self.audio_seconds / 60:.2f} min"),
            ("workers", str(self.workers)),
            ("wall", f"{self.wall_seconds:.2f} s"),
            ("speed", f"{self.xrt:.1f}x real time ({self.xrt_per_worker:.1f}x per worker)"),
            ("cache size", f"{self.cache_mb:.1f} MB"),
            ("peak RSS parent", f"{self.parent_rss_mb:.0f} MB"),
            ("peak RSS largest worker", f"{self.worker_rss_mb:.0f} MB"),
            ("peak RSS total (bound)", f"{self.peak_rss_mb:.0f} MB"),
            *self._profile_rows(),
        ]

    @property
    def xrt_per_worker(self) -> float:
        """Real-time factor per worker process (the in-process run counts as one)."""
        return self.xrt / max(1, self.workers)

    def summary_line(self) -> str:
        """``features_xrt= features_xrt_per_worker= [lpcnet_features_xrt=] peak_rss_mb=`` + the machine.

        ``lpcnet_features_xrt`` only when the stages were profiled; the machine suffix is
        `` cpu=... isa=... untrusted=...``.
        """
        profiled = f"lpcnet_features_xrt={self.lpcnet_features_xrt:.2f} " if self.stage_seconds else ""
        return (
            f"features_xrt={self.xrt:.2f} features_xrt_per_worker={self.xrt_per_worker:.2f} {profiled}"
            f"peak_rss_mb={self.peak_rss_mb:.1f}" + self.machine.summary_suffix()
        )

    def lines(self) -> list[str]:
        """Everything ``scripts/bench_features.py`` prints: the table, then the summary line."""
        rows = self.table()
        width = max(len(name) for name, _ in rows)
        return [
            *(f"{name:<{width}}  {value}" for name, value in rows),
            *self.machine.lines(),
            self.summary_line(),
        ]

    def metrics(self) -> list[Metric]:
        """The figures of the combined ``vocoder-bench`` table."""
        workers = f"{self.workers} workers" if self.workers else "in-process"
        corpus = Path(self.root).name + (" (embedded sample: default corpus absent)" if self.fallback else "")
        return [
            Metric(
                NAME,
                "features_xrt",
                f"feature extraction, {corpus}, {workers}",
                self.xrt,
                "x real time",
                XRT_TARGET,
            ),
            Metric(
                NAME,
                "features_xrt_per_worker",
                "feature extraction per worker",
                self.xrt_per_worker,
                "x real time",
                XRT_PER_WORKER_TARGET,
            ),
            *([Metric(
                NAME,
                "lpcnet_features_xrt",
                "LPCNet features alone (xiph's dump_data scope), 1 thread",
                self.lpcnet_features_xrt,
                "x real time",
            )] if self.stage_seconds else []),
            Metric(
                NAME,
                "peak_rss_mb",
                "feature extraction peak RSS (parent + workers bound)",
                self.peak_rss_mb,
                "MB",
                RSS_TARGET,
            ),
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the worker protocol)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeaturesResult:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "machine": MachineReport.from_dict(data.get("machine"))})


def run_features(
    root: str | Path,
    workers: int = 2,
    limit: int | None = None,
    fallback: bool = False,
    quick: bool = False,
) -> FeaturesResult:
    """Prepare a corpus into a temporary cache and measure speed, cache size and peak RSS, then profile
    the stages on one thread (see the module docstring).

    Args:
        root: corpus directory in the ARCTIC layout.
        workers: worker processes (0: in this process).
        limit: prepare the first ``limit`` utterances only (None: all).
        fallback: record that ``root`` is the embedded sample standing in for an absent corpus.
        quick: record that the sizes are tiny (quick mode).

    Returns:
        The measurements.

    Raises:
        vocoder.data.DataError: not a usable corpus (one-line message).
    """
    from vocoder.data import FeatureSettings, prepare_corpus

    root = Path(root).resolve()
    with (
        tempfile.TemporaryDirectory(prefix="bench_features_") as cache_dir,
        MachineProbe(max(1, workers)) as probe,
    ):
        started = time.perf_counter()
        result = prepare_corpus(
            root,
            cache_dir,
            FeatureSettings(),
            n_eval=1,
            n_dev=1,
            num_workers=workers,
            limit=limit,
            progress=False,
        )
        wall = time.perf_counter() - started
        cache_mb = sum(p.stat().st_size for p in Path(cache_dir).rglob("*") if p.is_file()) / 2**20
    # ru_maxrss is in KiB on Linux; RUSAGE_CHILDREN holds the largest terminated (joined) worker
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    profiled = min(PROFILE_UTTERANCES, limit) if limit is not None else PROFILE_UTTERANCES
    stage_seconds, stage_audio = profile_stages(root, profiled)
    return FeaturesResult(
        root=str(root),
        workers=workers,
        limit=limit,
        utterances=result.computed + len(result.skipped),
        skipped=len(result.skipped),
        audio_seconds=result.computed_seconds,
        wall_seconds=wall,
        cache_mb=cache_mb,
        parent_rss_mb=parent_mb,
        worker_rss_mb=worker_mb,
        fallback=fallback,
        quick=quick,
        machine=machine_report(probe, max(1, workers)),
        stage_seconds=stage_seconds,
        stage_audio_seconds=stage_audio,
    )


def profile_stages(root: str | Path, utterances: int) -> tuple[dict[str, float], float]:
    """One-thread seconds of each of :data:`STAGES` over the first ``utterances`` utterances (unusable
    ones left out, as the preparation does).

    Returns:
        ``(seconds per stage, audio seconds)``; the first usable utterance is also run once untimed
        before (the numba kernels' cache load).
    """
    import numpy as np
    import torch

    from vocoder.data import BadAudioError, FeatureSettings, compute_features, list_utterances, load_audio
    from vocoder.dsp import lpcnet_features, mel_filterbank

    settings = FeatureSettings()
    filterbank = mel_filterbank(settings.sample_rate, settings.n_fft, settings.n_mels, settings.fmin,
                                settings.fmax)
    seconds = dict.fromkeys(STAGES, 0.0)
    audio_seconds = 0.0
    wavs = [utterance.wav for utterance in list_utterances(root)][:max(0, utterances)]

    def run(wav: Path) -> tuple[float, list[float]]:
        started = time.perf_counter()
        audio = load_audio(wav, settings.sample_rate, min_samples=settings.hop_length)
        loaded = time.perf_counter()
        arrays = compute_features(audio, settings, filterbank)
        computed = time.perf_counter()
        lpcnet_features(arrays["audio"], sample_rate=settings.sample_rate, preemphasis=settings.preemphasis,
                        lpc_order=settings.lpc_order, pitch_correlation=settings.pitch_correlation)
        alone = time.perf_counter()
        np.savez(io.BytesIO(), **arrays)
        written = time.perf_counter()
        return arrays["audio"].shape[0] / settings.sample_rate, [loaded - started, computed - loaded,
                                                                 alone - computed, written - alone]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        warmed = False
        for wav in wavs:
            try:
                if not warmed:  # untimed: numba's cache load and first-call costs
                    run(wav)
                    warmed = True
                duration, stage_times = run(wav)
            except BadAudioError:
                continue  # the preparation skipped it too
            audio_seconds += duration
            for stage, value in zip(STAGES, stage_times, strict=True):
                seconds[stage] += value
    finally:
        torch.set_num_threads(threads)
    return seconds, audio_seconds


def worker(params: dict[str, Any]) -> dict[str, Any]:
    """``vocoder-bench`` worker: :func:`run_features` with ``params``; returns the result's dict."""
    return run_features(**params).to_dict()
