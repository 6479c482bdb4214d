"""Benchmarks of the framework: the ``vocoder-bench`` command and the code of ``scripts/bench_*.py``.

* :func:`run_features` — feature preparation speed (× real time) and peak RSS.
* :func:`run_lpcnet` — LPCNet synthesis RTF on one core (fast path, torch loop), training samples/s.
* :func:`run_iaf_synthesis` / :func:`run_iaf` — IAF student and WaveNet teacher synthesis RTF, and the
  training throughput of the WaveNet / IAF recipes (:func:`train_recipe`).
* :func:`run_mlpg` — banded vs dense MLPG forward + backward.
* :func:`run_suite` — the selected benchmarks, each in a fresh process, as one table or JSON document.

Every ``run_*`` function returns a result object with ``metrics()`` (figures with units and targets),
``summary_line()`` (the ``key=value`` last line of its script) and ``to_dict()`` (plain JSON).
"""

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
from vocoder.bench._iaf import (
    IAFResult,
    IAFSettings,
    IAFSynthesisResult,
    TimingRow,
    run_iaf,
    run_iaf_synthesis,
    run_iaf_training,
)
from vocoder.bench._lpcnet import (
    LPCNetResult,
    LPCNetSettings,
    LPCNetSynthesisResult,
    LPCNetTrainingResult,
    run_lpcnet,
)
from vocoder.bench._mlpg import MLPGResult, MLPGSettings, run_mlpg
from vocoder.bench._suite import BENCHMARKS, SuiteResult, parse_only, run_suite
from vocoder.bench._training import RecipeTrainingResult, compose_recipe, train_recipe

__all__ = [
    "BENCHMARKS",
    "BenchmarkError",
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
    "best_time",
    "compose_recipe",
    "format_value",
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
    "run_worker",
    "train_recipe",
]
