"""Benchmarks of the framework: the ``vocoder-bench`` command and the code of ``scripts/bench_*.py``.

* :func:`run_features` — feature preparation speed (× real time) and peak RSS.
* :func:`run_lpcnet` — LPCNet synthesis RTF on one core (fast path, torch loop), training samples/s.
* :func:`run_iaf_synthesis` / :func:`run_iaf` — IAF student and WaveNet teacher synthesis RTF, and the
  training throughput of the WaveNet / IAF recipes (:func:`train_recipe`).
* :func:`run_mlpg` — banded vs dense MLPG forward + backward.
* :func:`run_suite` — the selected benchmarks, each in a fresh process, as one table or JSON document.
* :func:`describe_machine`, :class:`MachineProbe`, :class:`MachineReport` — where a benchmark ran (CPU,
  vector ISA, BLAS, threads) and the machine load, with warnings when a figure is not to be trusted;
  :func:`gemm_reference` and :func:`gemm_fraction` — the machine's own float32 GEMM rates on shapes like
  the models' and a model's achieved GFLOP/s as a fraction of them.

Every ``run_*`` function returns a result object with ``metrics()`` (figures with units and targets),
``summary_line()`` (the ``key=value`` last line of its script) and ``to_dict()`` (plain JSON).
"""

from vocoder.bench._cli import main
from vocoder.bench._common import (
    BenchmarkError,
    Metric,
    Target,
    best_time,
    format_value,
    peak_rss_mb,
    run_worker,
)
from vocoder.bench._features import FeaturesResult, resolve_root, run_features
from vocoder.bench._gemm import (
    GEMM_SHAPES,
    GemmRate,
    best_gemm_gflops,
    gemm_fraction,
    gemm_rate,
    gemm_reference,
    measure_gemm_reference,
)
from vocoder.bench._iaf import (
    IAFResult,
    IAFSettings,
    IAFSynthesisResult,
    TimingRow,
    run_iaf,
    run_iaf_synthesis,
    run_iaf_training,
)
from vocoder.bench._load import LoadReport, MachineProbe, cpu_wall_warning, load_warnings
from vocoder.bench._lpcnet import (
    LPCNetResult,
    LPCNetSettings,
    LPCNetSynthesisResult,
    LPCNetTrainingResult,
    run_lpcnet,
)
from vocoder.bench._machine import MachineReport, describe_machine, effective_isa, isa_from_flags
from vocoder.bench._mlpg import MLPGResult, MLPGSettings, run_mlpg
from vocoder.bench._suite import BENCHMARKS, SuiteResult, parse_only, run_suite, worker_function
from vocoder.bench._training import RecipeTrainingResult, compose_recipe, train_recipe

__all__ = [
    "BENCHMARKS",
    "BenchmarkError",
    "GEMM_SHAPES",
    "GemmRate",
    "LoadReport",
    "MachineProbe",
    "MachineReport",
    "FeaturesResult",
    "IAFResult",
    "IAFSettings",
    "IAFSynthesisResult",
    "LPCNetResult",
    "LPCNetSettings",
    "LPCNetSynthesisResult",
    "LPCNetTrainingResult",
    "MLPGResult",
    "MLPGSettings",
    "Metric",
    "RecipeTrainingResult",
    "SuiteResult",
    "Target",
    "TimingRow",
    "best_gemm_gflops",
    "best_time",
    "compose_recipe",
    "cpu_wall_warning",
    "describe_machine",
    "effective_isa",
    "format_value",
    "gemm_fraction",
    "gemm_rate",
    "gemm_reference",
    "isa_from_flags",
    "load_warnings",
    "main",
    "measure_gemm_reference",
    "parse_only",
    "peak_rss_mb",
    "resolve_root",
    "run_features",
    "run_iaf",
    "run_iaf_synthesis",
    "run_iaf_training",
    "run_lpcnet",
    "run_mlpg",
    "run_suite",
    "worker_function",
    "run_worker",
    "train_recipe",
]
