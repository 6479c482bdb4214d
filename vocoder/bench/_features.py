"""Feature preparation benchmark: load + log-mel + LPCNet features + cache writes on a corpus.

:func:`run_features` prepares a corpus (ARCTIC layout) into a temporary cache, deleted afterwards, with
:func:`vocoder.data.prepare_corpus` (what ``vocoder-prepare`` runs) and reports the speed in multiples
of real time (seconds of audio computed per wall-clock second). Targets: >= 100x real time, <= 1 GB.

Peak RSS is the parent's peak plus ``workers`` times the largest worker's peak (from ``getrusage``): an
upper bound, since forked workers share the parent's pages copy-on-write. ``getrusage(RUSAGE_CHILDREN)``
covers every terminated child of the process, so the figure is meant for a fresh process
(``scripts/bench_features.py`` or a ``vocoder-bench`` worker).
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vocoder.bench._common import Metric, Target
from vocoder.bench._machine import MachineProbe, MachineReport, machine_report

NAME = "features"
XRT_TARGET = Target(">=", 100.0)
# issue 14: xiph's C feature extraction, 294x real time per core on a Zen 3 machine
XRT_PER_WORKER_TARGET = Target(">=", 290.0)
RSS_TARGET = Target("<=", 1024.0)
#: the full corpus next to a development checkout (``<checkout>/../shared/data/kathleen_arctic``)
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kathleen_arctic"
#: the embedded 40-utterance kathleen corpus shipped inside the package
SAMPLE_ROOT = Path(__file__).resolve().parents[1] / "data" / "sample" / "kathleen"
#: utterances prepared in quick mode
QUICK_LIMIT = 4


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

    @property
    def xrt(self) -> float:
        """Seconds of audio prepared per wall-clock second."""
        return self.audio_seconds / self.wall_seconds

    @property
    def peak_rss_mb(self) -> float:
        """Upper bound of the peak RSS of the parent and all workers together (MiB)."""
        return self.parent_rss_mb + max(self.workers, 0) * self.worker_rss_mb

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
        ]

    @property
    def xrt_per_worker(self) -> float:
        """Real-time factor per worker process (the in-process run counts as one)."""
        return self.xrt / max(1, self.workers)

    def summary_line(self) -> str:
        """``features_xrt= features_xrt_per_worker= peak_rss_mb=`` (+ `` cpu=... isa=... untrusted=...``)."""
        return (
            f"features_xrt={self.xrt:.2f} features_xrt_per_worker={self.xrt_per_worker:.2f} "
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
    """Prepare a corpus into a temporary cache and measure speed, cache size and peak RSS.

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
    )


def worker(params: dict[str, Any]) -> dict[str, Any]:
    """``vocoder-bench`` worker: :func:`run_features` with ``params``; returns the result's dict."""
    return run_features(**params).to_dict()
