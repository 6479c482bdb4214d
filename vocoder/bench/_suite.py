"""The ``vocoder-bench`` suite: run the selected benchmarks in fresh processes, one combined report.

Every benchmark runs in its own Python process (``python -m vocoder.bench --worker NAME``): its peak RSS
is its own, its thread settings (``OMP_NUM_THREADS``, ``OMP_WAIT_POLICY``, core pinning) are set before
torch loads, and a crash or a hang of one does not take the others down. The workers return their
results as JSON, which :func:`run_suite` turns back into the benchmark's result objects, so the report
(the combined table, the JSON document, and the last lines of ``scripts/bench_*.py``) is computed
from the same objects as the scripts' output.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from vocoder.bench import _features, _gemm, _iaf, _lpcnet, _machine, _mlpg, _training
from vocoder.bench._common import BenchmarkError, Metric, format_value, run_worker

#: benchmark names in run order
BENCHMARKS = ("features", "lpcnet", "iaf", "mlpg")
QUICK_NOTE = (
    "QUICK MODE: tiny models, short audio, few repeats — the numbers are NOT comparable with the targets "
    "(ok: n/a); run without --quick for the real figures"
)


def worker_function(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The function behind ``python -m vocoder.bench --worker NAME``.

    Args:
        name: ``features``, ``lpcnet``, ``lpcnet-train``, ``iaf``, ``train-recipe``, ``mlpg`` or
            ``machine`` (machine description and GEMM reference rates).

    Returns:
        A function from the worker's JSON parameters to its JSON-able result.

    Raises:
        KeyError: unknown worker name.
    """
    match name:
        case "features":
            return _features.worker
        case "lpcnet":
            return _lpcnet.worker
        case "lpcnet-train":
            return _lpcnet.train_worker
        case "iaf":
            return _iaf.worker
        case "train-recipe":
            return _training.worker
        case "mlpg":
            return _mlpg.worker
        case "machine":
            return _machine.worker
    raise KeyError(name)


def parse_only(text: str | None) -> list[str]:
    """The benchmarks named by ``--only`` (comma-separated), in run order; None selects all.

    Raises:
        ValueError: an unknown or empty name (one-line message listing the known ones).
    """
    if text is None:
        return list(BENCHMARKS)
    names = [part.strip() for part in text.split(",")]
    for part in names:
        if part not in BENCHMARKS:
            shown = repr(part) if part else "an empty name"
            raise ValueError(f"--only: unknown benchmark {shown} (choose from {', '.join(BENCHMARKS)})")
    return [name for name in BENCHMARKS if name in names]


def benchmark_params(
    name: str, quick: bool, threads: int | None = None, root: str | Path | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Worker parameters and environment of one benchmark.

    Args:
        name: benchmark name (see :data:`BENCHMARKS`).
        quick: tiny sizes.
        threads: torch threads of the multi-threaded parts (None: each benchmark's default, 2 or 1 in
            quick mode); LPCNet synthesis always runs on one core and feature workers on one thread each.
        root: corpus of the feature benchmark (None: the full corpus next to the checkout if present,
            else the embedded sample).

    Returns:
        ``(params, env)``: the JSON parameters and the variables added to the worker's environment.
    """
    env: dict[str, str] = {}
    if name == "features":
        corpus, fallback = _features.resolve_root(root)
        params: dict[str, Any] = {
            "root": str(corpus),
            "workers": 0 if quick else 2,
            "limit": _features.QUICK_LIMIT if quick else None,
            "fallback": fallback,
            "quick": quick,
        }
        return params, env
    if name == "lpcnet":
        lpcnet = _lpcnet.LPCNetSettings.quick_settings() if quick else _lpcnet.LPCNetSettings()
        if threads is not None:
            lpcnet.train_threads = threads
        return asdict(lpcnet), env
    if name == "iaf":
        iaf = _iaf.IAFSettings.quick_settings() if quick else _iaf.IAFSettings()
        if threads is not None:
            iaf.threads = iaf.train_threads = threads
        if "OMP_WAIT_POLICY" not in os.environ:  # see vocoder.bench._iaf: set before torch loads
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        env["OMP_NUM_THREADS"] = str(iaf.threads)
        return asdict(iaf), env
    if name == "mlpg":
        mlpg = _mlpg.MLPGSettings.quick_settings() if quick else _mlpg.MLPGSettings()
        if threads is not None:
            mlpg.threads = threads
        env["OMP_NUM_THREADS"] = str(mlpg.threads)
        return asdict(mlpg), env
    raise ValueError(f"unknown benchmark {name!r} (choose from {', '.join(BENCHMARKS)})")


def result_from_dict(name: str, data: dict[str, Any]):
    """Rebuild a benchmark's result object from its worker's JSON."""
    match name:
        case "features":
            return _features.FeaturesResult.from_dict(data)
        case "lpcnet":
            return _lpcnet.LPCNetResult.from_dict(data)
        case "iaf":
            return _iaf.IAFResult.from_dict(data)
        case "mlpg":
            return _mlpg.MLPGResult.from_dict(data)
    raise ValueError(f"unknown benchmark {name!r}")


@dataclass
class SuiteResult:
    """The results of one ``vocoder-bench`` run.

    Attributes:
        quick: tiny sizes (numbers not comparable with the targets).
        results: result object per benchmark that ran.
        errors: one-line error per benchmark that failed.
        elapsed: wall-clock seconds per benchmark (process start-up included).
        machine: CPU count, load averages, versions, and the machine description of
            :func:`vocoder.bench.describe_machine` (``cpu``, ``isa``, ``blas``, ``threads``, ...).
        gemm_reference: the float32 GEMM reference rates of the same run
            (:class:`vocoder.bench.GemmRate` as dicts).
    """

    quick: bool
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    elapsed: dict[str, float] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    gemm_reference: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> list[Metric]:
        """Every figure of every benchmark that ran, in run order."""
        return [metric for result in self.results.values() for metric in result.metrics()]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "quick": self.quick,
            "note": QUICK_NOTE
            if self.quick
            else "targets apply (figures at the sizes the targets are stated for)",
            "machine": self.machine,
            "gemm_reference": list(self.gemm_reference),
            "warnings": self.warnings(),
            "metrics": [metric.to_dict(self.quick) for metric in self.metrics()],
            "benchmarks": {
                name: {
                    "summary_line": result.summary_line(),
                    "elapsed_s": self.elapsed.get(name),
                    "result": result.to_dict(),
                }
                for name, result in self.results.items()
            },
            "errors": dict(self.errors),
        }

    def warnings(self) -> dict[str, list[str]]:
        """Reasons not to trust each benchmark's figures (its machine report), benchmarks without none."""
        found = {}
        for name, result in self.results.items():
            report = getattr(result, "machine", None)
            if report is None:  # the iaf result keeps it with its synthesis figures
                report = getattr(getattr(result, "synthesis", None), "machine", None)
            if report is not None and report.warnings:
                found[name] = report.warnings
        return found

    def table_lines(self) -> list[str]:
        """The combined table (benchmark, metric, value, unit, target, ok) and the scripts' summary lines."""
        machine = self.machine
        lines = []
        if self.quick:
            lines.append(QUICK_NOTE)
        lines.append(
            f"machine: {machine.get('cpus')} CPUs, "
            f"load average (1 min) {machine.get('load_before', math.nan):.2f} "
            f"before / {machine.get('load_after', math.nan):.2f} after, torch {machine.get('torch')}, "
            f"Python {machine.get('python')}"
        )
        if machine.get("cpu"):
            lines.append(
                f"cpu: {machine.get('cpu')}, isa {machine.get('isa')} (CPU {machine.get('cpu_isa')}, torch "
                f"{machine.get('torch_capability')}); BLAS: torch {machine.get('blas')} "
                f"({machine.get('onednn')}), numpy {machine.get('numpy_blas')}; threads "
                f"{machine.get('threads')}"
            )
        header = ("benchmark", "metric", "value", "unit", "target", "ok")
        rows = []
        for metric in self.metrics():
            ok = metric.ok(self.quick)
            ok_text = (
                "n/a"
                if self.quick and metric.target is not None
                else {True: "yes", False: "NO", None: "-"}[ok]
            )
            target = str(metric.target) if metric.target is not None else "-"
            rows.append(
                (
                    metric.benchmark,
                    metric.label,
                    format_value(metric.value),
                    metric.unit or "-",
                    target,
                    ok_text,
                )
            )
        for name, error in self.errors.items():
            rows.append((name, f"FAILED: {error}", "-", "-", "-", "-"))
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        right = {2}  # numbers right-aligned

        def render(row: Sequence[str]) -> str:
            cells = [
                cell.rjust(width) if i in right else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            return "  ".join(cells).rstrip()

        lines.append(render(header))
        lines.append(render(["-" * width for width in widths]))
        lines.extend(render(row) for row in rows)
        rates = [_gemm.GemmRate(**rate) for rate in self.gemm_reference]
        if rates:
            lines.append("")
            lines.extend(_gemm.gemm_lines(rates))
        for name, reasons in self.warnings().items():
            lines.extend(f"WARNING {name}: {reason}" for reason in reasons)
        if self.results:
            lines.append("")
            lines.append("last lines of scripts/bench_*.py:")
            for name, result in self.results.items():
                lines.append(f"  {name}: {result.summary_line()}")
        return lines


def _machine_summary() -> dict[str, Any]:
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return {
        "cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch_version,
        "load_before": os.getloadavg()[0],
    }


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_suite(
    names: Sequence[str] = BENCHMARKS,
    quick: bool = False,
    threads: int | None = None,
    root: str | Path | None = None,
    log: Callable[[str], None] = _stderr,
) -> SuiteResult:
    """Run the selected benchmarks one after the other, each in a fresh process.

    Args:
        names: benchmarks to run (see :data:`BENCHMARKS`).
        quick: tiny sizes (smoke runs; numbers not comparable with the targets).
        threads: torch threads of the multi-threaded parts (None: each benchmark's default).
        root: corpus of the feature benchmark (None: default corpus, else the embedded sample).
        log: where progress lines go (standard error by default).

    Returns:
        The results; a benchmark that failed is listed in ``errors`` and the others still run.
    """
    suite = SuiteResult(quick=quick, machine=_machine_summary())
    log(f"vocoder-bench: machine description and GEMM reference{' (quick)' if quick else ''} ...")
    try:
        reference = run_worker("machine", {"quick": quick, "threads": threads})
        suite.machine.update(reference["description"])
        suite.gemm_reference = list(reference["gemm"])
    except BenchmarkError as exc:
        suite.errors["machine"] = str(exc).removeprefix("machine: ")
        log(f"vocoder-bench: machine description failed: {suite.errors['machine']}")
    for name in names:
        params, env = benchmark_params(name, quick, threads, root)
        log(f"vocoder-bench: running {name}{' (quick)' if quick else ''} ...")
        start = time.perf_counter()
        try:
            suite.results[name] = result_from_dict(name, run_worker(name, params, env=env))
        except BenchmarkError as exc:
            suite.errors[name] = str(exc).removeprefix(f"{name}: ")
            log(f"vocoder-bench: {name} failed: {suite.errors[name]}")
        suite.elapsed[name] = time.perf_counter() - start
        log(f"vocoder-bench: {name} done in {suite.elapsed[name]:.1f} s")
    suite.machine["load_after"] = os.getloadavg()[0]
    return suite
